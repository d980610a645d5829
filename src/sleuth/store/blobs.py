"""Content-addressed blob folder: `ab/cd/<key>.<ext>`, written atomically.

A blob is written to a temporary file in its final folder, flushed, then renamed over the
final name, so a crash never leaves half a file and readers never see one. Writing the same
key twice is harmless (same content, same name).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Collection
from pathlib import Path

_KEY = re.compile(r"^[A-Za-z0-9_-]{4,128}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
TMP_PREFIX = ".tmp-"


class BlobStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str, ext: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"invalid blob key {key!r}")
        if not _EXT.match(ext):
            raise ValueError(f"invalid blob extension {ext!r}")
        return self.root / key[:2] / key[2:4] / f"{key}.{ext}"

    def put(self, key: str, ext: str, data: bytes, *, overwrite: bool = False) -> Path:
        """Store `data` under `key`. A content-addressed blob that exists is left as it is;
        `overwrite=True` (for keys that do not name their content) swaps it atomically."""
        final = self.path(key, ext)
        if not overwrite and final.exists():
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=TMP_PREFIX, suffix=f".{ext}")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    def get(self, key: str, ext: str) -> bytes:
        return self.path(key, ext).read_bytes()

    def exists(self, key: str, ext: str) -> bool:
        return self.path(key, ext).exists()

    def delete(self, key: str, ext: str) -> None:
        self.path(key, ext).unlink(missing_ok=True)

    def sweep(self, exts: Collection[str], older_than: float, tmp_older_than: float) -> int:
        """Delete blobs of the extensions `exts` last written before the epoch time
        `older_than`, and temporary files of writes that never finished (their writer was
        killed) from before `tmp_older_than`; returns how many files went. Folders stay: a
        writer may be about to use one."""
        for ext in exts:
            if not _EXT.match(ext):
                raise ValueError(f"invalid blob extension {ext!r}")
        suffixes = tuple(f".{ext}" for ext in exts)
        removed = 0
        for folder in self.root.glob("??/??"):
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_PREFIX):
                        cutoff = tmp_older_than
                    elif suffixes and entry.name.endswith(suffixes):
                        cutoff = older_than
                    else:
                        continue
                    try:
                        if entry.stat().st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
                    except FileNotFoundError:
                        continue  # finished or swept by someone else meanwhile
        return removed
