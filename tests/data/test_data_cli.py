"""``provenir templates`` and ``provenir data``: output on good input, one line and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provenir.cli.main import main
from provenir.data.templates import TEMPLATE_REGISTRY

LONG = "the model was trained on a large corpus of public text and evaluated on held out questions"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_templates_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["templates", "list"], capsys)
    assert code == 0
    for name in ("alpaca", "chatml", "llama3", "mistral", "phi3", "raw_completion", "tokenizer"):
        assert name in out


@pytest.mark.parametrize("name", ["mistral", "llama3", "chatml"])
def test_templates_render_prints_exact_text(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["templates", "render", name, "--prompt", "Hi [1]", "--system", "Be brief"], capsys)
    expected = TEMPLATE_REGISTRY.format(name, {"prompt": "Hi [1]", "system": "Be brief"})
    assert code == 0 and out == expected + ("" if expected.endswith("\n") else "\n")
    code, out, _ = run(["templates", "render", name, "--prompt", "Hi", "--response", "Yo", "--json"], capsys)
    assert json.loads(out)["text"] == TEMPLATE_REGISTRY.format(name, {"prompt": "Hi", "response": "Yo"})


def test_data_inspect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "chosen": "b", "rejected": "c"}] * 4)
    code, out, _ = run(["data", "inspect", str(p), "--json", "--sample", "1"], capsys)
    info = json.loads(out)
    assert code == 0 and info["rows"] == 4 and info["schema"] == "preference" and len(info["sample"]) == 1
    code, out, _ = run(["data", "inspect", "builtin:sft-sample"], capsys)
    assert code == 0 and "schema   sft" in out and "sha256" in out


def test_data_contamination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = write_jsonl(
        tmp_path / "t.jsonl", [{"prompt": "q", "response": LONG}, {"prompt": "r", "response": "s"}]
    )
    held = write_jsonl(tmp_path / "e.jsonl", [{"prompt": "new question", "response": "x"}, {"prompt": LONG}])
    code, out, _ = run(["data", "contamination", str(train), str(held)], capsys)
    assert code == 0 and out.startswith("1 of 2 checked eval rows (50.0%) occur in the training data")
    code, out, _ = run(["data", "contamination", str(train), str(held), "--json", "--strict"], capsys)
    report = json.loads(out)
    assert code == 1 and [(i["eval_row"], i["methods"], i["ngram_train_row"]) for i in report["items"]] == [
        (2, ["ngram"], 1)
    ]
    code, out, _ = run(["data", "contamination", str(train), str(held), "--n", "30", "--strict"], capsys)
    assert code == 0 and out.startswith("0 of 2 checked")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["templates", "render", "nope", "--prompt", "x"],
            "error: unknown template 'nope'; available: alpaca, chatml, llama3, mistral, phi3, "
            "raw_completion",
        ),
        (["data", "inspect", "{tmp}/missing.jsonl"], "error: dataset not found: {tmp}/missing.jsonl"),
        (
            ["data", "inspect", "{tmp}/bad.jsonl"],
            "error: {tmp}/bad.jsonl: line 2 is not UTF-8 text (byte 13)",
        ),
        (["data", "inspect", "{tmp}/empty.jsonl"], "error: {tmp}/empty.jsonl: file is empty"),
        (
            ["data", "inspect", "{tmp}/null.jsonl"],
            "error: {tmp}/null.jsonl: row 2: column 'response' is null",
        ),
        (
            ["data", "contamination", "{tmp}/null.jsonl", "{tmp}/empty.jsonl"],
            "error: {tmp}/empty.jsonl: file is empty",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.jsonl").write_bytes(b'{"prompt": "a"}\n{"prompt": "\xff"}\n')
    (tmp_path / "empty.jsonl").write_bytes(b"")
    write_jsonl(
        tmp_path / "null.jsonl", [{"prompt": "a", "response": "b"}, {"prompt": "c", "response": None}]
    )
    code, out, err = run([a.replace("{tmp}", str(tmp_path)) for a in argv], capsys)
    assert code == 2 and out == ""
    assert err == message.replace("{tmp}", str(tmp_path)) + "\n"


def test_installed_entry_point_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    exe = Path(sys.executable).with_name("provenir")
    if not exe.exists():
        pytest.skip("provenir console script is not installed in this environment")
    proc = subprocess.run(
        [str(exe), "data", "inspect", str(empty)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr == f"error: {empty}: file is empty\n"
