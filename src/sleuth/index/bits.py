"""Bit-level helpers: bit permutations chosen from the data, flip masks, substring layouts.

Multi-index hashing looks codes up by substrings. Real pHashes have skewed and uneven bits (the DC
bit is nearly always 1, low frequencies lean one way), so cutting the 64 bits in natural order gives
some substrings far less entropy than others and their buckets swell. The index therefore permutes
every code once, so that each substring gets a fair share of the entropy, and then substrings are
plain contiguous bit fields of the permuted code (two ufunc calls to extract a key).
"""

from __future__ import annotations

import math
from functools import lru_cache
from itertools import combinations

import numpy as np

BITS = 64
MAX_KEY_BITS = 22  # the largest substring: its offsets table has 2**22 + 1 entries (16 MiB)
MIN_SUBSTRINGS = math.ceil(BITS / MAX_KEY_BITS)  # 3
MAX_SUBSTRINGS = 16


def substring_widths(m: int) -> tuple[int, ...]:
    """Split 64 bits into m near-equal substrings, the wider ones first."""
    if not MIN_SUBSTRINGS <= m <= MAX_SUBSTRINGS:
        raise ValueError(f"substrings must be in {MIN_SUBSTRINGS}..{MAX_SUBSTRINGS}, got {m}")
    base, extra = divmod(BITS, m)
    return tuple(base + 1 if t < extra else base for t in range(m))


def substring_shifts(widths: tuple[int, ...]) -> tuple[int, ...]:
    """Where each substring starts in the permuted code: table 0 holds the top bits."""
    shifts = []
    top = BITS
    for w in widths:
        top -= w
        shifts.append(top)
    return tuple(shifts)


def choose_substrings(n: int) -> int:
    """Pick m so that a substring has about log2(n) bits: then a bucket holds about one code.

    That is the operating point Norouzi et al. derive for multi-index hashing; fewer, wider
    substrings would need offsets tables larger than the codes, more would fill buckets.
    """
    if n < 2:
        return MAX_SUBSTRINGS
    m = round(BITS / math.log2(n))
    return max(MIN_SUBSTRINGS, min(MAX_SUBSTRINGS, m))


def bit_probabilities(codes: np.ndarray) -> np.ndarray:
    """Fraction of ones at each of the 64 bit positions (bit 0 = least significant)."""
    if codes.size == 0:
        return np.full(BITS, 0.5)
    as_bytes = codes.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    ones = np.unpackbits(as_bytes, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
    fractions: np.ndarray = ones / codes.size
    return fractions


def balanced_permutation(codes: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """Destination bit position for each source bit, balancing entropy across substrings.

    Bits are ranked by entropy and dealt to the substrings in snake order (0,1,..,m-1,m-1,..,0),
    so every substring gets a similar mix of informative and nearly constant bits. Returns `dest`
    with `dest[j]` = position of source bit j in the permuted code.
    """
    p = np.clip(bit_probabilities(codes), 1e-9, 1 - 1e-9)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    ranked = np.argsort(-entropy, kind="stable")
    m = len(widths)
    members: list[list[int]] = [[] for _ in range(m)]
    snake = list(range(m)) + list(range(m - 1, -1, -1))
    turn = 0
    for bit in ranked.tolist():
        while len(members[snake[turn % len(snake)]]) >= widths[snake[turn % len(snake)]]:
            turn += 1
        members[snake[turn % len(snake)]].append(bit)
        turn += 1
    dest = np.empty(BITS, dtype=np.int64)
    for t, shift in enumerate(substring_shifts(widths)):
        for offset, bit in enumerate(sorted(members[t])):
            dest[bit] = shift + offset
    return dest


def identity_permutation() -> np.ndarray:
    return np.arange(BITS, dtype=np.int64)


def check_permutation(dest: np.ndarray) -> np.ndarray:
    """Validate a stored permutation (a corrupt one would silently break exactness)."""
    dest = np.asarray(dest, dtype=np.int64)
    if dest.shape != (BITS,) or not np.array_equal(np.sort(dest), np.arange(BITS)):
        raise ValueError("bit permutation must be a permutation of 0..63")
    return dest


def inverse_permutation(dest: np.ndarray) -> np.ndarray:
    inverse = np.empty(BITS, dtype=np.int64)
    inverse[dest] = np.arange(BITS)
    return inverse


def compose(first: np.ndarray, then: np.ndarray) -> np.ndarray:
    """The permutation that applies `first`, then `then`."""
    composed: np.ndarray = then[first]
    return composed


def byte_tables(dest: np.ndarray) -> np.ndarray:
    """tables[b][v]: where the bits of value v in byte b of a code land after permuting."""
    return _byte_tables(np.ascontiguousarray(dest, dtype=np.int64).tobytes())


@lru_cache(maxsize=16)
def _byte_tables(dest_key: bytes) -> np.ndarray:
    dest = np.frombuffer(dest_key, dtype=np.int64)
    values = np.arange(256, dtype=np.uint64)
    tables = np.zeros((8, 256), dtype=np.uint64)
    for byte in range(8):
        for bit in range(8):
            is_set = (values >> np.uint64(bit)) & np.uint64(1)
            tables[byte] |= is_set << np.uint64(dest[8 * byte + bit])
    return tables


def permute(codes: np.ndarray, dest: np.ndarray) -> np.ndarray:
    """Apply a bit permutation to uint64 codes: one table lookup per byte, ORed together."""
    codes = np.ascontiguousarray(codes, dtype=np.uint64)
    if np.array_equal(dest, np.arange(BITS)):
        return codes  # not a copy: callers never write into permuted codes
    tables = byte_tables(dest)
    as_bytes = codes.astype("<u8", copy=False).view(np.uint8).reshape(-1, 8)
    out: np.ndarray = tables[0][as_bytes[:, 0]]
    for byte in range(1, 8):
        out |= tables[byte][as_bytes[:, byte]]
    return out


@lru_cache(maxsize=256)
def flip_masks(width: int, weight: int) -> tuple[np.ndarray, np.ndarray]:
    """All masks of `width` bits with at most `weight` ones, by weight; and how many per weight.

    Returns (masks, ends): masks[:ends[w]] are the masks of weight <= w.
    """
    masks: list[int] = []
    ends: list[int] = []
    for w in range(min(weight, width) + 1):
        for ones in combinations(range(width), w):
            masks.append(sum(1 << b for b in ones))
        ends.append(len(masks))
    ends += [len(masks)] * (weight + 1 - len(ends))
    out = np.array(masks, dtype=np.int64)
    out.flags.writeable = False
    ends_arr = np.array(ends, dtype=np.int64)
    ends_arr.flags.writeable = False
    return out, ends_arr


def ball_size(width: int, radius: int) -> int:
    """How many keys lie within `radius` of a `width`-bit key."""
    return sum(math.comb(width, w) for w in range(min(radius, width) + 1)) if radius >= 0 else 0
