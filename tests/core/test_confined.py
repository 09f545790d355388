"""Reading files a manifest names without leaving the run folder: every status, every link rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provenir.core.confined import (
    InsideDigest,
    digest_inside,
    entries_inside,
    file_problem,
    plain_relative,
)
from provenir.core.hashing import sha256_file


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "sub" / "deep").mkdir(parents=True)
    (run / "w.bin").write_bytes(b"weights")
    (run / "sub" / "deep" / "c.txt").write_text("c")
    (tmp_path / "outside.txt").write_text("secret")
    return run


@pytest.mark.parametrize("rel", ["w.bin", "a/b.bin", "a", "ab:c", "dir/.hidden", "x..y"])
def test_plain_relative_paths(rel: str) -> None:
    assert plain_relative(rel) is True


@pytest.mark.parametrize(
    "rel", ["", "/abs", "a\\b", "a\0b", "C:x", "c:", "a//b", "./a", "a/./b", "a/.", "../a", "a/..", "a/"]
)
def test_paths_that_are_not_plain_are_refused(rel: str) -> None:
    assert plain_relative(rel) is False
    assert digest_inside("/nonexistent", rel) == InsideDigest("bad_path")


def test_a_non_string_path_is_refused() -> None:
    assert plain_relative(5) is False  # type: ignore[arg-type]


def test_a_regular_file_is_hashed(root: Path) -> None:
    assert digest_inside(root, "w.bin") == InsideDigest("ok", sha256_file(root / "w.bin"))
    assert digest_inside(root, "sub/deep/c.txt").sha256 == sha256_file(root / "sub" / "deep" / "c.txt")


def test_missing_files_folders_and_paths_through_a_file(root: Path) -> None:
    assert digest_inside(root, "nope.bin").status == "missing"
    assert digest_inside(root, "nope/x.bin").status == "missing"
    assert digest_inside(root, "w.bin/x").status == "missing"  # a path through a file names nothing
    assert digest_inside(root, "sub").status == "not_a_file"
    os.mkfifo(root / "pipe")
    assert digest_inside(root, "pipe").status == "not_a_file"


def test_links_inside_the_folder_are_followed(root: Path) -> None:
    expected = sha256_file(root / "w.bin")
    (root / "rel").symlink_to("w.bin")
    (root / "sub" / "up").symlink_to("../w.bin")
    (root / "sub" / "abs").symlink_to(root / "w.bin")  # absolute, inside: continue from the root
    (root / "dots").symlink_to("./sub//deep/c.txt")
    (root / "self").symlink_to(root)  # the root itself
    for rel in ("rel", "sub/up", "sub/abs", "self/w.bin"):
        assert digest_inside(root, rel) == InsideDigest("ok", expected), rel
    assert digest_inside(root, "dots").sha256 == sha256_file(root / "sub" / "deep" / "c.txt")


def test_links_that_end_on_a_folder_are_not_files(root: Path) -> None:
    (root / "to_sub").symlink_to("sub/")
    (root / "to_root").symlink_to(root)
    assert digest_inside(root, "to_sub").status == "not_a_file"
    assert digest_inside(root, "to_root").status == "not_a_file"


def test_links_that_leave_the_folder_are_outside(root: Path, tmp_path: Path) -> None:
    (root / "abs_out").symlink_to(tmp_path / "outside.txt")
    (root / "rel_out").symlink_to("../outside.txt")
    (root / "sub" / "far_out").symlink_to("../../outside.txt")
    (root / "prefix_out").symlink_to(str(root) + "-sibling/x")  # shares the root's name as a prefix
    for rel in ("abs_out", "rel_out", "sub/far_out", "prefix_out"):
        assert digest_inside(root, rel) == InsideDigest("outside"), rel


def test_link_loops_and_long_chains(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    assert digest_inside(root, "a").status == "link_loop"
    # 40 links are allowed (Linux's own limit), the 41st is not.
    target = "w.bin"
    for i in range(41):
        (root / f"l{i}").symlink_to(target)
        target = f"l{i}"
    assert digest_inside(root, "l39").status == "ok"  # 40 links
    assert digest_inside(root, "l40").status == "link_loop"  # 41 links


def test_an_unopenable_root_or_name_is_unreadable(root: Path) -> None:
    missing = digest_inside(root / "gone", "w.bin")
    assert missing == InsideDigest("unreadable", reason="No such file or directory")
    too_long = digest_inside(root, "x" * 300)
    assert too_long == InsideDigest("unreadable", reason="File name too long")


def test_folder_entries_are_listed_without_following_links(root: Path, tmp_path: Path) -> None:
    (root / "sub" / "link").symlink_to(tmp_path)
    os.mkfifo(root / "sub" / "pipe")
    entries = {(e.rel, e.kind) for e in entries_inside(root, "sub")}
    assert entries == {("sub/deep/c.txt", "file"), ("sub/link", "link"), ("sub/pipe", "other")}
    assert [e.rel for e in entries_inside(root, "sub/deep")] == ["sub/deep/c.txt"]
    assert list(entries_inside(root, "../run")) == []
    assert list(entries_inside(root, "missing")) == []
    assert list(entries_inside(root / "gone", "sub")) == []
    (root / "linked").symlink_to(root / "sub", target_is_directory=True)
    assert list(entries_inside(root, "linked")) == []


@pytest.mark.parametrize(
    ("found", "problem"),
    [
        (InsideDigest("ok", "a" * 64), None),
        (InsideDigest("ok", "b" * 64), "output w.bin changed (hash differs)"),
        (
            InsideDigest("bad_path"),
            "output path 'w.bin' is not a plain relative path inside the run folder; not read",
        ),
        (
            InsideDigest("outside"),
            "output w.bin is behind a symbolic link that leaves the run folder; not read",
        ),
        (InsideDigest("missing"), "output w.bin is missing"),
        (InsideDigest("not_a_file"), "output w.bin is not a regular file"),
        (InsideDigest("link_loop"), "output w.bin passes through too many symbolic links"),
        (
            InsideDigest("unreadable", reason="Permission denied"),
            "output w.bin cannot be read (Permission denied)",
        ),
    ],
)
def test_each_status_is_one_problem_line(found: InsideDigest, problem: str | None) -> None:
    assert file_problem("output", "w.bin", found, "a" * 64) == problem


def test_plural_labels_read_as_plural() -> None:
    assert (
        file_problem("input rows", "r.jsonl", InsideDigest("missing"), "a" * 64)
        == "input rows r.jsonl are missing"
    )
