"""Saved form: round trips (mapped or read), damage refused with a reason, atomic replacement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleuth.index import HammingIndex, IndexFileError, brute_force_knn, brute_force_radius
from tests.index.codes import make_codes, near


def _populated(tmp_codes: int = 3000) -> tuple[HammingIndex, dict[int, int]]:
    """An index with tables, tombstones, a delta, an id map and groups, and its model."""
    codes = make_codes("clustered", tmp_codes, 11)
    ids = np.arange(tmp_codes, dtype=np.int64) * 3 - 100
    index = HammingIndex(delta_limit=400)
    index.add(ids, codes, groups="all")
    index.merge()
    index.add(ids[:50] + 10**6, codes[:50] ^ np.uint64(1), groups="recent")
    index.remove(ids[100:130])
    model = {int(i): int(c) for i, c in zip(ids, codes, strict=True)}
    model.update({int(i) + 10**6: int(c) ^ 1 for i, c in zip(ids[:50], codes[:50], strict=True)})
    for i in ids[100:130].tolist():
        del model[i]
    return index, model


def _same_answers(index: HammingIndex, model: dict[int, int]) -> None:
    codes = np.array(list(model.values()), dtype=np.uint64)
    ids = np.array(list(model), dtype=np.int64)
    assert len(index) == len(model)
    removed = make_codes("clustered", 3000, 11)[100:104]  # their ids were removed
    for q in [*near(np.random.default_rng(5), codes, 8, 2.0).tolist(), *removed.tolist()]:
        for radius in (0, 4, 9):
            assert index.radius_search(q, radius) == brute_force_radius(codes, ids, q, radius)
        assert index.knn(q, 7) == brute_force_knn(codes, ids, q, 7)


@pytest.mark.parametrize("mmap", [True, False])
def test_round_trip(tmp_path: Path, mmap: bool) -> None:
    index, model = _populated()
    assert index._delta.n > 0 and index._ndead > 0  # what we mean to persist is there
    q = next(iter(model.values()))
    before = {g: index.radius_search(q, 12, group=g) for g in ("all", "recent", "missing")}
    index.save(tmp_path / "ix")
    loaded = HammingIndex.load(tmp_path / "ix", mmap=mmap)
    _same_answers(loaded, model)
    assert loaded.group_names() == ["all", "recent"]
    assert {g: loaded.radius_search(q, 12, group=g) for g in before} == before
    if mmap:
        assert isinstance(loaded._main.codes.base, np.memmap)  # mapped, not read
    # A loaded (read-only mapped) index keeps working under changes, then saves again.
    loaded.add([5 * 10**6], [q])
    loaded.remove([next(iter(model))])
    model[5 * 10**6] = q
    del model[next(iter(model))]
    loaded.merge()
    _same_answers(loaded, model)
    loaded.save(tmp_path / "ix")  # over the folder it was mapped from
    _same_answers(HammingIndex.load(tmp_path / "ix"), model)
    assert [p.name for p in tmp_path.iterdir()] == ["ix"]  # no leftovers


def test_empty_and_delta_only_round_trip(tmp_path: Path) -> None:
    HammingIndex().save(tmp_path / "empty")
    assert len(HammingIndex.load(tmp_path / "empty")) == 0
    small = HammingIndex()
    small.add([1, 2], [3, 2**64 - 1], groups="g")
    small.save(tmp_path / "small")
    again = HammingIndex.load(tmp_path / "small")
    assert again.radius_search(2**64 - 1, 0) == [(2, 0)]
    assert again.group_size("g") == 2


def _corrupt(folder: Path, name: str) -> None:
    path = folder / f"{name}.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: _corrupt(f, "codes"), "checksum mismatch"),
        (lambda f: _corrupt(f, "pos"), "checksum mismatch"),
        (lambda f: (f / "offsets.npy").write_bytes(b"x" * 10), "bytes, the manifest says"),
        (lambda f: (f / "ids.npy").unlink(), "missing"),
        (lambda f: (f / "manifest.json").unlink(), "not a saved index"),
        (lambda f: (f / "manifest.json").write_text("{"), "not valid JSON"),
        (lambda f: _edit_manifest(f, version=99), "format version 99"),
        (lambda f: _edit_manifest(f, format="other"), "not a sleuth.hamming-index"),
        (lambda f: _edit_manifest(f, live=1), "counts do not match"),
        (lambda f: _edit_manifest(f, permutation=[*range(63), 0]), "permutation"),
    ],
)
def test_damage_is_refused(tmp_path: Path, damage: object, message: str) -> None:
    index, _ = _populated(1000)
    index.save(tmp_path / "ix")
    damage(tmp_path / "ix")  # type: ignore[operator]
    with pytest.raises(IndexFileError, match=message):
        HammingIndex.load(tmp_path / "ix")


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_damaged_group_is_refused(tmp_path: Path) -> None:
    index, _ = _populated(1000)
    index.save(tmp_path / "ix")
    _corrupt(tmp_path / "ix" / "groups" / "0", "codes")
    with pytest.raises(IndexFileError, match="checksum"):
        HammingIndex.load(tmp_path / "ix")
    loaded = HammingIndex.load(tmp_path / "ix", verify=False)  # the caller's choice
    assert len(loaded) > 0


def test_saving_onto_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(IndexFileError, match="not a folder"):
        HammingIndex().save(tmp_path / "file")
