"""`sleuth images search FILE|URL`: a table for people, JSON for scripts, clear errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sleuth.apps.images.search import DEFAULT_MAX_DISTANCE
from sleuth.cli.main import cli
from sleuth.config import Settings
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.services import Services
from tests.apps.images.shelf import Shelf, Stored, copy_of, jpeg, picture


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLEUTH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def stored(data_dir: Path) -> Iterator[list[Stored]]:
    """Four pictures in the database the CLI opens, the second one found at two URLs."""
    services = Services(Settings(data_dir=data_dir))
    shelf = Shelf(services)
    out = [shelf.put_picture(n) for n in range(4)]
    shelf.put_picture(1, host="mirror.example")
    services.close()
    yield out


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["images", "search", *args])
    return result.exit_code, result.output


def test_a_file_is_searched_and_shown_as_a_table(tmp_path: Path, stored: list[Stored]) -> None:
    query = tmp_path / "copy.jpg"
    query.write_bytes(copy_of(picture(1), 0.5, 45))
    code, out = run(str(query))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("query: 120x90 JPEG, pHash ")
    assert lines[1] == f"1 match within distance {DEFAULT_MAX_DISTANCE}:"
    assert lines[2].split() == ["dist", "md5", "size", "first", "seen", "source"]
    distance, md5, size, _, source, more = lines[3].split(maxsplit=5)
    assert int(distance) <= 4 and md5 == stored[1].md5 and size == "240x180"
    assert source == stored[1].url and more == "(+1 more)"

    query.write_bytes(jpeg(picture(9)))
    code, out = run(str(query), "--max-distance", "0")
    assert code == 0 and "No stored image within distance 0." in out


def test_json_for_scripts(tmp_path: Path, data_dir: Path, stored: list[Stored]) -> None:
    services = Services(Settings(data_dir=data_dir))
    repost = Shelf(services).put(copy_of(picture(2), 0.6, 30), "http://b.example/2.jpg", "crawl-b")
    services.close()
    query = tmp_path / "copy.jpg"
    query.write_bytes(copy_of(picture(2), 0.8, 60))
    code, out = run(str(query), "--json", "--max-distance", "32", "--limit", "1")
    assert code == 0, out
    body = json.loads(out)
    assert body["max_distance"] == 32 and body["limit"] == 1 and body["truncated"] is True
    assert body["query"]["width"] == 192
    phash = int(body["query"]["phash"], 16)
    nearest = min(((s.phash ^ phash).bit_count(), s.md5, s.url) for s in (stored[2], repost))
    (match,) = body["matches"]
    assert (match["distance"], match["md5"], match["sources"][0]["url"]) == nearest


def test_a_url_is_fetched_through_the_guard(
    stored: list[Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorServer(create_imagehost_app(seed=0)) as base_url:
        url = f"{base_url}/id/4/160/120"
        code, out = run(url)
        assert code == 1 and "fetch_blocked_address" in out  # loopback is private
        monkeypatch.setenv("SLEUTH_NET_ALLOW_PRIVATE", "1")
        code, out = run(url, "--json", "--max-distance", "32")
        assert code == 0, out
        body = json.loads(out)
        assert (body["query"]["width"], body["query"]["height"]) == (160, 120)
        code, out = run(f"{base_url}/error/404")
        assert code == 1 and "fetch_http_status" in out and "404" in out


def test_clear_errors(tmp_path: Path, data_dir: Path) -> None:
    code, out = run(str(tmp_path / "missing.jpg"))
    assert code == 1 and "missing.jpg: no such file" in out
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    code, out = run(str(text))
    assert code == 1 and "not_image" in out and "not a usable image" in out
    code, out = run("ftp://example.com/a.jpg")
    assert code == 1 and "fetch_bad_url" in out
    code, out = run(str(text), "--max-distance", "40")
    assert code == 2 and "--max-distance" in out
    image = tmp_path / "picture.jpg"
    image.write_bytes(jpeg(picture(0)))
    code, out = run(str(image), "--crawl", "nope")
    assert code == 1 and "crawl_not_found" in out
