"""The images app's routes: the gray PNG, thumbnails, metadata, the listing and the gallery."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import numpy as np
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from PIL import Image

from sleuth.apps.images.api import PAGE_SIZE
from sleuth.apps.images.models import images
from sleuth.services import Services
from tests.web.conftest import BROWSER_ACCEPT, Library

UNKNOWN = "0" * 32
MALFORMED = ["abc", "g" * 32, "0" * 31, "0" * 33, "../" + "0" * 29]


def _valid(client: FlaskClient, name: str, data: object) -> None:
    doc = client.get("/openapi.json").get_json()
    OAS31Validator({"$ref": f"#/components/schemas/{name}", **doc}).validate(data)


def _error(response: object, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status  # type: ignore[attr-defined]
    error: dict[str, str] = response.get_json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == code
    return error


def test_png_is_exactly_the_stored_gray(client: FlaskClient, library: Library) -> None:
    added = library.add(width=31, height=17)
    response = client.get(f"/image/{added.md5}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    decoded = Image.open(io.BytesIO(response.data))
    assert decoded.format == "PNG" and decoded.mode == "L" and decoded.size == (31, 17)
    assert np.array_equal(np.asarray(decoded), added.pixels)


def test_etag_and_304(client: FlaskClient, library: Library) -> None:
    added = library.add()
    etag = client.get(f"/image/{added.md5}").headers["ETag"]
    assert added.md5 in etag
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(f"/image/{added.md5}", headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.data == b"" and again.headers["ETag"] == etag
        assert again.headers["Cache-Control"].endswith("immutable")
    stale = client.get(f"/image/{added.md5}", headers={"If-None-Match": '"old"'})
    assert stale.status_code == 200 and stale.data


def test_upper_case_md5_is_the_same_image(client: FlaskClient, library: Library) -> None:
    added = library.add()
    lower, upper = client.get(f"/image/{added.md5}"), client.get(f"/image/{added.md5.upper()}")
    assert upper.status_code == 200 and upper.data == lower.data
    assert upper.headers["ETag"] == lower.headers["ETag"]
    assert client.get(f"/api/images/{added.md5.upper()}").get_json()["md5"] == added.md5


@pytest.mark.parametrize("path", ["/image/{}", "/image/{}/thumb", "/api/images/{}"])
def test_malformed_and_unknown_md5(client: FlaskClient, library: Library, path: str) -> None:
    library.add()
    for bad in MALFORMED:
        response = client.get(path.format(bad))
        if "/" in bad:  # a slash never reaches the route
            _error(response, 404, "not_found")
        else:
            _error(response, 400, "invalid_md5")
            assert repr(bad) in response.get_json()["error"]["message"]
    _error(client.get(path.format(UNKNOWN)), 404, "image_not_found")
    # A browser asking for an image gets JSON errors too: these are not HTML pages.
    browser = client.get(path.format(UNKNOWN), headers={"Accept": BROWSER_ACCEPT})
    _error(browser, 404, "image_not_found")


def test_damaged_or_missing_gray_blob_is_a_stated_server_error(
    client: FlaskClient, library: Library, services: Services
) -> None:
    added = library.add()
    with services.engine.connect() as conn:
        key = conn.execute(sa.select(images.c.gray_key)).scalar_one()
    services.blobs.put(key, "gray", b"SLGR not a gray blob", overwrite=True)
    _error(client.get(f"/image/{added.md5}"), 500, "gray_copy_damaged")
    services.blobs.delete(key, "gray")
    _error(client.get(f"/image/{added.md5}"), 500, "gray_copy_missing")
    _error(client.get(f"/image/{added.md5}/thumb"), 500, "gray_copy_missing")


def test_thumbnail(client: FlaskClient, library: Library, services: Services) -> None:
    added = library.add(width=640, height=200)
    response = client.get(f"/image/{added.md5}/thumb")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    thumb = Image.open(io.BytesIO(response.data))
    assert thumb.mode == "L" and thumb.size == (160, 50)
    assert Image.open(io.BytesIO(client.get(f"/image/{added.md5}/thumb?size=96").data)).size == (
        96,
        30,
    )
    etag = response.headers["ETag"]
    assert etag != client.get(f"/image/{added.md5}/thumb?size=96").headers["ETag"]
    assert (
        client.get(f"/image/{added.md5}/thumb", headers={"If-None-Match": etag}).status_code == 304
    )
    assert len(list(services.blobs.root.rglob("*.jpg"))) == 2  # one cached blob per size
    assert client.get(f"/image/{added.md5}/thumb").data == response.data
    for size in ("100", "0", "big", "-160"):
        _error(client.get(f"/image/{added.md5}/thumb?size={size}"), 400, "invalid_parameter")


def test_small_images_are_not_enlarged(client: FlaskClient, library: Library) -> None:
    added = library.add(width=12, height=9)
    thumb = Image.open(io.BytesIO(client.get(f"/image/{added.md5}/thumb?size=320").data))
    assert thumb.size == (12, 9)


def test_metadata(client: FlaskClient, library: Library) -> None:
    first = library.add(width=20, height=10, phash=0xF00DFACE12345678, url="http://a.test/1")
    library.add(same_as=first, url="http://b.test/2")
    library.add(same_as=first, url="http://a.test/1")  # same URL again: one source
    response = client.get(f"/api/images/{first.md5}")
    assert response.status_code == 200
    data = response.get_json()
    _valid(client, "Image", data)
    assert data["md5"] == first.md5
    assert (data["width"], data["height"]) == (20, 10)
    assert data["phash"] == "f00dface12345678"  # stored as a negative BIGINT
    assert (data["format"], data["mode"], data["bytes"]) == ("PNG", "RGB", 1000)
    assert [s["url"] for s in data["sources"]] == ["http://a.test/1", "http://b.test/2"]
    assert data["sources_total"] == 2
    first_seen = datetime.fromisoformat(data["first_seen"])
    assert first_seen.tzinfo == UTC and data["first_seen"].endswith("Z")
    assert data["last_seen"] >= data["first_seen"]
    assert data["sources"][0]["last_seen"] > data["sources"][0]["first_seen"]
    assert data["image_url"] == f"/image/{first.md5}"
    assert client.get(data["thumb_url"]).status_code == 200


def test_listing_pages_newest_first_without_gaps(
    client: FlaskClient, library: Library, services: Services
) -> None:
    added = [library.add() for _ in range(7)]
    with services.engine.begin() as conn:  # ties on first_seen must not lose images
        conn.execute(
            sa.update(images)
            .where(images.c.md5.in_([a.md5 for a in added[2:5]]))
            .values(first_seen=1_700_000_000.5)
        )
        rows = conn.execute(
            sa.select(images.c.md5).order_by(images.c.first_seen.desc(), images.c.md5.desc())
        ).scalars()
        expected = list(rows)
    seen: list[str] = []
    url = "/api/images?limit=2"
    while True:
        page = client.get(url).get_json()
        _valid(client, "ImagePage", page)
        assert len(page["images"]) <= 2
        seen += [image["md5"] for image in page["images"]]
        if page["next"] is None:
            break
        url = f"/api/images?limit=2&before={page['next']}"
    assert seen == expected
    default = client.get("/api/images").get_json()
    assert len(default["images"]) == 7 and default["next"] is None


def test_listing_before_a_time(client: FlaskClient, library: Library, services: Services) -> None:
    old, new = library.add(), library.add()
    with services.engine.begin() as conn:
        conn.execute(sa.update(images).where(images.c.md5 == old.md5).values(first_seen=1000.0))
    for before in ("2000", "2000.5", "1970-01-01T00:33:20Z", "1970-01-01T01:33:20+01:00"):
        page = client.get("/api/images", query_string={"before": before}).get_json()
        assert [i["md5"] for i in page["images"]] == [old.md5], before
    assert new.md5 in [i["md5"] for i in client.get("/api/images").get_json()["images"]]
    # A time without a zone could mean any of them: refused, with what to write instead.
    naive = _error(client.get("/api/images?before=1970-01-01T00:33:20"), 400, "invalid_parameter")
    assert "time zone" in naive["message"]


def test_listing_bad_parameters(client: FlaskClient) -> None:
    for query in (
        "limit=0",
        "limit=501",
        "limit=x",
        "limit=",
        "limit=+5",
        "before=soon",
        "before=nan",
        "before=",
        "before=1e9",
        "before=2024-02-30T00:00:00Z",
    ):
        _error(client.get(f"/api/images?{query}"), 400, "invalid_parameter")


def test_gallery(client: FlaskClient, library: Library) -> None:
    added = [library.add() for _ in range(PAGE_SIZE + 2)]
    library.add(same_as=added[0], url="http://127.0.0.1:9/dup.png")
    page = client.get("/", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.mimetype == "text/html"
    thumbs = re.findall(r'<img src="/image/([0-9a-f]{32})/thumb"', page.text)
    assert len(thumbs) == PAGE_SIZE and added[-1].md5 in thumbs
    assert f'<dd data-count="images">{PAGE_SIZE + 2}</dd>' in page.text
    assert f'<dd data-count="sources">{PAGE_SIZE + 3}</dd>' in page.text
    assert f'<dd data-outcome="success">{PAGE_SIZE + 2}</dd>' in page.text
    assert '<dd data-outcome="duplicate">1</dd>' in page.text
    for link in ('href="/monitoring"', 'href="/api/images"', 'href="/openapi.json"'):
        assert link in page.text
    older = re.search(r'<a rel="next" href="([^"]+)"', page.text)
    assert older is not None
    rest = client.get(older.group(1).replace("&amp;", "&")).text
    rest_thumbs = re.findall(r'<img src="/image/([0-9a-f]{32})/thumb"', rest)
    assert sorted(thumbs + rest_thumbs) == sorted(a.md5 for a in added)
    assert 'rel="next"' not in rest


def test_gallery_empty_and_bad_cursor(client: FlaskClient) -> None:
    assert "No images yet" in client.get("/").text
    response = client.get("/?before=soon", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "before must be" in response.text
