"""Search by image on the web: `POST /api/images/search` and the `/search` page."""

from __future__ import annotations

import base64
import dataclasses
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator
from PIL import Image

from sleuth.apps.images.search import DEFAULT_MAX_DISTANCE
from sleuth.config import Settings
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.world import photo_jpeg
from sleuth.services import Services
from sleuth.web.app import DEFAULT_MAX_REQUEST_BYTES, create_app
from tests.apps.images.shelf import Shelf, copy_of, jpeg, picture
from tests.web.conftest import BROWSER_ACCEPT
from tests.web.test_app import _error

SEARCH = "/api/images/search"
UPLOAD_CAP = 1_500_000  # over the app's own limit of 1 MiB for other requests


def settings_for(data_dir: Path, **net: object) -> Settings:
    settings = Settings(data_dir=data_dir)
    return dataclasses.replace(settings, net=dataclasses.replace(settings.net, **net))


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[Services]:
    """Services that may fetch from loopback (the emulator), with a 1.5 MB upload cap."""
    services = Services(settings_for(tmp_path / "data", allow_private=True, max_bytes=UPLOAD_CAP))
    yield services
    services.close()


@pytest.fixture
def web(loopback: Services) -> FlaskClient:
    return create_app(loopback).test_client()


@pytest.fixture
def emulator() -> Iterator[str]:
    with EmulatorServer(create_imagehost_app(seed=0)) as url:
        yield url


def upload(data: bytes, **fields: object) -> dict:
    return {"image": (io.BytesIO(data), "query.jpg"), **{k: str(v) for k, v in fields.items()}}


def valid(client: FlaskClient, name: str, body: object) -> None:
    doc = client.get("/openapi.json").get_json()
    OAS31Validator({"$ref": f"#/components/schemas/{name}", **doc}).validate(body)


def test_an_uploaded_copy_finds_the_original(web: FlaskClient, loopback: Services) -> None:
    shelf = Shelf(loopback)
    originals = [shelf.put_picture(n) for n in range(5)]
    response = web.post(SEARCH, data=upload(copy_of(picture(2), 0.5, 40)))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    valid(web, "ImageSearch", body)
    assert body["max_distance"] == DEFAULT_MAX_DISTANCE == 10
    assert body["limit"] == 50 and body["truncated"] is False
    assert (body["query"]["width"], body["query"]["height"]) == (120, 90)
    (match,) = body["matches"]
    assert match["md5"] == originals[2].md5 and match["distance"] <= 4
    assert match["phash"] == f"{originals[2].phash:016x}"
    assert [s["url"] for s in match["sources"]] == [originals[2].url]
    assert web.get(match["thumb_url"]).status_code == 200
    assert web.get(match["api_url"]).get_json()["md5"] == match["md5"]

    wide = web.post(SEARCH, data=upload(jpeg(picture(2)), max_distance=32, limit=2)).get_json()
    assert [m["distance"] for m in wide["matches"]] == sorted(
        m["distance"] for m in wide["matches"]
    )
    assert wide["matches"][0]["md5"] == originals[2].md5 and wide["truncated"] is True


def test_images_stored_while_serving_are_found(web: FlaskClient, loopback: Services) -> None:
    shelf = Shelf(loopback)
    shelf.put_picture(0)
    query = upload(jpeg(picture(7)))
    assert web.post(SEARCH, data=query).get_json()["matches"] == []
    added = shelf.put_picture(7)
    matches = web.post(SEARCH, data=upload(jpeg(picture(7)))).get_json()["matches"]
    assert [(m["md5"], m["distance"]) for m in matches] == [(added.md5, 0)]


def test_search_by_url_form_or_json(web: FlaskClient, loopback: Services, emulator: str) -> None:
    shelf = Shelf(loopback)
    stored = shelf.put(photo_jpeg(0, 9, 320, 240), f"{emulator}/id/9/320/240", "crawl-e")
    other = shelf.put_picture(3, crawl="crawl-other")
    other_size = f"{emulator}/id/9/200/150"  # the same scene, rendered smaller
    for response in (
        web.post(SEARCH, data={"url": other_size, "max_distance": "4"}),
        web.post(SEARCH, json={"url": other_size, "max_distance": 4, "crawl": "crawl-e"}),
    ):
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert (body["query"]["width"], body["query"]["height"]) == (200, 150)
        assert [m["md5"] for m in body["matches"]] == [stored.md5]
    by_host = web.post(SEARCH, json={"url": other_size, "max_distance": 32, "host": "a.example"})
    assert {m["md5"] for m in by_host.get_json()["matches"]} <= {other.md5}


def test_bad_queries_are_clear_400s(web: FlaskClient, emulator: str) -> None:
    body = _error(web.post(SEARCH, data={}), 400, "missing_image")
    assert "`image`" in body["error"]["message"]
    _error(web.post(SEARCH, data={"url": ""}), 400, "missing_image")
    _error(web.post(SEARCH, data=upload(jpeg(picture(1)), url="http://x/")), 400, "ambiguous_query")
    not_image = _error(web.post(SEARCH, data=upload(jpeg(picture(1))[:3000])), 400, "truncated")
    assert "not a usable image" in not_image["error"]["message"]
    _error(web.post(SEARCH, data=upload(b"%PDF-1.4 hello")), 400, "not_image")
    for bad in ("33", "-1", "x", "1.5"):
        message = _error(
            web.post(SEARCH, data=upload(jpeg(picture(1)), max_distance=bad)),
            400,
            "invalid_parameter",
        )["error"]["message"]
        assert "max_distance" in message and "0 to 32" in message
    _error(web.post(SEARCH, json={"url": "http://x/", "limit": 0}), 400, "invalid_parameter")
    _error(
        web.post(SEARCH, json={"url": "http://x/", "max_distance": True}), 400, "invalid_parameter"
    )
    _error(web.post(SEARCH, json=["not", "an", "object"]), 400, "invalid_json")
    _error(web.post(SEARCH, data="{", content_type="application/json"), 400, "invalid_json")
    _error(web.post(SEARCH, json={"url": 42}), 400, "invalid_parameter")
    _error(web.post(SEARCH, json={"url": "ftp://example.com/a.jpg"}), 400, "fetch_bad_url")
    _error(web.post(SEARCH, json={"url": f"{emulator}/error/404"}), 502, "fetch_http_status")
    _error(
        web.post(SEARCH, json={"url": f"{emulator}/id/1/200/150", "crawl": "nope"}),
        404,
        "crawl_not_found",
    )


def test_fetching_obeys_the_ssrf_guard(services: Services, emulator: str) -> None:
    client = create_app(services).test_client()  # default settings: no private addresses
    body = _error(
        client.post(SEARCH, json={"url": f"{emulator}/id/1/200/150"}), 400, "fetch_blocked_address"
    )
    assert "127.0.0.1" in body["error"]["message"]


def test_the_upload_cap_comes_from_the_settings(web: FlaskClient) -> None:
    # A JPEG decoder stops at the end-of-image marker: padding makes large valid uploads.
    large = jpeg(picture(1)) + bytes(1_200_000)
    assert DEFAULT_MAX_REQUEST_BYTES < len(large) < UPLOAD_CAP
    assert web.post(SEARCH, data=upload(large)).status_code == 200
    too_large = upload(jpeg(picture(1)) + bytes(UPLOAD_CAP))
    body = _error(web.post(SEARCH, data=too_large), 413, "request_entity_too_large")
    assert str(UPLOAD_CAP) in body["error"]["message"]
    # Other routes keep the app's limit.
    _error(
        web.post("/api/images/" + "0" * 32, data=bytes(1_200_000)), 413, "request_entity_too_large"
    )


def test_the_search_is_documented(web: FlaskClient) -> None:
    doc = web.get("/openapi.json").get_json()
    post = doc["paths"]["/api/images/search"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "multipart/form-data",
        "application/x-www-form-urlencoded",
        "application/json",
    }
    assert {"400", "404", "413", "502"} <= set(post["responses"])
    assert set(doc["paths"]["/search"]) == {"get", "post"}


def test_the_search_page(web: FlaskClient, loopback: Services) -> None:
    shelf = Shelf(loopback)
    stored = [shelf.put_picture(n) for n in range(4)]
    index = web.get("/", headers={"Accept": BROWSER_ACCEPT}).get_data(as_text=True)
    assert 'href="/search"' in index

    form = web.get("/search", headers={"Accept": BROWSER_ACCEPT})
    assert form.status_code == 200 and form.mimetype == "text/html"
    page = form.get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="image"' in page
    assert 'name="url"' in page and 'name="max_distance"' in page
    assert f'value="{DEFAULT_MAX_DISTANCE}"' in page
    assert "//cdn" not in page and "https://" not in page.replace('placeholder="https://', "")

    results = web.post(
        "/search",
        data=upload(copy_of(picture(1), 0.5, 50), max_distance=6),
        headers={"Accept": BROWSER_ACCEPT},
    )
    assert results.status_code == 200
    page = results.get_data(as_text=True)
    preview = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert preview is not None
    thumb = Image.open(io.BytesIO(base64.b64decode(preview.group(1))))
    assert thumb.format == "PNG" and max(thumb.size) <= 160
    assert f'src="/image/{stored[1].md5}/thumb"' in page
    assert f'href="/api/images/{stored[1].md5}"' in page
    assert re.search(r'data-distance="[0-4]"', page)
    assert 'value="6"' in page  # the form keeps what was asked

    failed = web.post("/search", data=upload(b"not an image"), headers={"Accept": BROWSER_ACCEPT})
    assert failed.status_code == 400 and failed.mimetype == "text/html"
    text = failed.get_data(as_text=True)
    assert "not a usable image" in text and 'name="image"' in text
    nothing = web.post("/search", data={"url": "", "max_distance": "8"})
    assert nothing.status_code == 400 and "nothing to search for" in nothing.get_data(as_text=True)
