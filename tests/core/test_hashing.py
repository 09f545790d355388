from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provenir.core.atomic import atomic_write_bytes
from provenir.core.errors import DataError
from provenir.core.hashing import canonical_json, sha256_file, sha256_json, sha256_path, sha256_rows


def test_file_hash_equals_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    data = bytes(range(256)) * (4096 * 3 + 17)  # > 3 MiB, not a multiple of the chunk size
    f = tmp_path / "blob"
    f.write_bytes(data)
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert sha256_file(empty) == hashlib.sha256(b"").hexdigest()


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    assert sha256_json({"x": 1, "y": 2}) == sha256_json({"y": 2, "x": 1})


def test_folder_hash_detects_add_edit_rename(tmp_path: Path) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.jsonl").write_text("1\n")
    (d / "sub" / "b.jsonl").write_text("2\n")
    h0 = sha256_path(d)
    (d / "a.jsonl").write_text("1\n ")
    h1 = sha256_path(d)
    (d / "a.jsonl").rename(d / "c.jsonl")
    h2 = sha256_path(d)
    (d / "new").write_text("")
    h3 = sha256_path(d)
    assert len({h0, h1, h2, h3}) == 4
    with pytest.raises(DataError):
        sha256_path(tmp_path / "missing")


def test_rows_hash_depends_on_content_and_order() -> None:
    rows = [{"prompt": "a", "response": "b"}, {"prompt": "c", "response": "d"}]
    assert sha256_rows(rows) == sha256_rows(
        [{"response": "b", "prompt": "a"}, {"prompt": "c", "response": "d"}]
    )
    assert sha256_rows(rows) != sha256_rows(list(reversed(rows)))


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.json"
    atomic_write_bytes(target, b"old")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("provenir.core.atomic.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left behind


def test_atomic_write_gives_ordinary_file_modes(tmp_path: Path) -> None:
    import os
    import stat

    from provenir.core.atomic import _UMASK

    fresh = atomic_write_bytes(tmp_path / "fresh.json", b"{}")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~_UMASK
    os.chmod(fresh, 0o600)  # a deliberately private file stays private when rewritten
    atomic_write_bytes(fresh, b"[]")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_a_single_file_hashes_as_its_bytes(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\x00weights\xff" * 1000)
    assert sha256_path(f) == hashlib.sha256(f.read_bytes()).hexdigest() == sha256_file(f)


def test_a_folder_without_files_is_refused_by_name(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "only" / "folders").mkdir(parents=True)
    with pytest.raises(DataError, match="folder contains no files to hash"):
        sha256_path(empty)
    with pytest.raises(DataError, match="no such file or folder"):
        sha256_path(tmp_path / "missing")


def test_folder_hash_is_the_digest_of_its_sorted_path_and_hash_lines(tmp_path: Path) -> None:
    from provenir.core.inputs import file_set_digest

    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "b.json").write_text("{}")
    (d / "a.bin").write_bytes(b"\x01\x02")
    (d / "sub" / "c.txt").write_text("c")
    files = {p.relative_to(d).as_posix(): sha256_file(p) for p in d.rglob("*") if p.is_file()}
    lines = "".join(f"{rel}\0{files[rel]}\n" for rel in sorted(files))
    assert sha256_path(d) == hashlib.sha256(lines.encode()).hexdigest() == file_set_digest(files)


def test_rows_hash_is_canonical_json_lines() -> None:
    rows = [{"b": 1, "a": "x"}, {"c": [1, 2]}]
    expected = hashlib.sha256(b'{"a":"x","b":1}\n{"c":[1,2]}\n').hexdigest()
    assert sha256_rows(rows) == expected
    assert sha256_rows([]) == hashlib.sha256(b"").hexdigest()
    assert sha256_json({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
