"""The run store: the one owner of where a run's artifacts live and how a stored run is verified.

Layout under an artifacts root (``output_dir``)::

    manifests/<run_id>.json     sealed run manifests
    runs/<run_id>/              config, exact input rows, adapter, logs, eval results,
                                gate.json and provenance.intoto.jsonl (signed attestations; neither
                                is a manifest output: both are written after the manifest is sealed)
    audit/                      the hash-chained audit log
    judge_calibrations/         judge-vs-human calibration reports (`provenir judge calibrate`)
    index/                      caches rebuilt from the manifests (the API's run index)

Nothing else in Provenir builds these paths: the run driver writes through a store, and the
CLI, the REST API and reports read and verify through one, so "is this run intact?" has one
answer everywhere::

    from provenir.core.store import RunStore

    store = RunStore("artifacts")
    result = store.verify("123e4567")          # a run id, a unique prefix, "latest", or a manifest path
    print(result.ok, result.problems)

    policy = SignerPolicy.from_options(trusted_keys_file="trusted_keys.txt")
    store.verify("latest", policy=policy)      # unsigned or foreign-signed: not ok
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from provenir.core.confined import digest_inside, file_problem
from provenir.core.errors import ManifestError, ManifestTamperedError
from provenir.core.manifest import ManifestVerification, RunManifest, validate_run_id
from provenir.core.signers import SignerPolicy

#: Characters a run id (or a prefix of one) may contain; anything else is treated as a path.
_ID_CHARS = re.compile(r"^[0-9a-f-]{4,36}$")

#: The default artifacts root; ``$PROVENIR_OUTPUT_DIR`` overrides it for every command.
DEFAULT_OUTPUT_DIR = "artifacts"
OUTPUT_DIR_ENV = "PROVENIR_OUTPUT_DIR"

#: File name, inside a run folder, of the run's signed in-toto attestations (DSSE, one per line).
ATTESTATION_FILE = "provenance.intoto.jsonl"
#: File name, inside a run folder, of the latest regression-gate decision about the run's evaluation.
GATE_FILE = "gate.json"
#: File name, inside a run folder, of the gate spec registrations made after training (hash-chained JSONL).
GATE_REGISTRATIONS_FILE = "gate_registrations.jsonl"

#: The ref that names the store's newest run (by the time it started, as ``provenir runs list`` sorts).
LATEST = "latest"


def default_output_dir() -> str:
    """``$PROVENIR_OUTPUT_DIR`` or ``artifacts``."""
    return os.environ.get(OUTPUT_DIR_ENV) or DEFAULT_OUTPUT_DIR


@dataclass
class StoredRun:
    """A manifest file found in a store, read and verified: where every reader of a run starts.

    ``manifest`` is None when the file cannot be read as a manifest at all (the reason is then
    the verification's only problem).
    """

    store: RunStore
    manifest_file: Path
    manifest: RunManifest | None
    verification: ManifestVerification

    @property
    def run_dir(self) -> Path | None:
        """The run folder of the run the manifest holds (None when it could not be read)."""
        return self.store.run_dir(self.manifest.run_id) if self.manifest is not None else None


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
    def judge_calibrations_dir(self) -> Path:
        """``<root>/judge_calibrations``: judge-vs-human calibration reports, one per judge and label set."""
        return self.root / "judge_calibrations"

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

    def attestation_path(self, run_id: str) -> Path:
        """``<root>/runs/<run_id>/provenance.intoto.jsonl``: the run's signed attestations."""
        return self.run_dir(run_id) / ATTESTATION_FILE

    def run_ids(self) -> list[str]:
        """Sorted ids of the manifest files in the store (files not named ``<run id>.json`` are no run)."""
        folder = self.manifests_dir
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.json") if _is_run_id(p.stem) and p.is_file())

    def require_runs(self) -> list[str]:
        """:meth:`run_ids`, or a :class:`ManifestError` saying the folder holds no run at all."""
        ids = self.run_ids()
        if not ids:
            raise ManifestError(
                f"no runs in {self.root} (no manifests/<run_id>.json): train one, or point --output-dir "
                f"(or ${OUTPUT_DIR_ENV}) at the artifacts folder that holds your runs"
            )
        return ids

    def latest_run_id(self) -> str:
        """The id of the run that started last (ties: the greatest id); unreadable manifests are skipped."""
        newest: tuple[str, str] | None = None
        for run_id in self.require_runs():
            try:
                started = json.loads(self.manifest_path(run_id).read_text(encoding="utf-8"))["timestamp"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if isinstance(started, str) and (newest is None or (started, run_id) > newest):
                newest = (started, run_id)
        if newest is None:
            raise ManifestError(f"no readable run manifest in {self.manifests_dir}")
        return newest[1]

    def holds(self, manifest_file: str | os.PathLike[str]) -> bool:
        """True when ``manifest_file`` is one of this store's manifest files."""
        path = Path(manifest_file)
        return _is_run_id(path.stem) and path.resolve().parent == self.manifests_dir.resolve()

    # -- finding and reading ------------------------------------------------------------------

    def locate(self, ref: str | os.PathLike[str], *, allow_path: bool = True) -> tuple[RunStore, Path]:
        """The store holding the manifest ``ref`` names, and that manifest file.

        ``ref`` is a run id or unique run-id prefix (looked up here), or, with ``allow_path``, a
        manifest path, which brings its own store (the folder above its ``manifests/``).
        """
        path = self.resolve(ref, allow_path=allow_path)
        if self.holds(path):
            return self, path
        return RunStore.of_manifest_file(path), path

    def resolve(self, ref: str | os.PathLike[str], *, allow_path: bool = True) -> Path:
        """The manifest file for ``ref``: a manifest path, a run id, a unique run-id prefix, or ``latest``.

        ``allow_path=False`` accepts run ids only: use it whenever ``ref`` comes from someone
        other than the local user (a web request), so it can never name a file outside the store.
        Raises :class:`ManifestError` naming the folder searched when nothing (or more than one
        run) matches.
        """
        text = os.fspath(ref)
        candidate = Path(text)
        if allow_path and (text.endswith(".json") or candidate.is_file()):
            if not candidate.is_file():
                raise ManifestError(f"manifest not found: {candidate}")
            return candidate
        if text == LATEST:
            return self.manifest_path(self.latest_run_id())
        if not _ID_CHARS.fullmatch(text):
            raise ManifestError(
                f"{text!r} is neither a manifest file nor a run id (a UUID such as "
                f"123e4567-e89b-42d3-a456-426614174000, a unique prefix of one, or {LATEST!r})"
            )
        if _is_run_id(text) and self.manifest_path(text).is_file():
            return self.manifest_path(text)  # a whole id: no listing (the API asks per request)
        # Matched against listed ids, never globbed or joined: a ref cannot leave the folder.
        matches = [rid for rid in self.require_runs() if rid.startswith(text)]
        folder = self.manifests_dir
        if not matches:
            raise ManifestError(
                f"no run {text!r} in {folder} (use --output-dir to point at another artifacts folder)"
            )
        if len(matches) > 1:
            shown = ", ".join(matches[:5])
            raise ManifestError(f"run id prefix {text!r} is ambiguous in {folder}: {shown}")
        return self.manifest_path(matches[0])

    def load(self, ref: str | os.PathLike[str], *, allow_path: bool = True) -> RunManifest:
        """The manifest ``ref`` names (not verified: see :meth:`verify`)."""
        return RunManifest.load(self.resolve(ref, allow_path=allow_path))

    # -- verification -------------------------------------------------------------------------

    def verify(
        self,
        ref: str | os.PathLike[str],
        *,
        policy: SignerPolicy | None = None,
        check_outputs: bool = True,
        allow_path: bool = True,
    ) -> ManifestVerification:
        """Everything that can be checked about a stored run, as one outcome (never raises on tampering).

        Checks the manifest's hash, exact bytes and signature (under ``policy``: with one, an
        unsigned or foreign-signed manifest fails); that a file named for a run holds that run;
        and, with ``check_outputs``, every output file and every stored input-rows file against
        its recorded SHA-256, inside the run folder only, plus unrecorded files in output
        folders (:meth:`RunManifest.check_outputs`; a missing run folder fails when the manifest
        lists files in it). An unreadable manifest is a failed verification, not an exception;
        only a ref that names no run raises :class:`ManifestError`. Problems name files relative
        to the store (``manifests/<id>.json``, ``runs/<id>``), never by an absolute path, and
        are the same words in every reader (CLI, API, report).
        """
        return self.open(ref, policy=policy, check_outputs=check_outputs, allow_path=allow_path).verification

    def open(
        self,
        ref: str | os.PathLike[str],
        *,
        policy: SignerPolicy | None = None,
        check_outputs: bool = True,
        allow_path: bool = True,
    ) -> StoredRun:
        """Find, read and verify the run ``ref`` names (see :meth:`verify` for the checks)."""
        store, path = self.locate(ref, allow_path=allow_path)
        try:
            manifest, raw = RunManifest.load_with_text(path)
        except ManifestTamperedError as exc:
            return StoredRun(store, path, None, _unreadable(exc, path))
        except OSError as exc:
            # Unreadable (permissions, a folder named *.json): nothing about the run can be trusted.
            problem = f"manifest file cannot be read ({exc.strerror or type(exc).__name__})"
            return StoredRun(
                store, path, None, ManifestVerification(False, False, "unknown", problems=[problem])
            )
        return StoredRun(store, path, manifest, store._check(manifest, raw, path, policy, check_outputs))

    def _check(
        self,
        manifest: RunManifest,
        raw: str,
        path: Path,
        policy: SignerPolicy | None,
        check_outputs: bool,
    ) -> ManifestVerification:
        rdir = self.run_dir(manifest.run_id)
        # A run folder that is itself a link could point anywhere: its files are not read.
        linked = check_outputs and rdir.is_symlink()
        has_dir = check_outputs and not linked and rdir.is_dir()
        result = manifest.check(raw=raw, policy=policy, run_directory=rdir if has_dir else None)
        if _is_run_id(path.stem) and path.stem != manifest.run_id:
            # The hash covers run_id, so a sealed manifest copied under another name still checks
            # out by itself: only the file name shows the substitution.
            result.problems.append(f"the file is named for run {path.stem} but holds run {manifest.run_id}")
        pins = _row_pins(manifest)
        if check_outputs and not has_dir:
            # A manifest that lists no files needs no run folder (a failed run, a hand-made record).
            result.outputs_ok = not (manifest.outputs or pins)
            if linked:
                result.outputs_ok = False
                result.problems.append(
                    f"run folder runs/{manifest.run_id} is a symbolic link: outputs not checked"
                )
            elif not result.outputs_ok:
                result.problems.append(f"run folder runs/{manifest.run_id} is missing: outputs not checked")
        if has_dir:
            for rel, sha in pins:
                problem = file_problem("input rows", rel, digest_inside(rdir, rel), sha)
                if problem is not None:
                    result.problems.append(problem)
        return result


def _is_run_id(text: str) -> bool:
    try:
        validate_run_id(text)
    except ManifestError:
        return False
    return True


def _row_pins(manifest: RunManifest) -> list[tuple[str, str]]:
    """``(path, sha256)`` of the exact-rows files the manifest pins in its run folder."""
    if manifest.inputs is None:
        return []
    pins = (manifest.inputs.training_rows, manifest.inputs.eval_rows)
    return [(p.path, p.sha256) for p in pins if p is not None]


def _unreadable(exc: ManifestTamperedError, path: Path) -> ManifestVerification:
    """The outcome for a manifest file that does not parse: one problem, without the file's path."""
    message = str(exc)
    prefix = f"{path}: "
    # The caller names the file; a problem must not carry a server path (the API serves it).
    message = message[len(prefix) :] if message.startswith(prefix) else message.replace(str(path), path.name)
    return ManifestVerification(False, False, "unknown", problems=[" ".join(message.split())])
