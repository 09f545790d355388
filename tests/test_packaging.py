"""Every third-party module the code imports is declared in pyproject.toml, in the extra that uses it.

Imports are found by walking every module's syntax tree (module level, inside functions, under
``TYPE_CHECKING``), mapped to the distribution that provides them in this environment
(:func:`importlib.metadata.packages_distributions`) and checked against ``dependencies`` plus the
extras :data:`EXTRAS_OF` grants the importing file.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from provenir.core.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

#: Which extras a file may import from, by path under src/ (the longest matching prefix wins).
#: Base ``dependencies`` are allowed everywhere.
EXTRAS_OF: dict[str, tuple[str, ...]] = {
    "provenir/core": (),
    "provenir/core/manifest.py": ("signing",),  # Ed25519 signing
    "provenir/core/signing_keys.py": ("signing",),  # creating and loading Ed25519 / ECDSA keys
    "provenir/core/dsse.py": ("signing",),  # Ed25519 signatures over DSSE envelopes
    "provenir/core/signers.py": ("signing",),  # PEM public keys of the signer policy
    "provenir/core/tree_head.py": ("signing",),  # Ed25519 signatures of audit tree heads
    "provenir/data": (),
    "provenir/data/loading.py": ("train",),  # datasets: hub ids and Parquet files
    "provenir/data/contamination.py": ("train", "eval"),  # numpy n-gram hashing
    "provenir/data/near_dup.py": ("dedup",),  # MinHash LSH (datasketch)
    "provenir/plugins": (),
    "provenir/cli": (),
    "provenir/train": ("train",),
    "provenir/train/tracking.py": ("train", "tracking"),
    "provenir/train/ray_train.py": ("train", "ray"),
    "provenir/train/ray_checkpoints.py": ("train", "ray"),
    "provenir/train/lm_eval_tasks.py": ("train", "eval"),
    "provenir/eval": ("eval",),
    "provenir/eval/judge": ("eval", "judges"),
    "provenir/rewards": ("eval",),
    "provenir/governance": ("governance",),
    "provenir/governance/model_signing.py": ("signing",),  # OpenSSF model-signing
    "provenir/reporting": ("report", "eval"),
    "provenir/rlaif": ("train", "eval", "judges"),
    "provenir/flywheel": ("train", "eval", "judges"),
    "provenir/api": ("api",),
    "provenir/testing": (),
    "provenir/scale": ("ray",),  # executor: ray (imported lazily)
}

#: Imported only under ``try/except ImportError`` as a best-effort probe, never required: the test
#: checks that each such import really is guarded.
UNDECLARED_PROBES: dict[str, str] = {
    "pynvml": "train/torch_environment.py reads the GPU driver version with it when nvidia-smi is missing",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _normalise(match.group(1))


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {_requirement_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_requirement_name(r) for r in reqs} - {"provenir"}
        for extra, reqs in project["optional-dependencies"].items()
    }
    return base, extras


def _guarded_by_import_error(tree: ast.AST, node: ast.stmt) -> bool:
    for outer in ast.walk(tree):
        if isinstance(outer, ast.Try) and any(node is n for stmt in outer.body for n in ast.walk(stmt)):
            for handler in outer.handlers:
                names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                if any(
                    isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError"} for n in names
                ):
                    return True
    return False


def third_party_imports() -> Iterator[tuple[str, str, ast.stmt, ast.AST]]:
    """``(file under src/, top-level module, import node, file tree)`` for every non-stdlib import."""
    for path in sorted((SRC / "provenir").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top != "provenir":
                    yield rel, top, node, tree


def _extras_of(rel: str) -> tuple[str, ...]:
    matches = [prefix for prefix in EXTRAS_OF if rel == prefix or rel.startswith(prefix + "/")]
    assert matches, f"{rel}: no entry in EXTRAS_OF; say which extras this package may import from"
    return EXTRAS_OF[max(matches, key=len)]


def test_every_import_is_declared_in_the_extra_that_uses_it() -> None:
    base, extras = _declared()
    providers = packages_distributions()
    problems: list[str] = []
    for rel, top, node, tree in third_party_imports():
        if top in UNDECLARED_PROBES:
            if not _guarded_by_import_error(tree, node):
                problems.append(f"{rel}:{node.lineno}: {top} is imported without an ImportError guard")
            continue
        dists = {_normalise(d) for d in providers.get(top, [])}
        if not dists:
            problems.append(f"{rel}:{node.lineno}: {top} is not installed here; cannot tell who provides it")
            continue
        allowed_extras = _extras_of(rel)
        allowed = set(base).union(*(extras[e] for e in allowed_extras))
        if not dists & allowed:
            where = ", ".join(allowed_extras) or "dependencies"
            problems.append(
                f"{rel}:{node.lineno}: {top} ({'/'.join(sorted(dists))}) is not declared in {where}"
            )
    assert not problems, "\n".join(problems)


def test_extras_mapping_covers_real_packages() -> None:
    """Every prefix in EXTRAS_OF names a real path and real extras (a renamed package fails here)."""
    _, extras = _declared()
    for prefix, names in EXTRAS_OF.items():
        assert (SRC / prefix).exists(), prefix
        assert set(names) <= set(extras), (prefix, set(names) - set(extras))


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_runtime_extras_table_matches_pyproject(extra: str) -> None:
    """``provenir.core.extras.EXTRAS`` (the modules whose absence the CLI explains) agrees with pyproject."""
    _, extras = _declared()
    providers = packages_distributions()
    assert extra in extras
    for module in EXTRAS[extra]:
        dists = {_normalise(d) for d in providers.get(module, [])}
        assert dists, f"{module} is not installed here"
        assert dists & extras[extra], f"{module} ({dists}) is not declared in the {extra!r} extra"


def test_every_optional_import_has_an_extra_to_name() -> None:
    """A missing module the CLI might meet is one :mod:`provenir.core.extras` can name an extra for."""
    base, _ = _declared()
    providers = packages_distributions()
    known = {m for modules in EXTRAS.values() for m in modules}
    missing = set()
    for _rel, top, _node, _tree in third_party_imports():
        dists = {_normalise(d) for d in providers.get(top, [])}
        if top not in UNDECLARED_PROBES and not dists & base and top not in known:
            missing.add(top)
    assert not missing, f"add to provenir.core.extras.EXTRAS: {sorted(missing)}"
