"""Check that a folder can be written before any work goes into filling it.

A run that loads data, pins a multi-GB model and trains for an hour must not find out at the
end that its ``output_dir`` is read-only. :func:`ensure_writable_dir` creates the folder and a
temporary file in it, then removes both, so a refused run leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from provenir.core.errors import ConfigError


def ensure_writable_dir(path: str | os.PathLike[str], setting: str = "output_dir") -> Path:
    """Prove that files can be created in ``path`` (made if missing); return it as a Path.

    The probe leaves the file system as it found it: the temporary file and any folder it
    had to create are removed again, whether the probe succeeds or not, so a run refused
    later (bad data, say) leaves no empty ``output_dir`` behind. ``setting`` names the config
    field in the error, which reads e.g.
    ``cannot write to output_dir /data/ro/artifacts: Permission denied``.

    >>> ensure_writable_dir("artifacts")  # doctest: +SKIP
    PosixPath('artifacts')
    """
    folder = Path(path).expanduser()
    created: list[Path] = []
    try:
        # Walk up to the first existing ancestor so that exactly the folders made here are undone.
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        for part in reversed(missing):
            try:
                part.mkdir()
            except FileExistsError:  # another process made it meanwhile: not ours to undo
                continue
            created.append(part)
        fd, probe = tempfile.mkstemp(prefix=".provenir-write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"cannot write to {setting} {path}: {reason}") from None
    finally:
        for part in reversed(created):
            with contextlib.suppress(OSError):  # not empty: someone else is writing there now
                part.rmdir()
    return folder
