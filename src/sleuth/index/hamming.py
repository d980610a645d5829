"""HammingIndex: exact radius and k-nearest search over 64-bit codes, mutable and persistent.

Three parts:
- main: static multi-index hashing tables (`mih.Tables`), rebuilt by `merge`;
- delta: codes added since, kept unsorted and scanned by brute force (small by construction);
- tombstones: a bitmap of main entries removed since the last merge.
Searches combine main (minus tombstones) and delta, so adds and removes show at once; when the
delta or the tombstones grow past a limit, everything is merged into new tables.

Groups ("the images of account X"): each named group is its own small HammingIndex holding its
members' codes, so a group search costs what the group's size costs and never touches other
groups' codes. A per-group bitmap over the main candidates was the alternative; it is cheaper in
memory but a search of a small group would still pay for every candidate of the whole index,
and k-nearest within a small group would have to widen its radius until the group's members show
up among everyone else's. Ad hoc subsets (an array of ids) are answered by gathering those ids'
codes and scanning them when the subset is small, or by filtering a whole-index search when it
is a large part of the index: either way the cost follows the subset, not the rest.

An id has one code for its lifetime (a pHash does not change): adding an id again with the same
code is a no-op, with another code an error (remove it first). That makes `add` idempotent, as
the job queue's at-least-once delivery requires.

Thread safety: every public method holds the index's lock.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.index import persist
from sleuth.index.bits import (
    balanced_permutation,
    ball_size,
    byte_tables,
    check_permutation,
    choose_substrings,
    compose,
    identity_permutation,
    inverse_permutation,
    permute,
    substring_widths,
)
from sleuth.index.brute import ranked
from sleuth.index.inputs import (
    as_code,
    as_codes,
    as_count,
    as_group_names,
    as_ids,
    as_radius,
)
from sleuth.index.mih import UINT32_LIMIT, Tables, sort_order

DELTA_MIN = 2048  # below this many codes a scan is as fast as tables: keep them in the delta
DELTA_MAX = 65536  # scanning 64k codes costs ~0.1-0.2 ms, a fair share of a 1 ms query
DELTA_SHARE = 64  # otherwise merge once the delta reaches 1/64 of main
SCAN_SHARE = 4  # a query with more than N/4 candidates is answered by a linear scan
SUBSET_SCAN_SHARE = 16  # a subset smaller than 1/16 of the index is gathered and scanned
PERMUTATION_SAMPLE = 1 << 16
PROBE_CHUNK = 1 << 20  # queries x probes per vectorised step, bounds temporary memory
SCAN_CHUNK = 1 << 22  # queries x delta codes per brute-force step
MAX_PROBES = 1 << 19  # more probes per query than this: scan (and no giant mask tables)
KNN_RADII = (0, 2, 4, 6, 8, 10, 12, 14, 16, 19, 22, 26, 30)


@dataclass(frozen=True)
class SearchResults:
    """Results of a batch of queries in CSR form: query i's hits are ids/distances[o[i]:o[i+1]].

    Within a query hits are sorted by distance, then id.
    """

    offsets: np.ndarray
    ids: np.ndarray
    distances: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[tuple[int, int]]:
        ids, dist = self.arrays(i)
        return list(zip(ids.tolist(), dist.tolist(), strict=True))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return (self[i] for i in range(len(self)))

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"query {i} out of range for {len(self)} queries")
        i %= len(self)
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.ids[lo:hi], self.distances[lo:hi]


def _results(q_count: int, qi: np.ndarray, ids: np.ndarray, dist: np.ndarray) -> SearchResults:
    order = np.lexsort((ids, dist, qi))
    offsets = np.zeros(q_count + 1, dtype=np.int64)
    np.cumsum(np.bincount(qi, minlength=q_count), out=offsets[1:])
    return SearchResults(offsets, ids[order], dist[order].astype(np.int64))


def _top_k(ids: np.ndarray, dist: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The k smallest (distance, id) pairs, without sorting everything."""
    if len(dist) > k > 0:
        kth = np.partition(dist, k - 1)[k - 1]
        keep = dist <= kth
        ids, dist = ids[keep], dist[keep]
    return ranked(ids, dist.astype(np.int64))[:k]


class _Delta:
    """Codes added since the last merge: growable arrays plus an id -> slot dict."""

    def __init__(self) -> None:
        self.codes = np.empty(0, dtype=np.uint64)
        self.ids = np.empty(0, dtype=np.int64)
        self.n = 0
        self.slot: dict[int, int] = {}

    @property
    def live_codes(self) -> np.ndarray:
        return self.codes[: self.n]

    @property
    def live_ids(self) -> np.ndarray:
        return self.ids[: self.n]

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.ids.nbytes)

    def append(self, ids: np.ndarray, pcodes: np.ndarray) -> None:
        end = self.n + len(ids)
        if end > len(self.codes):
            capacity = max(64, 2 * end)
            self.codes = np.concatenate([self.live_codes, np.empty(capacity - self.n, np.uint64)])
            self.ids = np.concatenate([self.live_ids, np.empty(capacity - self.n, np.int64)])
        self.codes[self.n : end] = pcodes
        self.ids[self.n : end] = ids
        self.slot.update(zip(ids.tolist(), range(self.n, end), strict=True))
        self.n = end

    def find(self, ids: np.ndarray) -> np.ndarray:
        if not self.slot:
            return np.full(len(ids), -1, dtype=np.int64)
        get = self.slot.get
        return np.array([get(i, -1) for i in ids.tolist()], dtype=np.int64)

    def remove(self, ids: np.ndarray) -> int:
        removed = 0
        for id_ in ids.tolist():
            slot = self.slot.pop(id_, None)
            if slot is None:
                continue
            last = self.n - 1
            if slot != last:
                self.codes[slot] = self.codes[last]
                self.ids[slot] = self.ids[last]
                self.slot[int(self.ids[slot])] = slot
            self.n = last
            removed += 1
        return removed

    def clear(self) -> None:
        self.codes = np.empty(0, dtype=np.uint64)
        self.ids = np.empty(0, dtype=np.int64)
        self.n = 0
        self.slot = {}


class HammingIndex:
    """Exact Hamming-distance index over 64-bit codes, each with an int64 id.

    `substrings` forces the number of MIH tables (3..16; default: chosen from the size at each
    merge); `delta_limit` forces how many added or removed codes wait before a merge (default:
    1/64 of the index, between 2048 and 65536).
    """

    def __init__(self, *, substrings: int | None = None, delta_limit: int | None = None) -> None:
        if substrings is not None:
            substring_widths(substrings)
        if delta_limit is not None and (isinstance(delta_limit, bool) or delta_limit < 0):
            raise ValueError(f"delta_limit must be an integer >= 0, got {delta_limit!r}")
        self._substrings = substrings
        self._delta_limit = delta_limit
        self._lock = threading.RLock()
        self._dest = identity_permutation()
        self._main: Tables | None = None
        self._dead: np.ndarray | None = None
        self._ndead = 0
        self._order: np.ndarray | None = None
        self._delta = _Delta()
        self._groups: dict[str, HammingIndex] = {}
        self._byte_lists_for: np.ndarray | None = None
        self._byte_lists_cache: list[list[int]] = []

    # ----------------------------------------------------------------- size and lookups

    def __len__(self) -> int:
        with self._lock:
            return self._main_n - self._ndead + self._delta.n

    def __contains__(self, id_: object) -> bool:
        if isinstance(id_, bool) or not isinstance(id_, int | np.integer):
            return False
        with self._lock:
            ids = as_ids([id_])
            return bool(self._delta.find(ids)[0] >= 0 or self._main_lookup(ids)[0] >= 0)

    @property
    def _main_n(self) -> int:
        return 0 if self._main is None else self._main.n

    @property
    def substrings(self) -> int | None:
        """Number of MIH tables of the current main part (None while everything is in delta)."""
        return None if self._main is None else self._main.m

    @property
    def nbytes(self) -> int:
        """Bytes held in arrays (main tables, id map, tombstones, delta, groups)."""
        with self._lock:
            total = self._main.nbytes if self._main is not None else 0
            for extra in (self._order, self._dead):
                total += 0 if extra is None else int(extra.nbytes)
            total += self._delta.nbytes
            return total + sum(g.nbytes for g in self._groups.values())

    def group_names(self) -> list[str]:
        with self._lock:
            return sorted(self._groups)

    def group_size(self, group: str) -> int:
        with self._lock:
            index = self._groups.get(group)
            return 0 if index is None else len(index)

    def _limit(self) -> int:
        if self._delta_limit is not None:
            return self._delta_limit
        return max(DELTA_MIN, min(DELTA_MAX, self._main_n // DELTA_SHARE))

    def _id_order(self) -> np.ndarray:
        """Positions of main sorted by id (built on first need: 4 bytes per code)."""
        assert self._main is not None
        if self._order is None:
            ids = self._main.ids
            if ids.dtype == np.uint32:
                self._order = sort_order(ids)
            else:
                self._order = np.argsort(ids, kind="stable").astype(np.uint32)
        return self._order

    def _dead_at(self, pos: np.ndarray) -> np.ndarray:
        assert self._dead is not None
        dead: np.ndarray = ((self._dead[pos >> 3] >> (pos & 7).astype(np.uint8)) & 1).astype(bool)
        return dead

    def _main_lookup(self, ids: np.ndarray) -> np.ndarray:
        """Main position of each id, -1 where absent or removed (vectorised binary search).

        Ids outside main's id range are answered without the id order: new database rows get
        ids above every indexed one, so adding them never builds that 4-byte-per-code array.
        """
        main = self._main
        found = np.full(len(ids), -1, dtype=np.int64)
        if main is None or len(ids) == 0:
            return found
        low, high = main.id_range
        if not ((ids >= low) & (ids <= high)).any():
            return found
        order = self._id_order()
        if main.ids.dtype == np.uint32:
            valid = (ids >= 0) & (ids < UINT32_LIMIT)
            keys = np.where(valid, ids, 0)
        else:
            valid = np.ones(len(ids), dtype=bool)
            keys = ids
        lo = np.zeros(len(ids), dtype=np.int64)
        hi = np.full(len(ids), main.n, dtype=np.int64)
        while True:
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) >> 1
            smaller = main.ids[order[np.minimum(mid, main.n - 1)]].astype(np.int64) < keys
            lo = np.where(active & smaller, mid + 1, lo)
            hi = np.where(active & ~smaller, mid, hi)
        at = order[np.minimum(lo, main.n - 1)].astype(np.int64)
        hit = valid & (lo < main.n) & (main.ids[at].astype(np.int64) == keys)
        if self._ndead and hit.any():
            hit[hit] &= ~self._dead_at(at[hit])
        found[hit] = at[hit]
        return found

    def _gather(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(found mask, permuted codes) of ids, looked up in delta, then main."""
        codes = np.zeros(len(ids), dtype=np.uint64)
        slots = self._delta.find(ids)
        in_delta = slots >= 0
        codes[in_delta] = self._delta.codes[slots[in_delta]]
        pos = np.full(len(ids), -1, dtype=np.int64)
        rest = ~in_delta
        pos[rest] = self._main_lookup(ids[rest])
        in_main = pos >= 0
        if in_main.any():
            assert self._main is not None
            codes[in_main] = self._main.codes[pos[in_main]]
        return in_delta | in_main, codes

    # ----------------------------------------------------------------- mutation

    def add(self, ids: Any, codes: Any, groups: str | Iterable[str] | None = None) -> None:
        """Index codes under ids, and make them members of `groups` (created on first use).

        An id already indexed with the same code is left as is (but still joins the groups);
        with a different code it is an error and nothing is changed.
        """
        ids_arr, codes_arr = as_ids(ids), as_codes(codes)
        if len(ids_arr) != len(codes_arr):
            raise ValueError(f"{len(ids_arr)} ids for {len(codes_arr)} codes")
        names = as_group_names(groups)
        with self._lock:
            ids_arr, codes_arr = _unique_pairs(ids_arr, codes_arr)
            pcodes = permute(codes_arr, self._dest)
            new_ids, new_pcodes = ids_arr, pcodes
            if len(self):
                present, existing = self._gather(ids_arr)
                clash = present & (existing != pcodes)
                if clash.any():
                    raise ValueError(
                        f"id {int(ids_arr[clash][0])} is already indexed with another code "
                        "(an id keeps one code; remove it first)"
                    )
                if present.any():
                    new_ids, new_pcodes = ids_arr[~present], pcodes[~present]
            if self._delta.n + len(new_ids) > self._limit():
                self._merge(new_ids, new_pcodes)
            else:
                self._delta.append(new_ids, new_pcodes)
            for name in names:
                self._group(name).add(ids_arr, codes_arr)

    def add_to_group(self, group: str, ids: Any) -> None:
        """Make already indexed ids members of a group; KeyError names an id not indexed."""
        (name,) = as_group_names([group])
        ids_arr = np.unique(as_ids(ids))
        with self._lock:
            found, pcodes = self._gather(ids_arr)
            if not found.all():
                raise KeyError(f"id {int(ids_arr[~found][0])} is not indexed")
            codes = permute(pcodes, inverse_permutation(self._dest))
            self._group(name).add(ids_arr, codes)

    def remove(self, ids: Any) -> int:
        """Remove ids from the index and all groups; unknown ids are ignored. Returns how many
        were removed."""
        ids_arr = np.unique(as_ids(ids))
        with self._lock:
            removed = self._delta.remove(ids_arr)
            pos = self._main_lookup(ids_arr)
            pos = pos[pos >= 0]
            if len(pos):
                if self._dead is None:
                    self._dead = np.zeros((self._main_n + 7) // 8, dtype=np.uint8)
                np.bitwise_or.at(self._dead, pos >> 3, (1 << (pos & 7)).astype(np.uint8))
                self._ndead += len(pos)
                removed += len(pos)
            for group in list(self._groups):
                self.remove_from_group(group, ids_arr)
            if self._ndead > self._limit():
                self._merge(np.empty(0, np.int64), np.empty(0, np.uint64))
            return removed

    def remove_from_group(self, group: str, ids: Any) -> int:
        """Take ids out of a group (they stay indexed); an emptied group disappears."""
        with self._lock:
            index = self._groups.get(group)
            if index is None:
                return 0
            removed = index.remove(ids)
            if len(index) == 0:
                del self._groups[group]
            return removed

    def drop_group(self, group: str) -> None:
        with self._lock:
            self._groups.pop(group, None)

    def _group(self, name: str) -> HammingIndex:
        index = self._groups.get(name)
        if index is None:
            index = HammingIndex(substrings=self._substrings, delta_limit=self._delta_limit)
            self._groups[name] = index
        return index

    def merge(self) -> None:
        """Fold delta and tombstones into new tables now (otherwise done when they grow)."""
        with self._lock:
            self._merge(np.empty(0, np.int64), np.empty(0, np.uint64))
            for index in self._groups.values():
                index.merge()

    def _merge(self, extra_ids: np.ndarray, extra_pcodes: np.ndarray) -> None:
        parts_codes, parts_ids = [self._delta.live_codes, extra_pcodes], [self._delta.live_ids]
        parts_ids.append(extra_ids)
        main = self._main
        if main is not None:
            if self._ndead:
                alive = ~self._dead_at(np.arange(main.n))
                parts_codes.insert(0, main.codes[alive])
                parts_ids.insert(0, main.ids[alive].astype(np.int64))
            else:
                parts_codes.insert(0, main.codes)
                parts_ids.insert(0, main.ids.astype(np.int64))
        kept = [i for i, part in enumerate(parts_ids) if len(part)]
        if len(kept) == 1:  # a bulk load: no copy
            pcodes, ids = parts_codes[kept[0]], parts_ids[kept[0]]
        else:
            pcodes, ids = np.concatenate(parts_codes), np.concatenate(parts_ids)
        del parts_codes, parts_ids
        main, dest = None, self._dest
        if len(pcodes) > (DELTA_MIN if self._delta_limit is None else 0):
            widths = substring_widths(self._substrings or choose_substrings(len(pcodes)))
            step = max(1, len(pcodes) // PERMUTATION_SAMPLE)
            dest = balanced_permutation(permute(pcodes[::step], inverse_permutation(dest)), widths)
            pcodes = permute(pcodes, compose(inverse_permutation(self._dest), dest))
            main = Tables.build(pcodes, ids, widths)
        # Only now, with the new tables built, drop the old state (a failure leaves it intact).
        self._main, self._dest, self._dead, self._ndead, self._order = main, dest, None, 0, None
        self._delta.clear()
        if main is None:
            self._delta.append(ids, pcodes)

    # ----------------------------------------------------------------- search

    def radius_search(
        self, code: Any, radius: Any, *, group: str | None = None, subset: Any = None
    ) -> list[tuple[int, int]]:
        """All (id, distance) within `radius` of `code`, by distance then id.

        `group` restricts to a named group (an unknown group is empty); `subset` to an array of
        ids. Both may be given.
        """
        q, r = as_code(code), as_radius(radius)
        if subset is not None:
            return self.batch_radius_search([q], r, group=group, subset=subset)[0]
        with self._lock:
            target = self if group is None else self._groups.get(group)
            if target is None:
                return []
            found = target._one(target._permute_one(int(q)), r, scan_fallback=True)
            assert found is not None
            return _ranked_unique(*found)

    def batch_radius_search(
        self, codes: Any, radius: Any, *, group: str | None = None, subset: Any = None
    ) -> SearchResults:
        """Radius search for many codes at once (vectorised across queries)."""
        queries, r = as_codes(codes), as_radius(radius)
        with self._lock:
            target = self if group is None else self._groups.get(group)
            if target is None:
                return _results(len(queries), *_empty())
            return target._batch(queries, r, None if subset is None else as_ids(subset))

    def knn(
        self, code: Any, k: Any, *, group: str | None = None, subset: Any = None
    ) -> list[tuple[int, int]]:
        """The k nearest (id, distance), by distance then id (exact, ties to smaller ids)."""
        q, k = as_code(code), as_count(k)
        with self._lock:
            target = self if group is None else self._groups.get(group)
            if target is None or k == 0:
                return []
            return target._knn(q, k, None if subset is None else as_ids(subset))

    def _batch(self, queries: np.ndarray, radius: int, subset: np.ndarray | None) -> SearchResults:
        qp = permute(queries, self._dest)
        if subset is not None:
            members = np.unique(subset)
            if len(members) * SUBSET_SCAN_SHARE < len(self):
                found, pcodes = self._gather(members)
                return _results(len(qp), *_scan(qp, pcodes[found], members[found], radius))
            qi, ids, dist, _ = self._radius(qp, radius, scan_fallback=True)
            keep = _member(ids, members)
            return _results(len(qp), qi[keep], ids[keep], dist[keep])
        qi, ids, dist, _ = self._radius(qp, radius, scan_fallback=True)
        return _results(len(qp), qi, ids, dist)

    def _knn(self, q: np.uint64, k: int, subset: np.ndarray | None) -> list[tuple[int, int]]:
        """Grow the radius until k codes are within it: then nothing closer can be missing."""
        qp = self._permute_one(int(q))
        members = None if subset is None else np.unique(subset)
        if members is not None and len(members) * SUBSET_SCAN_SHARE < len(self):
            found, pcodes = self._gather(members)
            _, ids, dist = _scan(np.array([qp], np.uint64), pcodes[found], members[found], 64)
            return _top_k(ids, dist, k)
        radii = KNN_RADII if self._main is not None and k < len(self) else ()
        for radius in (*radii, 64):
            hits = self._one(qp, radius, scan_fallback=False) if radius < 64 else None
            complete = hits is None  # a scan of everything: the answer, whatever its size
            if hits is None:
                hits = self._one(qp, 64, scan_fallback=True)
                assert hits is not None
            ids, dist = _unique_hits(*hits)
            if members is not None:
                keep = _member(ids, members)
                ids, dist = ids[keep], dist[keep]
            if complete or len(ids) >= k:
                return _top_k(ids, dist, k)
        raise AssertionError("unreachable: the radius-64 step returns")

    def _permute_one(self, code: int) -> int:
        tables = self._byte_lists
        return (
            tables[0][code & 255]
            | tables[1][(code >> 8) & 255]
            | tables[2][(code >> 16) & 255]
            | tables[3][(code >> 24) & 255]
            | tables[4][(code >> 32) & 255]
            | tables[5][(code >> 40) & 255]
            | tables[6][(code >> 48) & 255]
            | tables[7][code >> 56]
        )

    @property
    def _byte_lists(self) -> list[list[int]]:
        if self._byte_lists_for is not self._dest:
            self._byte_lists_cache = byte_tables(self._dest).tolist()
            self._byte_lists_for = self._dest
        return self._byte_lists_cache

    def _one(
        self, q: int, radius: int, *, scan_fallback: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, distances) of live codes within radius of one permuted query; an id may be
        repeated. None when tables would cost more than a scan and `scan_fallback` is off."""
        ids_parts, dist_parts = [], []
        main = self._main
        if main is not None:
            found = None
            budget = max(main.n // SCAN_SHARE, 64)
            probes = sum(ball_size(w, radius // main.m) for w in main.widths)
            if radius < 64 and probes <= min(budget, MAX_PROBES):
                found = main.search_one(q, radius, budget)
            if found is None:
                if not scan_fallback:
                    return None
                dist = main.distances(np.uint64(q))
                pos = np.flatnonzero(dist <= radius)
                found = pos, dist[pos]
            pos, dist = found
            if self._ndead and len(pos):
                alive = ~self._dead_at(pos)
                pos, dist = pos[alive], dist[alive]
            ids_parts.append(main.ids[pos].astype(np.int64))
            dist_parts.append(dist)
        if self._delta.n:
            dist = np.bitwise_count(self._delta.live_codes ^ np.uint64(q))
            hit = np.flatnonzero(dist <= radius)
            ids_parts.append(self._delta.ids[hit])
            dist_parts.append(dist[hit])
        if not ids_parts:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if len(ids_parts) == 1:
            return ids_parts[0], dist_parts[0]
        return np.concatenate(ids_parts), np.concatenate(dist_parts)

    def _radius(
        self, qp: np.ndarray, radius: int, *, scan_fallback: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(query index, id, distance) of all live codes within radius, unsorted, and the mask
        of queries left out because tables would cost more than a scan (when not scanning)."""
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        costly = np.zeros(len(qp), dtype=bool)
        main = self._main
        if main is not None and len(qp):
            budget = max(main.n // SCAN_SHARE, 64)
            s = radius // main.m
            probes = sum(ball_size(w, s) for w in main.widths)
            if radius >= 64 or probes > min(budget, MAX_PROBES):
                costly[:] = True
            else:
                step = max(1, PROBE_CHUNK // probes)
                for lo in range(0, len(qp), step):
                    qi, pos, dist, left = main.search(qp[lo : lo + step], radius, budget)
                    costly[lo : lo + step] = left
                    parts.append((qi + lo, pos, dist))
            if scan_fallback:
                for q in np.flatnonzero(costly).tolist():
                    dist = main.distances(qp[q])
                    pos = np.flatnonzero(dist <= radius)
                    parts.append((np.full(len(pos), q, np.int64), pos, dist[pos]))
                costly[:] = False
        qi, pos, dist = _concat(parts)
        if self._ndead and len(pos):
            alive = ~self._dead_at(pos)
            qi, pos, dist = qi[alive], pos[alive], dist[alive]
        ids = np.empty(0, np.int64) if main is None else main.ids[pos].astype(np.int64)
        if self._delta.n:
            dq, did, dd = _scan(qp, self._delta.live_codes, self._delta.live_ids, radius)
            qi, ids, dist = (np.concatenate(x) for x in ((qi, dq), (ids, did), (dist, dd)))
        return qi, ids, dist, costly

    # ----------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to a folder (replaced atomically: written aside, then renamed)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        with self._lock:
            self._write(tmp)
        persist.replace_folder(tmp, target)

    def _write(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        arrays: dict[str, np.ndarray] = {
            "delta_codes": self._delta.live_codes,
            "delta_ids": self._delta.live_ids,
        }
        main = self._main
        if main is not None:
            arrays.update(codes=main.codes, ids=main.ids, pos=main.pos, offsets=main.offsets)
            if self._dead is not None:
                arrays["dead"] = self._dead
            if self._order is not None:
                arrays["order"] = self._order
        groups = []
        for i, (name, index) in enumerate(sorted(self._groups.items())):
            index._write(folder / "groups" / str(i))
            groups.append({"name": name, "dir": f"groups/{i}"})
        persist.write_manifest(
            folder,
            {
                "substrings": self._substrings,
                "delta_limit": self._delta_limit,
                "permutation": self._dest.tolist(),
                "widths": None if main is None else list(main.widths),
                "live": len(self),
                "removed": self._ndead,
                "arrays": persist.write_arrays(folder, arrays),
                "groups": groups,
            },
        )

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, mmap: bool = True, verify: bool = True
    ) -> HammingIndex:
        """Open a saved index. With `mmap` the big arrays are mapped, not read: a restart then
        costs page-ins instead of a rebuild. `verify` checks every file's CRC-32 (reads them).
        Raises persist.IndexFileError, with the reason, for a damaged or foreign folder."""
        return cls._read(Path(path), mmap=mmap, verify=verify)

    @classmethod
    def _read(cls, folder: Path, *, mmap: bool, verify: bool) -> HammingIndex:
        manifest = persist.read_manifest(folder)
        try:
            index = cls(substrings=manifest["substrings"], delta_limit=manifest["delta_limit"])
            index._dest = check_permutation(manifest["permutation"])
            arrays = persist.read_arrays(folder, manifest["arrays"], mmap=mmap, verify=verify)
            if manifest["widths"] is not None:
                widths = tuple(int(w) for w in manifest["widths"])
                substring_widths(len(widths))
                index._main = Tables(
                    codes=arrays["codes"],
                    ids=arrays["ids"],
                    pos=arrays["pos"],
                    offsets=arrays["offsets"],
                    widths=widths,
                )
                index._main.check()
                if "dead" in arrays:
                    index._dead = np.array(arrays["dead"], dtype=np.uint8)
                    if len(index._dead) != (index._main.n + 7) // 8:
                        raise ValueError("tombstone bitmap does not match the codes")
                    index._ndead = int(np.bitwise_count(index._dead).sum())
                if "order" in arrays:
                    index._order = arrays["order"]
            delta_ids = np.asarray(arrays["delta_ids"], dtype=np.int64)
            if len(np.unique(delta_ids)) != len(delta_ids):
                raise ValueError("duplicate ids among recent additions")
            index._delta.append(delta_ids, np.asarray(arrays["delta_codes"], dtype=np.uint64))
            if len(index) != manifest["live"] or index._ndead != manifest["removed"]:
                raise ValueError("code counts do not match the manifest")
            for entry in manifest["groups"]:
                index._groups[str(entry["name"])] = cls._read(
                    folder / entry["dir"], mmap=mmap, verify=verify
                )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, persist.IndexFileError):
                raise
            raise persist.IndexFileError(f"{folder}: inconsistent index ({exc})") from exc
        return index


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)


def _concat(
    parts: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return _empty()
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))  # type: ignore[return-value]


def _scan(
    qp: np.ndarray, pcodes: np.ndarray, ids: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute force: (query index, id, distance) of codes within radius of each query."""
    if len(pcodes) == 0 or len(qp) == 0:
        return _empty()
    parts = []
    step = max(1, SCAN_CHUNK // len(pcodes))
    for lo in range(0, len(qp), step):
        dist = np.bitwise_count(pcodes[None, :] ^ qp[lo : lo + step, None])
        qi, col = np.nonzero(dist <= radius)
        parts.append((qi + lo, ids[col], dist[qi, col]))
    return _concat(parts)


def _unique_hits(ids: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeats of the same hit (found through several tables)."""
    ids, first = np.unique(ids, return_index=True)
    return ids, dist[first]


def _ranked_unique(ids: np.ndarray, dist: np.ndarray) -> list[tuple[int, int]]:
    """Repeats dropped, sorted by distance then id; in Python when few (cheaper than numpy)."""
    if len(ids) <= 64:
        return [(i, d) for d, i in sorted(set(zip(dist.tolist(), ids.tolist(), strict=True)))]
    return ranked(*_unique_hits(ids, dist))


def _member(ids: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Which ids are in the sorted array `members`."""
    if len(members) == 0:
        return np.zeros(len(ids), dtype=bool)
    at = np.minimum(np.searchsorted(members, ids), len(members) - 1)
    found: np.ndarray = members[at] == ids
    return found


def _unique_pairs(ids: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (id, code) pairs; an id given twice with two codes is an error."""
    if len(ids) < 2 or bool((ids[1:] > ids[:-1]).all()):  # rows loaded in id order
        return ids, codes
    order = np.argsort(ids, kind="stable")
    ids, codes = ids[order], codes[order]
    same_id = ids[1:] == ids[:-1]
    if not same_id.any():
        return ids, codes
    if (codes[1:][same_id] != codes[:-1][same_id]).any():
        bad = ids[1:][same_id & (codes[1:] != codes[:-1])][0]
        raise ValueError(f"id {int(bad)} is given twice with different codes")
    keep = np.concatenate([[True], ~same_id])
    return ids[keep], codes[keep]
