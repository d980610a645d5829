"""The images app's search service: exact against brute force, current, persistent, subsets."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for
from sleuth.apps.images.models import image_sources, images
from sleuth.apps.images.search import ImageSearch, QueryError, md5_ids, query_from_bytes
from sleuth.config import Settings
from sleuth.crawl.models import crawl_run_items
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.imaging.hashes import md5_hex, phash_from_db
from sleuth.services import Services
from tests.apps.images.shelf import MAX_PIXELS, Shelf, copy_of, jpeg, picture
from tests.apps.images.test_crawl_e2e import loopback_services
from tests.patience import PATIENCE

RADII = (0, 4, 8, 16, 32)


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[Services]:
    services = Services(Settings(data_dir=tmp_path / "data"))
    yield services
    services.close()


def brute_force(services: Services, phash: int, radius: int, md5s: set[str] | None = None):  # type: ignore[no-untyped-def]
    """(distance, md5) of every stored image within radius, by distance then MD5."""
    with services.engine.connect() as conn:
        rows = conn.execute(sa.select(images.c.md5, images.c.phash)).all()
    found = []
    for md5, code in rows:
        distance = (phash_from_db(code) ^ phash).bit_count()
        if distance <= radius and (md5s is None or md5 in md5s):
            found.append((distance, md5))
    return sorted(found)


def pairs(found) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    return [(m.distance, m.md5) for m in found.matches]


def query_hash(data: bytes) -> int:
    return query_from_bytes(data, MAX_PIXELS).phash


def stock(shelf: Shelf) -> None:
    """12 scenes, reposted copies of four of them, and one picture found at two URLs."""
    for n in range(12):
        shelf.put_picture(n)
    for n in range(4):
        shelf.put(copy_of(picture(n), 0.5, 70), f"http://b.example/{n}-small.jpg")
        shelf.put(copy_of(picture(n), 1.3, 40), f"http://b.example/{n}-big.jpg")
    shelf.put(jpeg(picture(5)), "http://mirror.example/5.jpg")


def test_search_is_exact_against_brute_force(database_url: str, tmp_path: Path) -> None:
    services = Services(Settings(data_dir=tmp_path / "data", database_url=database_url))
    try:
        shelf = Shelf(services)
        stock(shelf)
        search = ImageSearch.for_services(services)
        queries = [query_hash(copy_of(picture(n), 0.7, 55)) for n in range(4)]
        queries += [query_hash(jpeg(picture(50))), query_hash(jpeg(picture(5)))]
        checked = 0
        for phash in queries:
            for radius in RADII:
                want = brute_force(services, phash, radius)
                assert pairs(search.search(phash, radius, 500)) == want
                few = search.search(phash, radius, 3)
                assert pairs(few) == want[:3]
                assert few.truncated == (len(want) > 3)
                checked += len(want)
        assert checked > 50  # the queries did find images, near and far

        (twice,) = search.search(query_hash(jpeg(picture(5))), 0).matches
        assert twice.sources_total == 2
        assert [s.url for s in twice.sources] == [
            "http://a.example/photos/5.jpg",
            "http://mirror.example/5.jpg",
        ]
        assert (twice.width, twice.height, twice.format) == (240, 180, "JPEG")
    finally:
        services.close()


def test_reposted_copies_are_near_and_other_scenes_far(sqlite_services: Services) -> None:
    shelf = Shelf(sqlite_services)
    originals = [shelf.put_picture(n) for n in range(8)]
    search = ImageSearch.for_services(sqlite_services)
    for n, original in enumerate(originals):
        found = search.search(query_hash(copy_of(picture(n), 0.45, 35)))
        assert [m.md5 for m in found.matches] == [original.md5]
        assert found.matches[0].distance <= 4


def test_images_stored_later_are_found_without_a_restart(sqlite_services: Services) -> None:
    shelf = Shelf(sqlite_services)
    shelf.put_picture(0)
    search = ImageSearch.for_services(sqlite_services)
    assert len(search.search(query_hash(jpeg(picture(1)))).matches) == 0
    assert len(search) == 1
    later = shelf.put_picture(1)
    (match,) = search.search(query_hash(jpeg(picture(1)))).matches
    assert (match.md5, match.distance) == (later.md5, 0)
    assert len(search) == 2
    assert search.refresh() == 0  # nothing new: nothing read twice into the index


def test_a_late_commit_is_picked_up_by_the_rescan(sqlite_services: Services) -> None:
    shelf = Shelf(sqlite_services)
    newest = shelf.put_picture(0)
    search = ImageSearch.for_services(sqlite_services, rescan_interval=0.0)
    assert search.refresh() == 1
    # Stored after the last refresh, but stamped before the newest image indexed.
    late = shelf.put_picture(1)
    shelf.backdate(late.md5, shelf.first_seen(newest.md5) - 10.0)
    (match,) = search.search(late.phash, 0).matches
    assert match.md5 == late.md5


def test_the_saved_index_is_loaded_and_caught_up(
    sqlite_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    shelf = Shelf(sqlite_services)
    for n in range(6):
        shelf.put_picture(n)
    first = ImageSearch.for_services(sqlite_services)
    first.refresh()
    first.save()
    folder = sqlite_services.settings.data_dir / "index" / "images"
    assert (folder / "CURRENT").is_file()

    reloaded = ImageSearch.for_services(sqlite_services)
    assert len(reloaded) == 6  # from the snapshot, before any database read
    added = shelf.put_picture(6)
    (match,) = reloaded.search(added.phash, 0).matches
    assert match.md5 == added.md5 and len(reloaded) == 7
    reloaded.save()
    assert len(list((folder / "snapshots").iterdir())) == 2  # the old one kept a while

    other = ImageSearch(sqlite_services.engine, folder, "another-database")
    assert len(other) == 0  # a snapshot of another database is never used

    name = (folder / "CURRENT").read_text()
    for array in (folder / "snapshots" / name / "hamming").glob("*.npy"):
        array.write_bytes(array.read_bytes()[:-8])
    with caplog.at_level(logging.WARNING):
        damaged = ImageSearch.for_services(sqlite_services)
    assert len(damaged) == 0 and "rebuilding" in caplog.text
    probe = query_hash(jpeg(picture(3)))
    assert pairs(damaged.search(probe, 32, 500)) == brute_force(sqlite_services, probe, 32)


def test_search_within_a_crawl_or_a_host(sqlite_services: Services) -> None:
    shelf = Shelf(sqlite_services)
    for n in range(6):
        shelf.put_picture(n, host="a.example", crawl="crawl-a")
    for n in range(6, 10):
        shelf.put_picture(n, host="B.Example", crawl="crawl-b")
    shelf.put(copy_of(picture(0)), "http://b.example:8080/0.jpg", "crawl-b")
    refound = shelf.put(jpeg(picture(1)), "http://b.example/again/1.jpg", "crawl-b")
    with sqlite_services.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(crawl_run_items.c.outcome).where(crawl_run_items.c.target == refound.url)
            ).scalar_one()
            == "duplicate"
        )
        by_crawl: dict[str, set[str]] = {}
        query = sa.select(crawl_run_items.c.run_id, crawl_run_items.c.result)
        for crawl, md5 in conn.execute(query):
            by_crawl.setdefault(crawl, set()).add(md5)
        by_host: dict[str, set[str]] = {}
        for md5, url in conn.execute(sa.select(image_sources.c.md5, image_sources.c.url)):
            by_host.setdefault(httpx.URL(url).host, set()).add(md5)
    assert set(by_host) == {"a.example", "b.example"}

    search = ImageSearch.for_services(sqlite_services)
    probe = query_hash(jpeg(picture(0)))
    for crawl in ("crawl-a", "crawl-b"):
        found = search.search(probe, 32, 500, crawl=crawl)
        assert pairs(found) == brute_force(sqlite_services, probe, 32, by_crawl[crawl])
    for host in ("a.example", "B.EXAMPLE."):
        found = search.search(probe, 32, 500, host=host)
        want = brute_force(sqlite_services, probe, 32, by_host[host.lower().rstrip(".")])
        assert pairs(found) == want
    both = search.search(refound.phash, 0, crawl="crawl-b", host="a.example")
    assert [m.md5 for m in both.matches] == [refound.md5]  # re-found by b, first seen on a
    assert search.search(probe, 32, 500, host="c.example").matches == ()

    with pytest.raises(QueryError) as unknown:
        search.search(probe, crawl="no-such-crawl")
    assert (unknown.value.code, unknown.value.status) == ("crawl_not_found", 404)
    with pytest.raises(QueryError) as bad_host:
        search.search(probe, host="a.example/photos")
    assert bad_host.value.code == "invalid_host"


def test_parameters_are_checked(sqlite_services: Services) -> None:
    search = ImageSearch.for_services(sqlite_services)
    for kwargs in ({"max_distance": 33}, {"max_distance": -1}, {"limit": 0}, {"limit": True}):
        with pytest.raises(QueryError) as exc:
            search.search(0, **kwargs)
        assert exc.value.code == "invalid_parameter"


def test_query_images_are_decoded_with_the_pixel_guard() -> None:
    query = query_from_bytes(jpeg(picture(2)), MAX_PIXELS)
    assert (query.width, query.height, query.format) == (240, 180, "JPEG")
    preview = Image.open(io.BytesIO(query.preview_png(64)))
    assert preview.format == "PNG" and max(preview.size) == 64
    with pytest.raises(QueryError) as not_image:
        query_from_bytes(b"<html>not a picture</html>", MAX_PIXELS)
    assert not_image.value.code == "not_image" and "not a usable image" in not_image.value.message
    with pytest.raises(QueryError) as too_big:
        query_from_bytes(jpeg(picture(2)), 240 * 180 - 1)
    assert too_big.value.code == "too_many_pixels"


def test_md5s_sharing_an_index_id(
    sqlite_services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """Two MD5s with the same top 63 bits: equal pHashes are both found; with another pHash
    the second cannot be indexed, is logged, and never reported at a wrong distance."""
    shelf = Shelf(sqlite_services)
    prefix = "0123456789abcde"
    first = shelf.put(jpeg(picture(1)), "http://a.example/1.jpg", md5=prefix + "e" + "0" * 16)
    twin = shelf.put(jpeg(picture(1), 89), "http://a.example/1b.jpg", md5=prefix + "f" + "1" * 16)
    assert first.phash == twin.phash
    other = shelf.put(jpeg(picture(2)), "http://a.example/2.jpg", md5=prefix + "f" + "2" * 16)
    assert len(set(md5_ids([first.md5, twin.md5, other.md5]).tolist())) == 1
    search = ImageSearch.for_services(sqlite_services)
    with caplog.at_level(logging.WARNING):
        found = search.search(first.phash, 0)
    assert "cannot be indexed" in caplog.text
    assert pairs(found) == [(0, first.md5), (0, twin.md5)]
    assert all(m.distance <= 8 for m in search.search(other.phash).matches)


def test_a_crawled_image_is_found_from_a_resized_jpeg_copy(tmp_path: Path) -> None:
    app = create_imagehost_app(seed=0)
    with EmulatorServer(app) as base_url:
        urls = [f"{base_url}/id/{n}/320/240" for n in range(1, 6)]
        urls_file = tmp_path / "urls.txt"
        urls_file.write_text("\n".join(urls) + "\n", encoding="utf-8")
        services = loopback_services(tmp_path / "data", processes=1)
        crawl_id = crawl_id_for(str(urls_file))
        with urls_file.open(encoding="utf-8") as stream:
            final = crawl_list(services, crawl_id, stream)
        assert final.success == 5
        original = httpx.get(urls[2], timeout=PATIENCE).content
    try:
        reposted = copy_of(Image.open(io.BytesIO(original)), 0.55, 40)
        assert md5_hex(reposted) != md5_hex(original)
        search = ImageSearch.for_services(services)
        found = search.search(query_hash(reposted), crawl=crawl_id)
        assert found.matches[0].md5 == md5_hex(original)
        assert found.matches[0].distance <= 4
        assert [s.url for s in found.matches[0].sources] == [urls[2]]
        assert len(found.matches) == 1  # the four other photos are other scenes
    finally:
        services.close()
