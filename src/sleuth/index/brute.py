"""Brute-force references: what the index must return, computed the obvious way.

Tests and the benchmark compare the index against these; they are also the right tool for a
few thousand codes, where building tables costs more than scanning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sleuth.index.inputs import as_code, as_codes, as_count, as_ids, as_radius


def _pairs(codes: Any, ids: Any) -> tuple[np.ndarray, np.ndarray]:
    codes_arr, ids_arr = as_codes(codes), as_ids(ids)
    if len(codes_arr) != len(ids_arr):
        raise ValueError(f"{len(ids_arr)} ids for {len(codes_arr)} codes")
    return codes_arr, ids_arr


def ranked(ids: np.ndarray, dist: np.ndarray) -> list[tuple[int, int]]:
    """(id, distance) pairs sorted by distance, then id."""
    order = np.lexsort((ids, dist))
    return list(zip(ids[order].tolist(), dist[order].tolist(), strict=True))


def brute_force_radius(codes: Any, ids: Any, q: Any, r: Any) -> list[tuple[int, int]]:
    """Every (id, distance) with Hamming distance <= r from q, by distance then id."""
    codes_arr, ids_arr = _pairs(codes, ids)
    dist = np.bitwise_count(codes_arr ^ as_code(q)).astype(np.int64)
    hit = dist <= as_radius(r)
    return ranked(ids_arr[hit], dist[hit])


def brute_force_knn(codes: Any, ids: Any, q: Any, k: Any) -> list[tuple[int, int]]:
    """The k nearest (id, distance), ties broken by the smaller id."""
    codes_arr, ids_arr = _pairs(codes, ids)
    dist = np.bitwise_count(codes_arr ^ as_code(q)).astype(np.int64)
    return ranked(ids_arr, dist)[: as_count(k)]
