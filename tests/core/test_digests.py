from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import provenir.core.digests as digests
from provenir.core.digests import digest_cache_path, hash_files
from provenir.core.errors import DataError

OLD_NS = 1_600_000_000 * 10**9  # an mtime well outside the racy window


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROVENIR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def hashed_count(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths actually read by hash_files (the real sha256_file still does the work)."""
    calls: list[str] = []
    real = digests.sha256_file

    def counting(path: str | os.PathLike[str]) -> str:
        calls.append(str(path))
        return real(path)

    monkeypatch.setattr(digests, "sha256_file", counting)
    return calls


def _write(path: Path, data: bytes, mtime_ns: int | None = OLD_NS) -> Path:
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def _rows() -> dict[str, tuple[int, int, int, int, str]]:
    with sqlite3.connect(digest_cache_path()) as conn:
        return {
            r[0]: r[1:]
            for r in conn.execute("SELECT path, size, mtime_ns, ctime_ns, inode, sha256 FROM digests_v1")
        }


def test_parallel_equals_serial_equals_hashlib(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"f{i}", os.urandom(1000 * i + (3 << 20) * (i % 2))) for i in range(7)]
    expected = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert hash_files(files, workers=1, cache=False) == expected
    assert hash_files(files, workers=4, cache=False) == expected
    assert hash_files(files) == expected  # default workers, through the cache


def test_cache_hit_after_first_hash(tmp_path: Path, hashed_count: list[str]) -> None:
    files = [_write(tmp_path / f"f{i}", os.urandom(4096)) for i in range(3)]
    first = hash_files(files)
    assert len(hashed_count) == 3
    rows = _rows()
    assert {rows[str(f.resolve())][-1] for f in files} == set(first.values())
    assert hash_files(files) == first
    assert len(hashed_count) == 3  # second call read nothing


def test_cache_false_neither_reads_nor_writes(tmp_path: Path, hashed_count: list[str]) -> None:
    f = _write(tmp_path / "f", b"x" * 100)
    hash_files([f], cache=False)
    assert not digest_cache_path().exists()
    hash_files([f])
    hash_files([f], cache=False)
    assert len(hashed_count) == 3


@pytest.mark.parametrize("column", ["size", "mtime_ns", "ctime_ns", "inode"])
def test_each_stat_field_is_part_of_the_key(tmp_path: Path, column: str) -> None:
    f = _write(tmp_path / "f", b"content")
    real = hashlib.sha256(b"content").hexdigest()
    hash_files([f])
    bogus = "0" * 64
    with sqlite3.connect(digest_cache_path()) as conn:
        conn.execute("UPDATE digests_v1 SET sha256 = ?", (bogus,))
    # The row is used while every field matches (so the cache really answers) ...
    assert hash_files([f]) == {f: bogus}
    with sqlite3.connect(digest_cache_path()) as conn:
        conn.execute(f"UPDATE digests_v1 SET {column} = {column} + 1")
    # ... and ignored as soon as one field differs.
    assert hash_files([f]) == {f: real}


def test_same_size_rewrite_is_rehashed_even_with_mtime_restored(tmp_path: Path) -> None:
    f = _write(tmp_path / "w.bin", b"a" * 1000)
    assert hash_files([f])[f] == hashlib.sha256(b"a" * 1000).hexdigest()
    # New content, same size, new (old-looking) mtime: mtime is in the key.
    _write(f, b"b" * 1000, mtime_ns=OLD_NS + 10**9)
    assert hash_files([f])[f] == hashlib.sha256(b"b" * 1000).hexdigest()
    # New content, same size, same inode, mtime set back to the cached value: ctime still differs.
    _write(f, b"c" * 1000, mtime_ns=OLD_NS + 10**9)
    assert hash_files([f])[f] == hashlib.sha256(b"c" * 1000).hexdigest()


def test_freshly_written_file_is_not_cached(tmp_path: Path) -> None:
    f = _write(tmp_path / "new", b"fresh", mtime_ns=None)  # mtime is now: inside the racy window
    assert hash_files([f])[f] == hashlib.sha256(b"fresh").hexdigest()
    assert str(f.resolve()) not in _rows()
    os.utime(f, ns=(OLD_NS, OLD_NS))
    hash_files([f])
    assert str(f.resolve()) in _rows()


def test_symlinks_share_one_entry_of_the_real_file(tmp_path: Path, hashed_count: list[str]) -> None:
    blob = _write(tmp_path / "blob", b"weights")
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    a.symlink_to("blob")
    b.symlink_to(blob)
    out = hash_files([a, b, blob])
    assert set(out) == {a, b, blob}
    assert set(out.values()) == {hashlib.sha256(b"weights").hexdigest()}
    assert hashed_count == [str(blob.resolve())]
    assert list(_rows()) == [str(blob.resolve())]


def test_missing_file_and_folder_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        hash_files([tmp_path / "nope"])
    with pytest.raises(DataError, match="not a regular file"):
        hash_files([tmp_path])


def test_corrupt_cache_falls_back_to_hashing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    digest_cache_path().parent.mkdir(parents=True)
    digest_cache_path().write_bytes(b"this is not a database" * 100)
    f = _write(tmp_path / "f", b"data")
    with caplog.at_level(logging.WARNING, logger="provenir.core.digests"):
        assert hash_files([f]) == {f: hashlib.sha256(b"data").hexdigest()}
    assert "digest cache" in caplog.text


def test_processes_share_the_cache(tmp_path: Path) -> None:
    files = [_write(tmp_path / f"f{i}", os.urandom(2048)) for i in range(40)]
    code = (
        "import sys; from pathlib import Path; from provenir.core.digests import hash_files; "
        "out = hash_files([Path(p) for p in sys.argv[1:]]); print(len(out))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, *map(str, files)], env=env, stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    assert [p.communicate(timeout=60)[0].strip() for p in procs] == [b"40"] * 3
    assert all(p.returncode == 0 for p in procs)
    rows = _rows()
    assert {rows[str(f.resolve())][-1] for f in files} == {
        hashlib.sha256(f.read_bytes()).hexdigest() for f in files
    }
