"""Edge cases and bad input: empty index, extreme radii, k beyond size, re-added ids, id and
code ranges, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from sleuth.index import HammingIndex, brute_force_knn, brute_force_radius
from sleuth.index.bits import (
    balanced_permutation,
    bit_probabilities,
    compose,
    flip_masks,
    inverse_permutation,
    permute,
    substring_shifts,
    substring_widths,
)
from tests.index.codes import make_codes

ALL_ONES = 2**64 - 1


@pytest.fixture(params=["delta", "tables"])
def index(request: pytest.FixtureRequest) -> HammingIndex:
    """An empty index that keeps codes in the delta, or one that builds tables at once."""
    return HammingIndex() if request.param == "delta" else HammingIndex(delta_limit=0)


def test_empty_index(index: HammingIndex) -> None:
    assert len(index) == 0 and 5 not in index
    assert index.radius_search(0, 64) == []
    assert index.knn(123, 10) == []
    results = index.batch_radius_search([1, 2, 3], 5)
    assert len(results) == 3 and list(results) == [[], [], []]
    assert index.batch_radius_search([], 5).offsets.tolist() == [0]
    assert index.remove([1, 2]) == 0


def test_radius_zero_64_and_beyond(index: HammingIndex) -> None:
    index.add([1, 2, 3, 4], [0, 1, ALL_ONES, 0])
    assert index.radius_search(0, 0) == [(1, 0), (4, 0)]
    assert index.radius_search(0, 64) == [(1, 0), (4, 0), (2, 1), (3, 64)]
    assert index.radius_search(0, 1000) == index.radius_search(0, 64)
    assert index.radius_search(ALL_ONES, 0) == [(3, 0)]


def test_knn_k_beyond_size_and_ties(index: HammingIndex) -> None:
    index.add([30, 10, 20], [0b11, 0b01, 0b10])
    assert index.knn(0, 10) == [(10, 1), (20, 1), (30, 2)]
    assert index.knn(0, 2) == [(10, 1), (20, 1)]  # a tie goes to the smaller id
    assert index.knn(0, 0) == []


def test_removed_then_readded(index: HammingIndex) -> None:
    index.add([7], [0xFF])
    index.merge()
    assert index.remove([7]) == 1 and 7 not in index and len(index) == 0
    assert index.remove([7]) == 0
    index.add([7], [0xF0F0])  # a new code is fine once the old one is gone
    assert index.radius_search(0xF0F0, 0) == [(7, 0)]
    assert index.radius_search(0xFF, 3) == []
    index.merge()
    assert index.radius_search(0xF0F0, 0) == [(7, 0)] and len(index) == 1


def test_tombstones_hide_removed_codes_until_merge() -> None:
    index = HammingIndex(delta_limit=1000)
    codes = make_codes("duplicates", 600, 9)
    index.add(np.arange(600), codes)
    index.merge()
    gone = np.arange(0, 600, 3)
    assert index.remove(gone) == len(gone) and index._ndead == len(gone)
    kept = np.setdiff1d(np.arange(600), gone)
    batch = index.batch_radius_search(codes[:20], 6)
    for i, q in enumerate(codes[:20].tolist()):
        expected = brute_force_radius(codes[kept], kept, q, 6)
        assert index.radius_search(q, 6) == expected == batch[i]
        assert index.knn(q, 9) == brute_force_knn(codes[kept], kept, q, 9)
    index.merge()
    assert index._ndead == 0 and len(index) == len(kept)
    assert index.radius_search(int(codes[0]), 6) == brute_force_radius(
        codes[kept], kept, codes[0], 6
    )


def test_add_is_idempotent_and_codes_immutable(index: HammingIndex) -> None:
    index.add([1, 2], [10, 20])
    index.add([1, 2, 2], [10, 20, 20])  # a job delivered twice
    assert len(index) == 2
    with pytest.raises(ValueError, match="another code"):
        index.add([3, 1], [30, 11])
    assert 3 not in index and len(index) == 2  # nothing of a refused batch is applied
    with pytest.raises(ValueError, match="twice with different codes"):
        index.add([5, 5], [1, 2])


def test_code_and_id_ranges(index: HammingIndex) -> None:
    """Signed 64-bit values (as SQL stores them) are the same bit patterns as unsigned ones;
    ids may be negative or beyond 32 bits."""
    big_ids = [-(2**63), -1, 0, 2**40, 2**63 - 1]
    codes = [ALL_ONES, 2**63, 0, -1, np.int64(-(2**63))]
    index.add(big_ids, codes)
    assert index.radius_search(-1, 0) == [(-(2**63), 0), (2**40, 0)]
    assert index.radius_search(2**63, 0) == [(-1, 0), (2**63 - 1, 0)]
    signed = np.array([-1, 5], dtype=np.int64)
    index.add([11, 12], signed)
    assert index.radius_search(ALL_ONES, 0) == [(-(2**63), 0), (11, 0), (2**40, 0)]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ix: ix.radius_search(1, -1), ValueError, "radius must be >= 0"),
        (lambda ix: ix.radius_search(1.5, 3), TypeError, "a code must be an integer"),
        (lambda ix: ix.radius_search(2**64, 3), ValueError, "does not fit in 64 bits"),
        (lambda ix: ix.radius_search(1, True), TypeError, "radius must be an integer"),
        (lambda ix: ix.knn(1, -2), ValueError, "k must be >= 0"),
        (lambda ix: ix.add([1, 2], [3]), ValueError, "2 ids for 1 codes"),
        (lambda ix: ix.add([1.0], [3]), TypeError, "ids must be integers"),
        (lambda ix: ix.add([1], [3.0]), TypeError, "codes must be integers"),
        (lambda ix: ix.add([[1]], [[3]]), ValueError, "one-dimensional"),
        (lambda ix: ix.add([2**63], [3]), ValueError, "signed 64 bits"),
        (lambda ix: ix.add([1], [2**64]), ValueError, "fit in 64 bits"),
        (lambda ix: ix.add([1], [3], groups=[""]), ValueError, "non-empty string"),
        (lambda ix: ix.add_to_group("g", [99]), KeyError, "99 is not indexed"),
        (lambda ix: HammingIndex(substrings=2), ValueError, "substrings must be in 3..16"),
        (lambda ix: HammingIndex(delta_limit=-1), ValueError, "delta_limit"),
    ],
)
def test_bad_input_is_refused_with_a_reason(
    call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(HammingIndex())  # type: ignore[operator]


def test_groups_lifecycle() -> None:
    index = HammingIndex(delta_limit=2)
    codes = make_codes("clustered", 40, 3)
    index.add(np.arange(40), codes, groups=["acct:1", "all"])
    index.add(np.arange(40, 50), make_codes("uniform", 10, 4), groups="acct:2")
    assert index.group_names() == ["acct:1", "acct:2", "all"]
    assert index.group_size("acct:1") == 40 and index.group_size("nope") == 0
    q = int(codes[0])
    in_group = index.radius_search(q, 64, group="acct:2")
    assert sorted(i for i, _ in in_group) == list(range(40, 50))
    assert index.radius_search(q, 5, group="no such group") == []
    assert index.knn(q, 3, group="no such group") == []
    index.add_to_group("acct:2", [0])
    assert index.radius_search(q, 0, group="acct:2") == index.radius_search(q, 0, subset=[0])
    assert index.remove_from_group("acct:2", [*range(40, 50), 0]) == 11
    assert "acct:2" not in index.group_names()  # emptied groups disappear
    assert index.remove([0, 1]) == 2
    assert index.group_size("acct:1") == 38 and index.group_size("all") == 38
    index.drop_group("all")
    assert index.group_names() == ["acct:1"] and len(index) == 48
    assert index.nbytes > 0


def test_subset_with_unknown_and_removed_ids() -> None:
    index = HammingIndex(delta_limit=5)
    codes = make_codes("duplicates", 100, 5)
    index.add(np.arange(100), codes)
    index.remove([3])
    q = int(codes[3])
    expected = brute_force_radius(codes[[3, 4, 5]], [3, 4, 5], q, 64)
    expected = [(i, d) for i, d in expected if i != 3]
    assert index.radius_search(q, 64, subset=[3, 4, 5, 1000]) == expected
    assert index.knn(q, 5, subset=np.array([3, 4, 5, 1000])) == expected


def test_big_delta_add_goes_straight_to_tables() -> None:
    """A bulk load larger than the delta limit builds tables without a slow delta detour."""
    index = HammingIndex()
    codes = make_codes("uniform", 5000, 6)
    index.add(np.arange(5000), codes)
    assert index.substrings is not None and len(index) == 5000
    assert index.knn(int(codes[9]), 1) == [(9, 0)]
    assert index.knn(int(codes[9]), 4) == brute_force_knn(codes, np.arange(5000), codes[9], 4)


def test_adding_new_ids_needs_no_id_map() -> None:
    """Ids above every indexed one (new database rows) are known to be new without building
    the 4-byte-per-code id order; an id inside the range still gets the full check."""
    index = HammingIndex()
    codes = make_codes("clustered", 5000, 12)
    index.add(np.arange(5000), codes)
    index.add([5000, 5001], [1, 2])
    assert index._order is None and len(index) == 5002
    with pytest.raises(ValueError, match="another code"):
        index.add([17], [int(codes[17]) ^ 1])
    assert index._order is not None and (17, 0) in index.radius_search(int(codes[17]), 0)


def test_bit_helpers() -> None:
    assert substring_widths(3) == (22, 21, 21) and sum(substring_widths(7)) == 64
    assert substring_shifts((22, 21, 21)) == (42, 21, 0)
    masks, ends = flip_masks(5, 2)
    assert ends.tolist() == [1, 6, 16] and len(set(masks.tolist())) == 16
    assert all(bin(m).count("1") <= 2 for m in masks.tolist())
    codes = make_codes("clustered", 3000, 8)
    dest = balanced_permutation(codes, substring_widths(4))
    assert sorted(dest.tolist()) == list(range(64))
    back = permute(permute(codes, dest), inverse_permutation(dest))
    assert np.array_equal(back, codes)
    other = np.random.default_rng(1).permutation(64)
    assert np.array_equal(
        permute(permute(codes, dest), compose(inverse_permutation(dest), other)),
        permute(codes, other),
    )
    # Hamming distances do not change under a bit permutation.
    assert np.array_equal(
        np.bitwise_count(permute(codes, dest) ^ permute(codes[::-1], dest)),
        np.bitwise_count(codes ^ codes[::-1]),
    )


def test_balanced_permutation_spreads_skewed_bits() -> None:
    """The nearly constant bits must not pile up in one substring."""
    rng = np.random.default_rng(2)
    p = np.where(np.arange(64) < 16, 0.97, 0.5)  # the 16 low bits almost always 1
    bits = rng.random((20000, 64)) < p
    codes = (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    widths = substring_widths(4)
    dest = balanced_permutation(codes, widths)
    per_table = [
        int(np.sum((dest[:16] >= shift) & (dest[:16] < shift + width)))
        for shift, width in zip(substring_shifts(widths), widths, strict=True)
    ]
    assert per_table == [4, 4, 4, 4]
    assert abs(bit_probabilities(codes)[0] - 0.97) < 0.01
