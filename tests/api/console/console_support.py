"""A store for the console tests, built by real (stub-backend) training runs, and an HTML table reader."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from provenir.core.config import RunConfig
from provenir.core.manifest import RunManifest
from provenir.core.store import RunStore

TOKEN = "console-token-0123456789abcdef"


@dataclass
class ConsoleStore:
    """The runs of :func:`build_store`, by role."""

    root: Path
    base: RunManifest
    candidate: RunManifest
    child: RunManifest
    tampered: RunManifest

    @property
    def store(self) -> RunStore:
        return RunStore(self.root)


def _train(root: Path, **overrides: object) -> RunManifest:
    from provenir.train.runner import train

    return train(RunConfig.from_dict({"backend": "stub", "output_dir": str(root), **overrides}))


def _write_eval(root: Path, run_id: str, predictions: list[str], references: list[str]) -> None:
    from provenir.eval.harness import MultiMetricEvaluator

    result = MultiMetricEvaluator(["exact_match", "token_f1"]).evaluate_texts(
        predictions, [[r] for r in references], item_keys=[f"item{i}" for i in range(len(references))]
    )
    result.save(RunStore(root).run_dir(run_id) / "eval.json")


def build_store(root: Path) -> ConsoleStore:
    """Four runs: a baseline and a worse candidate (both evaluated on the same 40 items, so the
    comparison has a paired test), a reproduction of the baseline, and a run whose sealed
    manifest was then edited (it must show as failing verification)."""
    from provenir.train.reproduce import reproduce

    base = _train(root, name="baseline-sft")
    candidate = _train(root, name="candidate-sft", seed=7, peft={"rank": 32})
    refs = [f"answer {i}" for i in range(40)]
    _write_eval(root, base.run_id, refs, refs)
    _write_eval(root, candidate.run_id, refs[:25] + ["nope"] * 15, refs)
    child = reproduce(RunStore(root).manifest_path(base.run_id)).replay
    tampered = _train(root, name="edited-later")
    path = RunStore(root).manifest_path(tampered.run_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["seed"] = data["seed"] + 1  # an edit after sealing: the hash no longer matches
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return ConsoleStore(root, base, candidate, child, tampered)


class TableReader(HTMLParser):
    """Rows of ``<tr data-run-id=...>``: for each, the text and attributes of its ``data-field`` cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, dict[str, object]]] = {}
        self._row: str | None = None
        self._field: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-run-id"):
            self._row = a["data-run-id"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row and a.get("data-field"):
            self._field = a["data-field"]
            self.rows[self._row][self._field] = {"text": "", "attrs": []}
        elif self._field and self._row:
            cell = self.rows[self._row][self._field]
            cell["attrs"].append((tag, a))  # type: ignore[union-attr]

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row and self._field:
            cell = self.rows[self._row][self._field]
            cell["text"] = str(cell["text"]) + data


def table_rows(html: str) -> dict[str, dict[str, dict[str, object]]]:
    """``{run_id: {field: {"text": ..., "attrs": [(tag, attrs), ...]}}}`` of a runs table."""
    reader = TableReader()
    reader.feed(html)
    return reader.rows


def attr(cell: dict[str, object], tag: str, name: str) -> list[str]:
    """Values of attribute ``name`` on every ``tag`` inside a cell."""
    return [a[name] for t, a in cell["attrs"] if t == tag and name in a]  # type: ignore[union-attr]


if __name__ == "__main__":  # pragma: no cover - a helper for docs/img/console.png
    print(build_store(Path(sys.argv[1])))
