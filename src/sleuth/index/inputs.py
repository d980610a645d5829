"""Checking and normalising what callers pass in: ids, codes, radii, group names.

Codes are 64-bit patterns. SQL INTEGER columns (SQLite, PostgreSQL BIGINT) hold them as signed
64-bit numbers, so a negative value is taken as its two's-complement bit pattern: the code read
back from the database equals the code stored, whichever way it was written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

CODE_MIN = -(1 << 63)
CODE_MAX = (1 << 64) - 1


def _integer_array(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if not isinstance(values, np.ndarray) and arr.dtype.kind not in "iu":
        # Python ints beyond int64 make numpy pick float or object: keep them exact.
        arr = np.array(values, dtype=object)
    if arr.ndim != 1:
        if arr.ndim == 0:
            arr = arr.reshape(1)
        else:
            raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return arr
    if arr.dtype == object:
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr):
            raise TypeError(f"{what} must be integers")
        return arr
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {arr.dtype}")
    return arr


def as_codes(values: Any) -> np.ndarray:
    """uint64 array of codes; signed values are read as two's complement (see module doc)."""
    arr = _integer_array(values, "codes")
    if arr.size == 0:
        return np.empty(0, dtype=np.uint64)
    if arr.dtype == object:
        if any(int(v) < CODE_MIN or int(v) > CODE_MAX for v in arr):
            raise ValueError("codes must fit in 64 bits")
        return np.array([int(v) & CODE_MAX for v in arr], dtype=np.uint64)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64, copy=False).view(np.uint64)
    return arr.astype(np.uint64, copy=False)


def as_code(value: Any) -> np.uint64:
    """One code as np.uint64 (same rules as `as_codes`)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"a code must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < CODE_MIN or value > CODE_MAX:
        raise ValueError(f"code {value} does not fit in 64 bits")
    return np.uint64(value & CODE_MAX)


def as_ids(values: Any) -> np.ndarray:
    """int64 array of ids."""
    arr = _integer_array(values, "ids")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype == object:
        big = [int(v) for v in arr if not CODE_MIN <= int(v) < (1 << 63)]
        if big:
            raise ValueError(f"ids must fit in signed 64 bits, got {big[0]}")
        return np.array([int(v) for v in arr], dtype=np.int64)
    if arr.dtype == np.uint64 and bool((arr >= np.uint64(1 << 63)).any()):
        raise ValueError("ids must fit in signed 64 bits")
    return arr.astype(np.int64, copy=False)


def as_radius(value: Any) -> int:
    """A search radius: an integer >= 0; anything above 64 means every code."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"radius must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"radius must be >= 0, got {value}")
    return min(int(value), 64)


def as_count(value: Any) -> int:
    """k for k-nearest: an integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"k must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"k must be >= 0, got {value}")
    return int(value)


def as_group_names(groups: str | Iterable[str] | None) -> list[str]:
    if groups is None:
        return []
    names = [groups] if isinstance(groups, str) else list(groups)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a group name must be a non-empty string, got {name!r}")
    return list(dict.fromkeys(names))
