"""How sleuth writes an image's hashes: the MD5 of its bytes, and a 64-bit pHash as hex for
people and as a signed BIGINT for SQL.

Kept apart from the kernel (`phash`, `process`) so that the processes that only store, show or
look up hashes never import numpy, Pillow or scipy."""

from __future__ import annotations

import hashlib


def md5_hex(data: bytes) -> str:
    """MD5 of the bytes as downloaded (not of decoded pixels, which the seed hashed)."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def phash_to_db(value: int) -> int:
    """64 unsigned bits → the signed BIGINT every database stores."""
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_from_db(value: int) -> int:
    """A stored signed BIGINT → the unsigned 64-bit hash."""
    return value + (1 << 64) if value < 0 else value


def phash_hex(value: int) -> str:
    """16 lowercase hex digits, as `str(imagehash.phash(...))` prints them."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"not an unsigned 64-bit hash: {value}")
    return f"{value:016x}"


def phash_from_hex(text: str) -> int:
    """The inverse of `phash_hex` (also reads imagehash's strings)."""
    if len(text) != 16:
        raise ValueError(f"a 64-bit pHash has 16 hex digits, got {text!r}")
    return int(text, 16)
