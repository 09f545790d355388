"""The run store: the one owner of where a run's artifacts live and how a stored run is verified.

Layout under an artifacts root (``output_dir``)::

    manifests/<run_id>.json     sealed run manifests
    runs/<run_id>/              config, exact input rows, adapter, logs, eval results
    audit/                      the hash-chained audit log
    index/                      caches rebuilt from the manifests (the API's run index)

Nothing else in Provenir builds these paths: the run driver writes through a store, and the
CLI, the REST API and reports read and verify through one, so "is this run intact?" has one
answer everywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.hashing import sha256_file
from provenir.core.manifest import ManifestVerification, RunManifest, validate_run_id

#: Characters a run id (or a prefix of one) may contain; anything else is treated as a path.
_ID_CHARS = re.compile(r"^[0-9a-f-]{4,36}$")

#: The default artifacts root; ``$PROVENIR_OUTPUT_DIR`` overrides it for every command.
DEFAULT_OUTPUT_DIR = "artifacts"
OUTPUT_DIR_ENV = "PROVENIR_OUTPUT_DIR"


def default_output_dir() -> str:
    """``$PROVENIR_OUTPUT_DIR`` or ``artifacts``."""
    return os.environ.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR


class RunStore:
    """One artifacts root: paths of runs, manifests, audit log and index, and run verification."""

    def __init__(self, output_dir: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(output_dir if output_dir is not None else default_output_dir())

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    @classmethod
    def of_manifest_file(cls, path: str | os.PathLike[str]) -> RunStore:
        """The store a manifest file belongs to (``<root>/manifests/<run_id>.json``)."""
        return cls(Path(path).resolve().parent.parent)

    # -- layout -------------------------------------------------------------------------------

    @property
    def manifests_dir(self) -> Path:
        """``<root>/manifests``."""
        return self.root / "manifests"

    @property
    def runs_dir(self) -> Path:
        """``<root>/runs``."""
        return self.root / "runs"

    @property
    def audit_dir(self) -> Path:
        """``<root>/audit``: the audit log of every run in this store."""
        return self.root / "audit"

    @property
    def index_dir(self) -> Path:
        """``<root>/index``: caches rebuilt from the manifests."""
        return self.root / "index"

    def manifest_path(self, run_id: str) -> Path:
        """``<root>/manifests/<run_id>.json`` (the id is validated: no path can be smuggled in)."""
        return self.manifests_dir / f"{validate_run_id(run_id)}.json"

    def run_dir(self, run_id: str) -> Path:
        """``<root>/runs/<run_id>``."""
        return self.runs_dir / validate_run_id(run_id)

    def run_ids(self) -> list[str]:
        """Ids of every manifest file in the store (unsorted contents not read)."""
        folder = self.manifests_dir
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    # -- finding and reading ------------------------------------------------------------------

    def resolve(self, ref: str | os.PathLike[str], *, allow_path: bool = True) -> Path:
        """The manifest file for ``ref``: a manifest path, a run id, or a unique run-id prefix.

        ``allow_path=False`` accepts run ids only: use it whenever ``ref`` comes from someone
        other than the local user (a web request), so it can never name a file outside the store.
        """
        text = os.fspath(ref)
        candidate = Path(text)
        if allow_path and (text.endswith(".json") or candidate.is_file()):
            if not candidate.is_file():
                raise ManifestError(f"manifest not found: {candidate}")
            return candidate
        if not _ID_CHARS.match(text):
            raise ManifestError(
                f"{text!r} is neither a manifest file nor a run id (a UUID such as "
                "123e4567-e89b-42d3-a456-426614174000, or a unique prefix of one)"
            )
        folder = self.manifests_dir
        # Only id characters reach the glob, so a ref cannot walk out of the manifests folder.
        matches = sorted(folder.glob(f"{text}*.json")) if folder.is_dir() else []
        if not matches:
            raise ManifestError(
                f"no run {text!r} in {folder} (use --output-dir to point at another artifacts folder)"
            )
        if len(matches) > 1:
            shown = ", ".join(p.stem for p in matches[:5])
            raise ManifestError(f"run id prefix {text!r} is ambiguous in {folder}: {shown}")
        return matches[0]

    def load(self, ref: str | os.PathLike[str], *, allow_path: bool = True) -> RunManifest:
        """The manifest ``ref`` names (not verified: see :meth:`verify`)."""
        return RunManifest.load(self.resolve(ref, allow_path=allow_path))

    # -- verification -------------------------------------------------------------------------

    def verify(
        self,
        ref: str | os.PathLike[str],
        *,
        trusted_public_key: str | None = None,
        check_outputs: bool = True,
        allow_path: bool = True,
    ) -> ManifestVerification:
        """Everything that can be checked about a stored run, as one outcome (never raises on tampering).

        Checks the manifest's hash, exact bytes and signature; that the file is named for the
        run it holds; and, with ``check_outputs``, every output file and every stored input-rows
        file against its recorded SHA-256. A missing or unparseable manifest is reported as a
        failed verification, not raised; only a ref that names no run raises :class:`ManifestError`.
        """
        path = self.resolve(ref, allow_path=allow_path)
        try:
            manifest, raw = RunManifest.load_with_text(path)
        except ManifestTamperedError as exc:
            return ManifestVerification(False, False, "unknown", problems=[str(exc)])
        rdir = self.run_dir(manifest.run_id)
        has_dir = check_outputs and rdir.is_dir()
        result = manifest.check(
            raw=raw, trusted_public_key=trusted_public_key, run_directory=rdir if has_dir else None
        )
        if path.stem != manifest.run_id:
            # The hash covers run_id, so a sealed manifest copied under another name still checks
            # out by itself: only the file name shows the substitution.
            result.problems.append(f"the file is named for run {path.stem} but holds run {manifest.run_id}")
        if check_outputs and not has_dir:
            result.outputs_ok = False
            result.problems.append(f"run folder runs/{manifest.run_id} is missing: outputs not checked")
        if has_dir and manifest.inputs is not None:
            for pin in (manifest.inputs.training_rows, manifest.inputs.eval_rows):
                if pin is None:
                    continue
                f = rdir / pin.path
                if not f.is_file():
                    result.problems.append(f"input rows {pin.path} are missing")
                elif sha256_file(f) != pin.sha256:
                    result.problems.append(f"input rows {pin.path} changed (hash differs)")
        return result
