from __future__ import annotations

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
