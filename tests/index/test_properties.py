"""Property tests: the index answers exactly what brute force answers, through any mix of adds,
removes, merges and group changes, on uniform, clustered and duplicated codes."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from sleuth.index import HammingIndex, brute_force_knn, brute_force_radius
from sleuth.index.bits import permute, substring_widths
from sleuth.index.mih import Tables
from tests.index.codes import at_distance, make_codes, near

KINDS = st.sampled_from(["uniform", "clustered", "duplicates"])
RADII = st.one_of(st.integers(0, 16), st.sampled_from([20, 32, 64]))
GROUPS = st.sampled_from(["acct:1", "acct:2", "source:x"])


class IndexMachine(RuleBasedStateMachine):
    """A model (dict id -> code, dict group -> ids) kept beside a real HammingIndex."""

    @initialize(
        substrings=st.sampled_from([None, 4, 6, 16]),
        delta_limit=st.sampled_from([None, 0, 3, 40, 200]),
    )
    def setup(self, substrings: int | None, delta_limit: int | None) -> None:
        self.index = HammingIndex(substrings=substrings, delta_limit=delta_limit)
        self.codes: dict[int, int] = {}
        self.groups: dict[str, set[int]] = {}
        self.next_id = -5  # negative and zero ids are valid ids too
        self.removed: list[int] = [0]  # codes of removed ids: queries that must not find them

    def _arrays(self, ids: set[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        chosen = list(self.codes) if ids is None else sorted(ids)
        return (
            np.array([self.codes[i] for i in chosen], dtype=np.uint64),
            np.array(chosen, dtype=np.int64),
        )

    @rule(kind=KINDS, n=st.integers(1, 60), seed=st.integers(0, 2**32), group=st.none() | GROUPS)
    def add(self, kind: str, n: int, seed: int, group: str | None) -> None:
        codes = make_codes(kind, n, seed)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        self.next_id += n
        if self.codes:  # re-adding known (id, code) pairs must change nothing
            rng = np.random.default_rng(seed)
            again = rng.choice(list(self.codes), size=min(3, len(self.codes)), replace=False)
            ids = np.concatenate([ids, again])
            known = np.array([self.codes[int(i)] for i in again], dtype=np.uint64)
            codes = np.concatenate([codes, known])
        self.index.add(ids, codes, groups=group)
        for i, c in zip(ids.tolist(), codes.tolist(), strict=True):
            self.codes[i] = c
            if group is not None:
                self.groups.setdefault(group, set()).add(i)

    @precondition(lambda self: bool(self.codes))
    @rule(seed=st.integers(0, 2**32))
    def conflicting_add_is_refused(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        victim = int(rng.choice(list(self.codes)))
        before = len(self.index)
        try:
            self.index.add([victim, self.next_id], [self.codes[victim] ^ 1, 5])
        except ValueError as exc:
            assert "another code" in str(exc)
        else:
            raise AssertionError("re-adding an id with another code must fail")
        assert len(self.index) == before and self.next_id not in self.index

    @rule(seed=st.integers(0, 2**32), share=st.floats(0, 1))
    def remove(self, seed: int, share: float) -> None:
        rng = np.random.default_rng(seed)
        known = list(self.codes)
        gone = [i for i in known if rng.random() < share]
        unknown = [self.next_id + 1000, -(10**12)]
        assert self.index.remove(gone + unknown) == len(gone)
        for i in gone:
            self.removed.append(self.codes.pop(i))
            for members in self.groups.values():
                members.discard(i)
        self.groups = {g: m for g, m in self.groups.items() if m}

    @precondition(lambda self: bool(self.codes))
    @rule(group=GROUPS, seed=st.integers(0, 2**32))
    def add_to_group(self, group: str, seed: int) -> None:
        rng = np.random.default_rng(seed)
        ids = rng.choice(list(self.codes), size=min(5, len(self.codes)), replace=False)
        self.index.add_to_group(group, ids)
        self.groups.setdefault(group, set()).update(int(i) for i in ids)

    @precondition(lambda self: bool(self.groups))
    @rule(seed=st.integers(0, 2**32))
    def remove_from_group(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        group = sorted(self.groups)[int(rng.integers(len(self.groups)))]
        members = sorted(self.groups[group])
        out = [i for i in members if rng.random() < 0.5]
        assert self.index.remove_from_group(group, out) == len(out)
        self.groups[group] -= set(out)
        if not self.groups[group]:
            del self.groups[group]

    @rule()
    def merge(self) -> None:
        self.index.merge()

    @rule(radius=RADII, seed=st.integers(0, 2**32))
    def radius_search_is_exact(self, radius: int, seed: int) -> None:
        codes, ids = self._arrays()
        rng = np.random.default_rng(seed)
        queries = near(rng, codes, 4, radius / 2)
        if len(codes):
            queries = np.concatenate([queries, at_distance(rng, codes, 2, radius)])
        queries[0] = self.removed[int(rng.integers(len(self.removed)))]
        batch = self.index.batch_radius_search(queries, radius)
        for i, q in enumerate(queries.tolist()):
            expected = brute_force_radius(codes, ids, q, radius)
            assert self.index.radius_search(q, radius) == expected
            assert batch[i] == expected

    @rule(k=st.integers(0, 30), seed=st.integers(0, 2**32))
    def knn_is_exact(self, k: int, seed: int) -> None:
        codes, ids = self._arrays()
        rng = np.random.default_rng(seed)
        queries = near(rng, codes, 3, 3.0)
        queries[0] = self.removed[int(rng.integers(len(self.removed)))]
        for q in queries.tolist():
            assert self.index.knn(q, k) == brute_force_knn(codes, ids, q, k)

    @rule(radius=RADII, k=st.integers(1, 12), seed=st.integers(0, 2**32))
    def group_and_subset_search_is_exact(self, radius: int, k: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        all_codes, _ = self._arrays()
        q = int(near(rng, all_codes, 1, 2.0)[0])
        for group in ["acct:1", "acct:2", "source:x"]:
            codes, ids = self._arrays(self.groups.get(group, set()))
            assert self.index.radius_search(q, radius, group=group) == brute_force_radius(
                codes, ids, q, radius
            )
            assert self.index.knn(q, k, group=group) == brute_force_knn(codes, ids, q, k)
        # A small and a large subset (the two strategies), with unknown ids mixed in.
        for share in (0.02, 0.7):
            chosen = {i for i in self.codes if rng.random() < share}
            codes, ids = self._arrays(chosen)
            subset = [*chosen, self.next_id + 7]
            assert self.index.radius_search(q, radius, subset=subset) == brute_force_radius(
                codes, ids, q, radius
            )
            assert self.index.knn(q, k, subset=subset) == brute_force_knn(codes, ids, q, k)

    @invariant()
    def sizes_agree(self) -> None:
        assert len(self.index) == len(self.codes)
        assert self.index.group_names() == sorted(self.groups)
        for group, members in self.groups.items():
            assert self.index.group_size(group) == len(members)


IndexMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestIndexMachine = IndexMachine.TestCase


@settings(max_examples=40, deadline=None)
@given(
    kind=KINDS,
    n=st.integers(1, 400),
    m=st.integers(3, 16),
    seed=st.integers(0, 2**32),
    radius=st.integers(0, 18),
)
def test_tables_alone_are_exact(kind: str, n: int, m: int, seed: int, radius: int) -> None:
    """The MIH core without the cost model (which would send large radii to a scan): every
    substring layout, with the larger radius given to whichever tables each query prefers."""
    rng = np.random.default_rng(seed)
    codes = make_codes(kind, n, seed)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    dest = rng.permutation(64)
    pcodes = permute(codes, dest)
    tables = Tables.build(pcodes, ids, substring_widths(m))
    tables.check()
    queries = np.concatenate([near(rng, codes, 3, radius / 2), at_distance(rng, codes, 3, radius)])
    pq = permute(queries, dest)
    qi, pos, dist, costly = tables.search(pq, radius, budget=1 << 62)
    assert not costly.any()
    for i, q in enumerate(queries.tolist()):
        expected = brute_force_radius(codes, ids, q, radius)
        mine = sorted(zip(tables.ids[pos[qi == i]].tolist(), dist[qi == i].tolist(), strict=True))
        assert mine == sorted(expected)
        found = tables.search_one(int(pq[i]), radius, budget=1 << 62)
        assert found is not None
        single = set(zip(tables.ids[found[0]].tolist(), found[1].tolist(), strict=True))
        assert sorted(single) == sorted(expected)


def test_default_layout_on_a_large_clustered_set() -> None:
    """400k clustered codes with default settings: the real 3-table layout, skewed buckets."""
    rng = np.random.default_rng(7)
    codes = make_codes("clustered", 400_000, 7)
    ids = rng.permutation(np.unique(rng.integers(0, 1 << 40, 2 * len(codes))))[: len(codes)]
    index = HammingIndex()
    index.add(ids, codes)
    assert index.substrings == 3 and len(index) == len(codes)
    queries = near(rng, codes, 12, 3.0)
    for radius in (0, 3, 6, 8, 10, 12):
        batch = index.batch_radius_search(queries, radius)
        for i, q in enumerate(queries.tolist()):
            expected = brute_force_radius(codes, ids, q, radius)
            assert index.radius_search(q, radius) == expected == batch[i]
    for q in queries[:4].tolist():
        assert index.knn(q, 25) == brute_force_knn(codes, ids, q, 25)
