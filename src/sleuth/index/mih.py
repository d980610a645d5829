"""Static multi-index hashing tables (Norouzi, Punjani, Fleet) in a compact CSR layout.

The 64-bit (permuted) code is cut into m contiguous substrings. Pigeonhole, in the refined form
of the paper: write r = s*m + a with 0 <= a < m; a code within distance r of the query has, among
any a+1 chosen substrings, one within s of the query's, or, among the other m-a-1, one within s-1.
Which substrings get the larger radius is free, so each query probes all tables' balls first (only
bucket sizes, two gathers per probe) and gives the larger radius to the a+1 tables whose extra
shell holds the fewest codes: skewed real pHashes make some tables' neighbourhoods far denser
than others', and this choice follows the data query by query.

Layout, for N codes (bytes per code in brackets):
- `codes` [8]: permuted codes sorted by their table-0 key, so table 0 needs no position array:
  its bucket k is the range offsets[k]:offsets[k+1] of `codes` itself.
- `ids` [4 or 8]: caller ids in the same order (uint32 when they all fit, else int64).
- `pos` [4 per table beyond the first]: for tables 1..m-1, positions into `codes`, grouped by key.
- `offsets`: one array for all tables (table t's region starts at `bases[t]`), entry k of a region
  is the start of bucket k in the concatenation [table 0 (= 0..N), table 1, ..., table m-1].
With m = 3 that is 20 bytes per code plus 2**22 + 2 * 2**21 offsets.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import pairwise

import numpy as np

from sleuth.index.bits import BITS, flip_masks, substring_shifts

UINT32_LIMIT = 1 << 32
_ARANGE_CHUNK = 1 << 22
_LOW_HALF = 0 if sys.byteorder == "little" else 1  # where a uint64's low 32 bits sit
CANDIDATE_CHUNK = 1 << 19  # candidates expanded at once by a batch search
BIG_QUERY = 16384  # a query with more candidates is verified on its own in a batch


def _runs(group_of: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) ranges of equal consecutive values."""
    cuts = np.flatnonzero(np.diff(group_of)) + 1
    bounds = [0, *cuts.tolist(), len(group_of)]
    return list(pairwise(bounds))


@dataclass(frozen=True)
class ProbePlan:
    """The flip masks of every table for one substring radius s, concatenated table after table."""

    masks: np.ndarray  # int64 (P,): flip mask in the table's key space
    table: np.ndarray  # int64 (P,): which table each mask belongs to
    base: np.ndarray  # int64 (P,): offsets region base of that table
    low: np.ndarray  # bool (P,): weight <= s - 1 (probed whatever the choice of tables)
    segments: np.ndarray  # int64 (m + 1,): table t's masks are masks[segments[t]:segments[t+1]]
    low_ends: np.ndarray  # int64 (m,): table t's low masks end at low_ends[t]
    bounds: list[int]  # [segments[0], low_ends[0], segments[1], ...]: for one add.reduceat
    split: bool  # every table has both low masks and outer-shell masks


@lru_cache(maxsize=64)
def probe_plan(widths: tuple[int, ...], s: int) -> ProbePlan:
    masks, tables, bases, lows, segments, low_ends = [], [], [], [], [0], []
    base = 0
    for t, width in enumerate(widths):
        flips, ends = flip_masks(width, s)
        n_low = int(ends[s - 1]) if s >= 1 else 0
        masks.append(flips)
        tables.append(np.full(len(flips), t, dtype=np.int64))
        bases.append(np.full(len(flips), base, dtype=np.int64))
        low = np.zeros(len(flips), dtype=bool)
        low[:n_low] = True
        lows.append(low)
        low_ends.append(segments[-1] + n_low)
        segments.append(segments[-1] + len(flips))
        base += 1 << width
    return ProbePlan(
        masks=np.concatenate(masks),
        table=np.concatenate(tables),
        base=np.concatenate(bases),
        low=np.concatenate(lows),
        segments=np.array(segments, dtype=np.int64),
        low_ends=np.array(low_ends, dtype=np.int64),
        bounds=[b for t in range(len(widths)) for b in (segments[t], low_ends[t])],
        split=all(segments[t] < low_ends[t] < segments[t + 1] for t in range(len(widths))),
    )


def _packed_order(packed: np.ndarray) -> np.ndarray:
    """Positions sorting `packed` (uint64 keys < 2**32, overwritten): a sort of key<<32|position.

    numpy's argsort of 10M uint32 keys takes ~3 s here, its vectorised sort of uint64 ~0.6 s;
    working in place keeps the peak at 12 bytes per key.
    """
    n = len(packed)
    packed <<= np.uint64(32)
    for lo in range(0, n, _ARANGE_CHUNK):
        hi = min(n, lo + _ARANGE_CHUNK)
        packed[lo:hi] |= np.arange(lo, hi, dtype=np.uint64)
    packed.sort()
    return packed.view(np.uint32)[_LOW_HALF::2].copy()


def sort_order(keys: np.ndarray) -> np.ndarray:
    """Positions (uint32) that sort `keys` (each < 2**32)."""
    return _packed_order(keys.astype(np.uint64))


def compact_ids(ids: np.ndarray) -> np.ndarray:
    """Store ids in 4 bytes when they all fit (database row ids do): 4 bytes/code saved."""
    if len(ids) == 0 or (int(ids.min()) >= 0 and int(ids.max()) < UINT32_LIMIT):
        return ids.astype(np.uint32)
    return ids.astype(np.int64)


@dataclass(frozen=True)
class Tables:
    """Immutable MIH tables over permuted codes; built once, searched many times."""

    codes: np.ndarray
    ids: np.ndarray
    pos: np.ndarray
    offsets: np.ndarray
    widths: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.codes)

    @property
    def m(self) -> int:
        return len(self.widths)

    @cached_property
    def shifts(self) -> np.ndarray:
        return np.array(substring_shifts(self.widths), dtype=np.int64)

    @cached_property
    def key_masks(self) -> np.ndarray:
        return np.array([(1 << w) - 1 for w in self.widths], dtype=np.int64)

    @cached_property
    def bases(self) -> np.ndarray:
        sizes = [1 << w for w in self.widths]
        return np.array([sum(sizes[:t]) for t in range(len(sizes))], dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.ids.nbytes + self.pos.nbytes + self.offsets.nbytes)

    @cached_property
    def id_range(self) -> tuple[int, int]:
        """Smallest and largest id (tables are never empty): ids outside need no lookup."""
        return int(self.ids.min()), int(self.ids.max())

    def check(self) -> None:
        """Structural consistency of (possibly loaded) arrays; raises ValueError."""
        n, m = self.n, self.m
        if sum(self.widths) != BITS:
            raise ValueError(f"substring widths {self.widths} do not cover 64 bits")
        if self.codes.dtype != np.uint64 or self.ids.dtype not in (np.uint32, np.int64):
            raise ValueError("codes must be uint64 and ids uint32 or int64")
        if len(self.ids) != n or len(self.pos) != (m - 1) * n or self.pos.dtype != np.uint32:
            raise ValueError("ids and positions do not match the number of codes")
        if len(self.offsets) != sum(1 << w for w in self.widths) + 1:
            raise ValueError("offsets table has the wrong length")
        if int(self.offsets[0]) != 0 or int(self.offsets[-1]) != m * n:
            raise ValueError("offsets do not span the tables")
        for t in range(m):
            if int(self.offsets[self.bases[t]]) != t * n:
                raise ValueError(f"offsets of table {t} do not start at its entries")

    @classmethod
    def build(cls, pcodes: np.ndarray, ids: np.ndarray, widths: tuple[int, ...]) -> Tables:
        """Sort by each substring key; store only what the layout above needs."""
        n, m = len(pcodes), len(widths)
        if n >= UINT32_LIMIT:
            raise ValueError(f"tables hold fewer than 2**32 codes, got {n}")
        shifts = substring_shifts(widths)
        offsets = np.empty(sum(1 << w for w in widths) + 1, dtype=np.uint32)
        if m * n >= UINT32_LIMIT:
            offsets = offsets.astype(np.int64)
        codes = pcodes
        pos = np.empty((m - 1) * n, dtype=np.uint32)
        sorted_ids = ids
        base = 0
        for t, (width, shift) in enumerate(zip(widths, shifts, strict=True)):
            packed = codes >> np.uint64(shift)
            if shift + width < BITS:
                packed &= np.uint64((1 << width) - 1)
            counts = np.bincount(packed.view(np.int64), minlength=1 << width)
            order = _packed_order(packed)
            del packed
            if t == 0:  # the primary order: codes and ids themselves sorted by table 0's key
                codes = pcodes.take(order)
                sorted_ids = compact_ids(ids.take(order))
            else:
                pos[(t - 1) * n : t * n] = order
            del order
            region = offsets[base : base + (1 << width)]
            region[0] = t * n
            region[1:] = np.cumsum(counts[:-1]) + t * n
            base += 1 << width
        offsets[-1] = m * n
        return cls(codes=codes, ids=sorted_ids, pos=pos, offsets=offsets, widths=widths)

    def search(
        self, qp: np.ndarray, radius: int, budget: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact radius search of many permuted queries `qp`, vectorised across them.

        Returns (query index, position, distance) of every code within `radius`, unique and
        sorted by (query, position), and a bool mask of the queries whose candidate count would
        exceed `budget`: those are not searched (a linear scan is cheaper for them).
        """
        q_count, m = len(qp), self.m
        s, a = divmod(radius, m)
        plan = probe_plan(self.widths, s)
        keys = (qp.view(np.int64)[:, None] >> self.shifts) & self.key_masks
        probes = (keys[:, plan.table] ^ plan.masks) + plan.base
        starts = self.offsets[probes]
        lens = (self.offsets[probes + 1] - starts).astype(np.int64)
        if a + 1 < m:
            # Give the larger radius s to the a+1 tables whose outer shell costs least (see
            # search_one for why table 0 counts half).
            cum = np.zeros((q_count, lens.shape[1] + 1), dtype=np.int64)
            np.cumsum(lens, axis=1, out=cum[:, 1:])
            shell = cum[:, plan.segments[1:]] - cum[:, plan.low_ends]
            shell[:, 0] //= 2
            chosen_tables = np.argsort(shell, axis=1, kind="stable")[:, : a + 1]
            chosen = np.zeros((q_count, m), dtype=bool)
            chosen[np.arange(q_count)[:, None], chosen_tables] = True
            lens *= plan.low | chosen[:, plan.table]
        totals = lens.sum(axis=1)
        too_costly = totals > budget
        big = ~too_costly & (totals > BIG_QUERY)
        parts = []
        # Queries with many candidates: one by one, which saves per-candidate query numbers,
        # the larger part of the work once numpy calls amortise. Queries with few: expanded
        # together, a bounded number at a time (fresh large temporaries cost page faults).
        table0_end = int(plan.segments[1])
        for q in np.flatnonzero(big).tolist():
            row = lens[q]
            positions, dist = self._verify_one(
                q=int(qp[q]),
                starts=starts[q],
                lens=row,
                total=int(totals[q]),
                first_table=int(row[:table0_end].sum()),
                radius=radius,
            )
            positions, once = np.unique(positions, return_index=True)
            parts.append((np.full(len(positions), q, np.int64), positions, dist[once]))
        skip = too_costly | big
        lens[skip] = 0
        totals[skip] = 0
        group_of = np.cumsum(totals) // CANDIDATE_CHUNK
        for lo, hi in _runs(group_of):
            parts.append(self._verify(qp, lo, starts[lo:hi], lens[lo:hi], radius))
        if not parts:
            empty = np.empty(0, np.int64)
            return empty, empty, empty, too_costly
        query, positions, dist = (np.concatenate(x) for x in zip(*parts, strict=True))
        return query, positions, dist, too_costly

    def _verify(
        self, qp: np.ndarray, first: int, starts: np.ndarray, lens: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of queries first.. from their bucket runs: (query, position, distance)."""
        n = self.n
        flat = lens.ravel()
        nonempty = np.flatnonzero(flat)
        run_lens = flat[nonempty]
        run_starts = starts.ravel()[nonempty].astype(np.int64)
        run_ends = np.add.accumulate(run_lens)
        entry = np.repeat((run_starts - (run_ends - run_lens)).astype(self._entry_dtype), run_lens)
        entry += np.arange(len(entry), dtype=self._entry_dtype)
        positions = entry.astype(np.int64)
        in_tables = np.flatnonzero(entry >= n)
        positions[in_tables] = self.pos.take(entry[in_tables] - n)
        query = np.repeat(nonempty // lens.shape[1] + first, run_lens)
        dist = np.bitwise_count(self.codes.take(positions) ^ qp[query])
        hit = np.flatnonzero(dist <= radius)
        pair, once = np.unique(query[hit] * n + positions[hit], return_index=True)
        return pair // n, pair % n, dist[hit][once]

    def search_one(self, q: int, radius: int, budget: int) -> tuple[np.ndarray, np.ndarray] | None:
        """`search` for one permuted query, with as few numpy calls as possible (each costs
        microseconds, which is most of a query): table choice and bookkeeping in Python.

        Returns (positions, distances) of the hits, possibly repeated (a code can be found
        through several tables), or None when a linear scan would be cheaper.
        """
        m = self.m
        s, a = divmod(radius, m)
        plan = probe_plan(self.widths, s)
        region_keys = np.array(
            [((q >> sh) & km) + b for sh, km, b in zip(*self._query_layout, strict=True)],
            dtype=np.int64,
        )
        probes = region_keys[plan.table] ^ plan.masks
        starts = self.offsets[probes]
        lens = (self.offsets[probes + 1] - starts).astype(np.int64)
        if plan.split:
            sums = np.add.reduceat(lens, plan.bounds).tolist()
            inner, shell = sums[0::2], sums[1::2]
        else:
            cum = np.concatenate([[0], np.add.accumulate(lens)]).tolist()
            seg, low = plan.segments.tolist(), plan.low_ends.tolist()
            inner = [cum[low[t]] - cum[seg[t]] for t in range(m)]
            shell = [cum[seg[t + 1]] - cum[low[t]] for t in range(m)]
        # Table 0's candidates are contiguous runs of `codes` (cheap to read); the other tables'
        # are scattered positions (a cache miss each): weigh table 0's shell at half.
        cost = [shell[0] / 2, *shell[1:]]
        wide = set(sorted(range(m), key=cost.__getitem__)[: a + 1])
        total = sum(inner) + sum(shell[t] for t in wide)
        if total > budget:
            return None
        seg, low = plan.segments.tolist(), plan.low_ends.tolist()
        cuts = [(seg[t], seg[t + 1] if t in wide else low[t]) for t in range(m)]
        starts = np.concatenate([starts[lo:hi] for lo, hi in cuts]).astype(np.int64)
        lens = np.concatenate([lens[lo:hi] for lo, hi in cuts])
        first_table = inner[0] + (shell[0] if 0 in wide else 0)
        return self._verify_one(q, starts, lens, total, first_table, radius)

    def _verify_one(
        self,
        q: int,
        starts: np.ndarray,
        lens: np.ndarray,
        total: int,
        first_table: int,
        radius: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hits among one query's bucket runs, table 0's runs first (`first_table` entries)."""
        run_ends = np.add.accumulate(lens)
        entry = np.repeat((starts - (run_ends - lens)).astype(self._entry_dtype), lens)
        entry += np.arange(total, dtype=self._entry_dtype)
        positions = np.concatenate(
            [entry[:first_table], self.pos.take(entry[first_table:] - self.n)], dtype=np.int64
        )
        dist = np.bitwise_count(self.codes.take(positions) ^ np.uint64(q))
        hit = dist <= radius
        return positions[hit], dist[hit]

    @cached_property
    def _entry_dtype(self) -> type[np.signedinteger]:
        """int32 entry numbers while they fit: half the memory traffic of int64."""
        return np.int32 if self.m * self.n < (1 << 31) else np.int64

    @cached_property
    def _query_layout(self) -> tuple[list[int], list[int], list[int]]:
        return self.shifts.tolist(), self.key_masks.tolist(), self.bases.tolist()

    def distances(self, q: np.uint64) -> np.ndarray:
        """Distance from one permuted query to every code: the linear scan."""
        counts: np.ndarray = np.bitwise_count(self.codes ^ q)
        return counts
