"""The user docs: the generated config page cannot drift, the site builds strictly, examples are real."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from provenir.reporting.config_docs import render_config_reference

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def code_blocks(lang: str) -> list[str]:
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        blocks += re.findall(rf"```{lang}\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    return blocks


def test_configuration_page_matches_the_schema() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_config_reference(), (
        "docs/configuration.md is stale: python -m provenir.reporting.config_docs > docs/configuration.md"
    )
    for field in ("peft.rank", "data.scan", "distributed.strategy", "manifest.signing_key_path", "seed"):
        assert f"| `{field}` |" in committed


def test_config_page_lists_every_field() -> None:
    from provenir.core.config import RunConfig

    page = render_config_reference()
    for name, info in RunConfig.model_fields.items():
        sub = getattr(info.annotation, "model_fields", None)
        keys = [f"{name}.{s}" for s in sub] if sub else [name]
        for key in keys:
            assert f"| `{key}` |" in page, key


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(site),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "index.html").is_file() and (site / "trust" / "index.html").is_file()
    assert "peft.rank" in (site / "configuration" / "index.html").read_text(encoding="utf-8")
    assert (site / "images" / "report.png").is_file()


def test_python_imports_in_docs_exist() -> None:
    imports = set()
    for block in code_blocks("python"):
        for module, names in re.findall(r"^from (provenir[\w.]*) import ([\w, ]+)$", block, re.M):
            imports |= {(module, n.strip()) for n in names.split(",")}
    assert len(imports) >= 10
    for module, name in sorted(imports):
        assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


def test_cli_commands_in_docs_exist() -> None:
    import typer.main

    from provenir.cli.main import build_app

    root = typer.main.get_command(build_app())
    seen = 0
    for block in code_blocks("bash"):
        for line in block.splitlines():
            words = line.split("#")[0].split()
            if "provenir" not in words:
                continue
            args = words[words.index("provenir") + 1 :]
            cmd = root.commands.get(args[0])  # type: ignore[attr-defined]
            assert cmd is not None, line
            sub = getattr(cmd, "commands", None)
            if sub and len(args) > 1 and not args[1].startswith("-") and args[1] in sub:
                cmd = sub[args[1]]
            elif sub and getattr(cmd, "default_command", None) in sub:
                cmd = sub[cmd.default_command]  # `provenir attest RUN` is `attest create RUN`
            options = {o for p in cmd.params for o in getattr(p, "opts", [])}
            for word in args:
                if word.startswith("--"):
                    assert word.split("=")[0] in options, f"{line}: {word}"
            seen += 1
    assert seen >= 15


def test_readme_shows_a_report_image() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images and all((ROOT / p).is_file() for p in images)
