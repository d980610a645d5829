from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleuth.store.blobs import BlobStore


def test_put_get_layout_and_idempotence(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    path = blobs.put("abcdef0123", "gray", b"one")
    assert path == tmp_path / "ab" / "cd" / "abcdef0123.gray"
    assert blobs.put("abcdef0123", "gray", b"two") == path  # content-addressed: kept
    assert blobs.get("abcdef0123", "gray") == b"one"
    blobs.put("abcdef0123", "gray", b"two", overwrite=True)
    assert blobs.get("abcdef0123", "gray") == b"two"
    assert not list(path.parent.glob(".tmp-*")), "no temporary file left behind"
    blobs.delete("abcdef0123", "gray")
    assert not blobs.exists("abcdef0123", "gray")
    blobs.delete("abcdef0123", "gray")  # deleting twice is harmless


def test_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    final = blobs.path("deadbeef00", "bin")
    final.mkdir(parents=True)  # the rename onto a directory fails
    with pytest.raises(OSError):
        blobs.put("deadbeef00", "bin", b"x" * 1000, overwrite=True)
    assert [p.name for p in final.parent.iterdir()] == ["deadbeef00.bin"]


@pytest.mark.parametrize("key", ["../etc", "a", "x/y/zzzz", ""])
def test_rejects_unsafe_keys(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        BlobStore(tmp_path).path(key, "bin")


def test_sweep_removes_old_inflight_blobs_and_abandoned_temporary_files(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path)
    old_orig = blobs.put("old-line-1", "orig", b"o")
    new_orig = blobs.put("new-line-2", "orig", b"n")
    old_gray = blobs.put("abcdef0123", "gray", b"g")  # a kept result, however old
    old_tmp = old_gray.parent / ".tmp-killed.gray"  # a writer killed mid-write
    old_tmp.write_bytes(b"half")
    new_tmp = new_orig.parent / ".tmp-writing.orig"  # a write going on now
    new_tmp.write_bytes(b"ha")
    for path in (old_orig, old_gray, old_tmp):
        os.utime(path, (1000.0, 1000.0))
    assert blobs.sweep(["orig"], older_than=2000.0, tmp_older_than=2000.0) == 2
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        ".tmp-writing.orig",
        "abcdef0123.gray",
        "new-line-2.orig",
    ]
    assert blobs.sweep(["orig"], older_than=2000.0, tmp_older_than=2000.0) == 0
    assert BlobStore(tmp_path / "none").sweep(["orig"], 2000.0, 2000.0) == 0  # no folder yet
    with pytest.raises(ValueError, match="invalid blob extension"):
        blobs.sweep(["../x"], 0.0, 0.0)
