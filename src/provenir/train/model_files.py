"""Pin a base model or an adapter by content, for a manifest's ``inputs.model`` / ``inputs.init_adapter``.

A pin lists every file of the model folder with its SHA-256 (:func:`provenir.core.digests.hash_files`,
so a multi-GB model is read once per change, not once per run) and one digest over that list.

Which files: every regular file under the folder except hidden ones (any path part starting with
``.``: ``.git``, the ``.cache`` of ``hf download --local-dir``, ``.gitattributes``). That is a
superset of what ``from_pretrained`` reads (weight shards and their index, configs, tokenizer
files, chat templates, adapter files, custom code), chosen over a list of known names because
loading reads an open-ended set (remote code, processor configs, new tokenizer formats) and a
missed file would make a changed model look unchanged. The price is that an edited README also
counts as a change, which the diff names plainly.

Where the folder comes from (``FileSetPin.kind``):

* ``builtin``: ``provenir/tiny-llama``, built on first use (:mod:`provenir.train.tiny_model`).
* ``local``: an existing folder; ``revision`` does not apply and is not recorded.
* ``hub``: a hub id, resolved from the local Hugging Face cache only (pinning never goes
  online); the snapshot commit is recorded as ``resolved_revision``.

:func:`model_folder` is the one resolution every loader uses (training, evaluation, RLAIF, the
flywheel): models are loaded from the folder that was pinned, never fetched from the hub, so
``HF_HUB_OFFLINE`` or a missing network cannot make a load hang in retries.

No absolute path is recorded: ``source`` is the string as configured, file paths are relative.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from provenir.core.config import TINY_MODEL_ID
from provenir.core.digests import hash_files
from provenir.core.errors import ConfigError
from provenir.core.inputs import FileSetPin, file_set_digest

# A hub repo id as huggingface_hub validates it: "name" or "owner/name", word characters,
# "-" and "." inside, no "--" or "..". Anything else can only be meant as a local path.
_HUB_PART = r"\w(?:[\w.-]*\w)?"
_HUB_ID = re.compile(rf"(?:{_HUB_PART}/)?{_HUB_PART}")


def model_folder(source: str, revision: str | None = None) -> Path:
    """The local folder that loading ``source`` (``model_name_or_path``) reads; never goes online.

    The built-in id maps to its (built on first use) folder, a local path must be a folder, and
    a hub id resolves to its snapshot in the local Hugging Face cache at ``revision``. Every
    place that loads a model (training, evaluation, RLAIF, the flywheel) loads this folder, so
    what is loaded is what :func:`pin_model` hashed, and a missing model fails at once with
    one line instead of the hub client's retries or its "Repo id must be in the form" error.

    Raises :class:`ConfigError` when the path does not exist, is a file, or the hub id is not
    in the local cache.
    """
    if source == TINY_MODEL_ID:
        from provenir.train.tiny_model import resolve_model_path

        return Path(resolve_model_path(source))
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ConfigError(f"model path {source} is a file, not a model folder")
    if not _is_hub_id(source):
        raise ConfigError(f"model path {source} does not exist")
    return _hub_snapshot(source, revision)


def pin_model(source: str, revision: str | None = None) -> FileSetPin:
    """Pin the base model ``source`` (``model_name_or_path``) by the hash of each of its files.

    ``revision`` (``model_revision``) selects the hub snapshot; it is ignored for local folders
    and the built-in model, as ``from_pretrained`` ignores it there.

    >>> pin_model("provenir/tiny-llama").files["config.json"]  # doctest: +SKIP
    '5c1e…'

    Raises :class:`ConfigError` when the path does not exist, the hub id is not in the local
    cache, or the folder holds no files.
    """
    folder = model_folder(source, revision)
    if source == TINY_MODEL_ID:
        return _pin_folder(folder, source, "builtin", "model")
    if Path(source).expanduser().is_dir():
        return _pin_folder(folder, source, "local", "model")
    return _pin_folder(
        folder, source, "hub", "model", requested_revision=revision, resolved_revision=folder.name
    )


def pin_adapter(path: str) -> FileSetPin:
    """Pin the PEFT adapter folder ``path`` (``init_adapter``); ``kind`` is always ``local``."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ConfigError(f"adapter path {path} does not exist")
    if not folder.is_dir():
        raise ConfigError(f"adapter path {path} is a file, not an adapter folder")
    return _pin_folder(folder, path, "local", "adapter")


def _is_hub_id(source: str) -> bool:
    return bool(_HUB_ID.fullmatch(source)) and "--" not in source and ".." not in source


def _hub_cache_dir() -> Path:
    """The hub cache as huggingface_hub computes it, read now (its constants freeze at import)."""
    hf_home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    cache = (
        os.environ.get("HF_HUB_CACHE")
        or os.environ.get("HUGGINGFACE_HUB_CACHE")
        or os.path.join(hf_home, "hub")
    )
    return Path(os.path.expandvars(os.path.expanduser(cache)))


def _hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """The cached snapshot folder of ``repo_id`` at ``revision`` (default ``main``), offline."""
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download

    # IncompleteSnapshotError exists from huggingface_hub 1.x on; older versions never raise it.
    incomplete = getattr(hf_errors, "IncompleteSnapshotError", ())

    cache = _hub_cache_dir()
    at = f" at revision {revision}" if revision else ""
    try:
        folder = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
    except incomplete as exc:
        raise ConfigError(f"model {repo_id}{at}: {str(exc).splitlines()[0]}") from None
    except hf_errors.LocalEntryNotFoundError:
        raise ConfigError(
            f"model {repo_id}{at} is not a local folder and is not in the local Hugging Face cache "
            f"({cache}); download it first (hf download {repo_id}): models are only loaded from local files"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model {repo_id}{at}: cannot read the local Hugging Face cache: {exc}") from None
    return Path(folder)


def _pin_folder(
    folder: Path,
    source: str,
    kind: Literal["local", "hub", "builtin"],
    label: str,
    *,
    requested_revision: str | None = None,
    resolved_revision: str | None = None,
) -> FileSetPin:
    files = _visible_files(folder, label)
    if not files:
        raise ConfigError(f"{label} folder {source} contains no files")
    digests = hash_files(list(files.values()))
    by_rel = {rel: digests[files[rel]] for rel in sorted(files)}
    return FileSetPin(
        source=source,
        kind=kind,
        requested_revision=requested_revision,
        resolved_revision=resolved_revision,
        files=by_rel,
        digest=file_set_digest(by_rel),
    )


def _visible_files(folder: Path, label: str) -> dict[str, Path]:
    """Relative POSIX path -> path of every non-hidden regular file, following symlinks."""
    out: dict[str, Path] = {}
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop: walk each real folder once
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            if path.is_file():
                out[rel] = path
            elif path.is_symlink() and not path.exists():
                # A Hugging Face snapshot whose blob is gone: loading would fail or re-download it.
                raise ConfigError(f"{label} file {rel} is a broken link (its blob is missing)")
    return out
