"""Test code sets: uniform, clustered like real pHashes (near-duplicates, skewed bits), repeated."""

from __future__ import annotations

import numpy as np


def flips(rng: np.random.Generator, n: int, mean: float) -> np.ndarray:
    """Masks with a Poisson(mean) number of random bits set (bits may coincide)."""
    count = rng.poisson(mean, n)
    mask = np.zeros(n, dtype=np.uint64)
    for j in range(int(count.max()) if n else 0):
        bit = rng.integers(0, 64, n).astype(np.uint64)
        mask |= np.where(j < count, np.uint64(1) << bit, np.uint64(0))
    return mask


def skewed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Codes whose bits lean one way, some strongly (like low DCT frequencies)."""
    p = np.concatenate([rng.uniform(0.85, 0.98, 12), rng.uniform(0.4, 0.6, 52)])
    p = np.where(rng.random(64) < 0.5, p, 1 - p)
    bits = rng.random((n, 64)) < p
    return (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def make_codes(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    if kind == "clustered":
        centres = skewed(rng, max(1, n // 8))
        return centres[rng.integers(0, len(centres), n)] ^ flips(rng, n, 1.5)
    if kind == "duplicates":
        few = rng.integers(0, 2**64 - 1, max(1, n // 20), dtype=np.uint64, endpoint=True)
        return few[rng.integers(0, len(few), n)]
    raise ValueError(kind)


def at_distance(rng: np.random.Generator, codes: np.ndarray, n: int, d: int) -> np.ndarray:
    """Codes exactly d bits away from picked codes: the boundary a wrong probe plan misses."""
    picked = codes[rng.integers(0, len(codes), n)]
    bits = np.argsort(rng.random((n, 64)), axis=1)[:, : min(d, 64)].astype(np.uint64)
    masks = np.bitwise_or.reduce(np.uint64(1) << bits, axis=1) if d else np.zeros(n, np.uint64)
    return picked ^ masks


def near(rng: np.random.Generator, codes: np.ndarray, n: int, mean: float) -> np.ndarray:
    """Queries close to existing codes (plus a few unrelated ones)."""
    if len(codes) == 0:
        return rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    picked = codes[rng.integers(0, len(codes), n)] ^ flips(rng, n, mean)
    picked[: max(1, n // 5)] = rng.integers(0, 2**64 - 1, max(1, n // 5), dtype=np.uint64)
    return picked
