"""Files a manifest names, read without ever leaving the run folder.

A manifest's ``outputs`` (and its pinned input rows) are paths chosen by whoever wrote the
file. Verifying them naively (``open(run_dir / rel)``) lets a forged manifest name
``../../../../etc/shadow`` or a symbolic link out of the folder, and turns every verifier (the
CLI, the API) into a "does this file exist, and what is its hash" oracle. Here:

* a recorded path must be a plain relative POSIX path (no leading ``/``, no ``..``, ``.`` or
  empty parts, no backslash or NUL), or it is rejected before any file is touched;
* the path is walked one component at a time from an open handle on the run folder
  (``openat``-style, ``O_NOFOLLOW``): a symbolic link is read, never followed by the kernel,
  and its target is resolved by hand; a target that leaves the folder is reported as
  ``outside`` without the outside path being opened, stat-ed or resolved;
* only a regular file is read (a FIFO or device named as an output cannot block or feed the
  verifier), opened ``O_NONBLOCK``.

Links that stay inside the folder are followed (by hand). Needs ``dir_fd`` support (Linux,
macOS, the BSDs).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

#: Most symbolic links one path may pass through (as Linux's own limit).
MAX_LINKS = 40

Status = Literal["ok", "missing", "outside", "bad_path", "not_a_file", "link_loop", "unreadable"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class InsideDigest:
    """What reading ``rel`` inside a folder found: a status and, when ``ok``, the SHA-256."""

    status: Status
    sha256: str | None = None
    reason: str | None = None
    """For ``unreadable``: the OS's words (``Permission denied``)."""


def plain_relative(rel: str) -> bool:
    """True when ``rel`` is a relative POSIX path of plain names (what Provenir records)."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        return False
    if len(rel) >= 2 and rel[1] == ":":  # a Windows drive (C:...)
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def digest_inside(root: str | os.PathLike[str], rel: str) -> InsideDigest:
    """SHA-256 of the regular file ``rel`` names inside ``root``, resolving links by hand.

    Never raises for anything the path or the folder's contents can do; ``root`` itself must be
    an existing folder the caller trusts.
    """
    if not plain_relative(rel):
        return InsideDigest("bad_path")
    try:
        root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError as exc:
        return InsideDigest("unreadable", reason=exc.strerror or type(exc).__name__)
    try:
        return _digest(root_fd, os.path.realpath(root), rel)
    finally:
        os.close(root_fd)


def _digest(root_fd: int, root_real: str, rel: str) -> InsideDigest:
    # stack[i] is an open directory i levels below the root (stack[0] is a dup of the root).
    stack = [os.dup(root_fd)]
    pending = deque(rel.split("/"))
    links = 0
    try:
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) == 1:
                    return InsideDigest("outside")
                os.close(stack.pop())
                continue
            try:
                st = os.stat(name, dir_fd=stack[-1], follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                return InsideDigest("missing")
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    return InsideDigest("link_loop")
                target = os.readlink(name, dir_fd=stack[-1])
                if os.path.isabs(target):
                    inside = _inside_part(root_real, target)
                    if inside is None:
                        return InsideDigest("outside")
                    while len(stack) > 1:  # continue from the root
                        os.close(stack.pop())
                    target = inside
                pending.extendleft(reversed(target.split("/")))
                continue
            if pending:
                if not stat.S_ISDIR(st.st_mode):
                    return InsideDigest("missing")  # a path through a file names nothing
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=stack[-1]))
                continue
            if not stat.S_ISREG(st.st_mode):
                return InsideDigest("not_a_file")
            fd = os.open(name, _FILE_FLAGS, dir_fd=stack[-1])
            with os.fdopen(fd, "rb", buffering=0) as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    return InsideDigest("not_a_file")  # swapped between the stat and the open
                return InsideDigest("ok", hashlib.file_digest(fh, "sha256").hexdigest())
        return InsideDigest("not_a_file")  # the path ended on a folder
    except OSError as exc:
        # ELOOP here means a component became a link after it was checked: treat as unreadable.
        return InsideDigest("unreadable", reason=exc.strerror or type(exc).__name__)
    finally:
        for fd in stack:
            os.close(fd)


def _inside_part(root_real: str, target: str) -> str | None:
    """``target`` (absolute) relative to the root when it lies lexically inside it, else None."""
    norm = posixpath.normpath(target)
    if norm == root_real:
        return "."
    prefix = root_real.rstrip("/") + "/"
    return norm[len(prefix) :] if norm.startswith(prefix) else None


@dataclass(frozen=True)
class FolderEntry:
    """Something found in a folder walk: a file, a symbolic link, or anything else (FIFO...)."""

    rel: str
    kind: Literal["file", "link", "other"]


def entries_inside(root: str | os.PathLike[str], folder: str) -> Iterator[FolderEntry]:
    """Every non-folder entry under ``root/folder`` (recursively), never following a link.

    Links (to files or folders) are yielded as ``link`` and not descended into. Yields nothing
    when ``folder`` is missing, is not a plain relative path, or is itself a link.
    """
    if not plain_relative(folder):
        return
    try:
        root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    except OSError:
        return
    try:
        fd = root_fd
        opened: list[int] = []
        try:
            for name in folder.split("/"):
                fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                opened.append(fd)
        except OSError:
            for f in opened:
                os.close(f)
            return
        try:
            yield from _walk(fd, folder)
        finally:
            for f in opened:
                os.close(f)
    finally:
        os.close(root_fd)


def _walk(dir_fd: int, prefix: str) -> Iterator[FolderEntry]:
    with os.scandir(dir_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = f"{prefix}/{entry.name}"
        if entry.is_symlink():
            yield FolderEntry(rel, "link")
        elif entry.is_dir(follow_symlinks=False):
            try:
                sub = os.open(entry.name, _DIR_FLAGS, dir_fd=dir_fd)
            except OSError:
                yield FolderEntry(rel, "other")
                continue
            try:
                yield from _walk(sub, rel)
            finally:
                os.close(sub)
        elif entry.is_file(follow_symlinks=False):
            yield FolderEntry(rel, "file")
        else:
            yield FolderEntry(rel, "other")


def file_problem(label: str, rel: str, found: InsideDigest, expected: str) -> str | None:
    """The one-line problem for a recorded file (``label`` ``output``, ``input rows``), or None.

    Every reader (CLI, API, report) shows these same words.
    """
    be = "are" if label.endswith("s") else "is"  # "input rows ... are missing"
    if found.status == "ok":
        return None if found.sha256 == expected else f"{label} {rel} changed (hash differs)"
    if found.status == "bad_path":
        return f"{label} path {rel!r} is not a plain relative path inside the run folder; not read"
    if found.status == "outside":
        return f"{label} {rel} {be} behind a symbolic link that leaves the run folder; not read"
    if found.status == "missing":
        return f"{label} {rel} {be} missing"
    if found.status == "not_a_file":
        return f"{label} {rel} {be} not a regular file"
    if found.status == "link_loop":
        return f"{label} {rel} passes through too many symbolic links"
    return f"{label} {rel} cannot be read ({found.reason})"
