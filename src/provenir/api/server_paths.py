"""What the API serves carries no server paths: absolute local paths become placeholders.

A sealed manifest records local paths as facts of the run: where the data was read
(``data_path``, ``inputs.datasets[].uri``), the model and adapter folders
(``inputs.model.source``, ``config.model_name_or_path``, ``config.init_adapter``), the
artifacts root (``config.output_dir``) and the interpreter (``environment.executable``). They
are covered by the hash and the signature, so the file keeps them; but a client of the API has
no use for the server's directory layout (user names, mount points), so every response built
from a manifest shows them replaced:

* a path inside the served artifacts folder becomes ``<artifacts>/<path inside it>``;
* any other absolute path becomes ``<server path>/<file name>``.

``GET /manifests/{id}`` serves this view, marked ``X-Provenir-Manifest-View: redacted`` with
the SHA-256 of the sealed file, unless nothing needed replacing (then the sealed bytes, marked
``sealed``) or the operator set ``serve_sealed_manifests`` (clients that check the hash and
signature themselves need the exact bytes).

::

    hide_server_paths({"data_path": "/home/ana/data/train.jsonl"}, roots)
    # {'data_path': '<server path>/train.jsonl'}
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from provenir.core.manifest import RunManifest
from provenir.eval.harness import EvalResult
from provenir.reporting.artifacts import RunArtifacts

ARTIFACTS_PLACEHOLDER = "<artifacts>"
SERVER_PATH_PLACEHOLDER = "<server path>"

# An absolute POSIX path ("/home/x", not the "/y" of "a/y", "x:/y" or "http://h/y"), or a
# Windows drive path ("C:\\x", "C:/x"), running to white space or a quote.
_ABSOLUTE = re.compile(
    r"(?<![\w.~:/\\-])/[^\s\"'<>|`]+"
    r"|(?<![\w])[A-Za-z]:[\\/][^\s\"'<>|`]*"
)


def artifact_roots(root: str | Path) -> list[str]:
    """The spellings of the served artifacts folder (as given and fully resolved), longest first."""
    path = Path(root)
    spellings = {str(path.absolute()), str(path.resolve())}
    return sorted((s.rstrip("/") for s in spellings if s not in ("", "/")), key=len, reverse=True)


def _replace(match: re.Match[str], roots: Sequence[str]) -> str:
    found = match.group(0)
    trail = ""
    while found and found[-1] in ".,;:)]}":  # sentence punctuation after a path in a message
        trail = found[-1] + trail
        found = found[:-1]
    if not found:
        return match.group(0)
    for root in roots:
        if found == root:
            return ARTIFACTS_PLACEHOLDER + trail
        if found.startswith(root + "/"):
            return f"{ARTIFACTS_PLACEHOLDER}/{found[len(root) + 1 :]}{trail}"
    name = posixpath.basename(found.replace("\\", "/").rstrip("/"))
    return f"{SERVER_PATH_PLACEHOLDER}/{name}{trail}" if name else SERVER_PATH_PLACEHOLDER + trail


def hide_text(text: str, roots: Sequence[str]) -> str:
    """``text`` with every absolute local path in it replaced (see the module docs)."""
    return _ABSOLUTE.sub(lambda m: _replace(m, roots), text)


def hide_server_paths(value: Any, roots: Sequence[str]) -> Any:
    """A copy of a JSON-like value with absolute paths replaced in every string and mapping key."""
    if isinstance(value, str):
        return hide_text(value, roots)
    if isinstance(value, dict):
        return {
            hide_text(k, roots) if isinstance(k, str) else k: hide_server_paths(v, roots)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [hide_server_paths(v, roots) for v in value]
    return value


def run_without_server_paths(run: RunArtifacts, roots: Sequence[str]) -> RunArtifacts:
    """The loaded run as a report served by the API shows it: manifest, evaluation and notes
    without server paths. The verification is the one computed on the real files."""
    manifest = RunManifest.model_validate(hide_server_paths(run.manifest.model_dump(mode="json"), roots))
    eval_result = (
        EvalResult.from_dict(hide_server_paths(run.eval_result.to_dict(), roots))
        if run.eval_result is not None
        else None
    )
    notes = [hide_text(n, roots) for n in run.notes]
    # A recorded absolute output path appears in a problem; the verdict itself is unchanged.
    verification = dataclasses.replace(
        run.verification, problems=[hide_text(p, roots) for p in run.verification.problems]
    )
    return dataclasses.replace(
        run, manifest=manifest, eval_result=eval_result, notes=notes, verification=verification
    )
