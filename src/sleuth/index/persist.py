"""On-disk form: a folder of .npy files and a manifest, written aside and renamed into place.

Loading memory-maps the arrays, so a restart costs a page-in rather than a rebuild; the manifest
records the format version and, per array, its dtype, shape and CRC-32, checked on load, so a
truncated or corrupted copy is refused with the reason instead of giving wrong answers.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "sleuth.hamming-index"
VERSION = 1
MANIFEST = "manifest.json"
_CHUNK = 1 << 24


class IndexFileError(ValueError):
    """A saved index that cannot be loaded: missing, wrong version, truncated or corrupted."""


def file_crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return crc


def write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Save each array as <name>.npy; return the manifest entries describing them."""
    entries: dict[str, dict[str, Any]] = {}
    for name, arr in arrays.items():
        path = folder / f"{name}.npy"
        with path.open("wb") as fh:
            np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        entries[name] = {
            "dtype": np.dtype(arr.dtype).str,
            "shape": list(arr.shape),
            "size": path.stat().st_size,
            "crc32": file_crc32(path),
        }
    return entries


def read_arrays(
    folder: Path, entries: dict[str, dict[str, Any]], *, mmap: bool, verify: bool
) -> dict[str, np.ndarray]:
    """Load and check the arrays a manifest lists."""
    arrays: dict[str, np.ndarray] = {}
    for name, entry in entries.items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise IndexFileError(f"{path}: missing")
        size = path.stat().st_size
        if size != entry["size"]:
            raise IndexFileError(f"{path}: {size} bytes, the manifest says {entry['size']}")
        if verify and file_crc32(path) != entry["crc32"]:
            raise IndexFileError(f"{path}: checksum mismatch (file corrupted)")
        try:
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as exc:
            raise IndexFileError(f"{path}: unreadable ({exc})") from exc
        if arr.dtype.str != entry["dtype"] or list(arr.shape) != entry["shape"]:
            raise IndexFileError(
                f"{path}: {arr.dtype.str}{list(arr.shape)}, expected "
                f"{entry['dtype']}{entry['shape']}"
            )
        # A plain ndarray over the mapping: numpy's memmap subclass adds overhead to every call.
        arrays[name] = arr.view(np.ndarray) if mmap else arr
    return arrays


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST
    with path.open("w", encoding="utf-8") as fh:
        json.dump({"format": FORMAT, "version": VERSION, **manifest}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexFileError(f"{folder}: no {MANIFEST}, not a saved index")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFileError(f"{path}: not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise IndexFileError(
            f"{path}: format version {manifest.get('version')}, this sleuth reads {VERSION}"
        )
    return manifest


def replace_folder(tmp: Path, path: Path) -> None:
    """Move a fully written folder to `path`, replacing what was there."""
    if path.exists() and not path.is_dir():
        raise IndexFileError(f"{path}: exists and is not a folder")
    old = path.with_name(f"{path.name}.old-{os.getpid()}")
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    if old.exists():
        shutil.rmtree(old)
