"""End to end: the seed-shaped list crawled from the offline web, checked to the pixel."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from sleuth.apps.images.cli import crawl_list
from sleuth.apps.images.crawl import crawl_id_for, progress
from sleuth.apps.images.models import image_sources, images
from sleuth.config import Settings
from sleuth.crawl.models import QUEUED, crawl_failures, crawl_run_items
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.emulator.urls import expected_outcomes, seed_shaped_urls
from sleuth.imaging.encode import unpack_gray
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.distributed.cluster import resolved_lines
from tests.patience import PATIENCE, wait_for

HOLD = 2.0  # seconds a held request waits: far longer than a crawl of the rest would take


class CountingApp:
    """WSGI middleware counting requests per path, to prove what was (not) fetched again.
    With `hold_after` set, requests for more than that many distinct paths are answered
    `HOLD` seconds late until `release` is set: a crawl cannot finish before the test has
    interrupted it (late, not never: held fetches must not keep every worker slot)."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.hold_after: int | None = None
        self.release = threading.Event()

    def __call__(self, environ, start_response):  # type: ignore[no-untyped-def]
        with self.lock:
            self.hits[environ["PATH_INFO"]] += 1
            held = self.hold_after is not None and len(self.hits) > self.hold_after
        if held:
            self.release.wait(HOLD)
        return self.app(environ, start_response)


@pytest.fixture
def image_host() -> Iterator[tuple[str, CountingApp]]:
    app = CountingApp(create_imagehost_app(seed=0))
    with EmulatorServer(app) as url:
        yield url, app


def loopback_services(data_dir: Path, processes: int = 2) -> Services:
    settings = Settings(data_dir=data_dir)
    settings = dataclasses.replace(
        settings,
        net=dataclasses.replace(settings.net, allow_private=True),
        worker=dataclasses.replace(settings.worker, processes=processes, lease_seconds=30.0),
    )
    return Services(settings)


def write_list(path: Path, base_url: str, count: int | None = None) -> list[str]:
    lines = list(seed_shaped_urls(base_url, count=count))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return lines


@pytest.mark.slow
def test_seed_shaped_list_end_to_end(tmp_path: Path, image_host: tuple[str, CountingApp]) -> None:
    base_url, _ = image_host
    urls_file = tmp_path / "urls.txt"
    lines = write_list(urls_file, base_url)
    assert len(lines) == 650
    services = loopback_services(tmp_path / "data")
    crawl_id = crawl_id_for(str(urls_file))
    with urls_file.open(encoding="utf-8") as stream:
        final = crawl_list(services, crawl_id, stream)

    expected = expected_outcomes(lines)
    assert expected == {"success": 500, "duplicate": 50, "error": 100}
    assert (final.success, final.duplicate, final.error) == (500, 50, 100)
    assert final.finished

    engine = services.engine
    with engine.connect() as conn:
        stored = conn.execute(sa.select(images)).mappings().all()
        n_sources = conn.execute(sa.select(sa.func.count()).select_from(image_sources)).scalar()
        reasons = Counter(
            conn.execute(sa.select(crawl_failures.c.reason, crawl_failures.c.http_status)).all()
        )
    assert len(stored) == 500  # one row per distinct MD5
    assert n_sources == 500  # a repeated URL is one source of its image
    assert sum(reasons.values()) == 100
    assert {reason for reason, _ in reasons} == {"http_status"}
    assert all(status in {400, 404} for _, status in reasons)

    # Every stored gray pixel is floor((R+G+B)/3) of the decoded original, and the web
    # serves exactly those pixels.
    app = create_app(services)
    client = app.test_client()
    by_md5 = {row["md5"]: row for row in stored}
    with engine.connect() as conn:
        sources = conn.execute(sa.select(image_sources.c.md5, image_sources.c.url)).all()
    checked = 0
    with httpx.Client(timeout=PATIENCE) as http:
        for md5, url in sources[:60]:
            original = http.get(url).content
            rgb = np.asarray(Image.open(io.BytesIO(original)).convert("RGB"), dtype=np.uint16)
            want = ((rgb[..., 0] + rgb[..., 1] + rgb[..., 2]) // 3).astype(np.uint8)
            row = by_md5[md5]
            w, h, gray = unpack_gray(services.blobs.get(row["gray_key"], "gray"))
            assert (w, h) == (row["width"], row["height"]) == (want.shape[1], want.shape[0])
            assert np.array_equal(gray, want)
            png = client.get(f"/image/{md5}")
            assert png.status_code == 200
            assert png.mimetype == "image/png"
            served = np.asarray(Image.open(io.BytesIO(png.data)))
            assert np.array_equal(served, want)
            checked += 1
    assert checked == 60

    monitoring = client.get("/monitoring?format=json").get_json()
    totals = Counter()
    for minute in monitoring["minutes"]:
        for outcome in ("success", "error", "duplicate"):
            totals[outcome] += minute[outcome]
    assert dict(totals) == {"success": 500, "error": 100, "duplicate": 50}
    services.close()


def run_cli(
    args: list[str], data_dir: Path, env_extra: dict[str, str] | None = None
) -> subprocess.Popen:  # type: ignore[type-arg]
    """`sleuth ARGS` in a session of its own (so a test can kill its whole process tree)."""
    env = {**os.environ, "SLEUTH_DATA_DIR": str(data_dir), "SLEUTH_NET_ALLOW_PRIVATE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "sleuth.cli", *args],
        env={**env, **(env_extra or {})},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_then_same_command_resumes_without_refetching(
    tmp_path: Path, image_host: tuple[str, CountingApp]
) -> None:
    base_url, counter = image_host
    urls_file = tmp_path / "urls.txt"
    lines = write_list(urls_file, base_url)[:150]
    urls_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    crawl_id = crawl_id_for(str(urls_file))

    counter.hold_after = 40  # distinct images: the first run stops short of the end
    first = run_cli(["images", "crawl", str(urls_file)], data_dir)
    database = data_dir / "sleuth.db"
    url = f"sqlite:///{database}"
    # connecting before the command created its database would create an empty one
    wait_for(
        lambda: database.exists() and resolved_lines(url, distinct_urls=True) >= 30,
        "30 distinct URLs done by the first run (the list repeats some)",
        interval=0.2,
    )
    first.send_signal(signal.SIGINT)  # what Ctrl-C sends
    out, _ = first.communicate(timeout=PATIENCE)
    counter.release.set()
    assert "run the same command again to resume" in out, out
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        done_urls = set(
            conn.execute(
                sa.select(crawl_run_items.c.target).where(crawl_run_items.c.state != QUEUED)
            ).scalars()
        )
    engine.dispose()
    assert len(done_urls) >= 30
    hits_before = Counter(counter.hits)

    second = run_cli(["images", "crawl", str(urls_file)], data_dir)
    out, _ = second.communicate(timeout=PATIENCE)
    assert second.returncode == 0, out
    expected = expected_outcomes(lines)
    summary = (
        f"{expected['success']} stored, {expected['duplicate']} duplicates, "
        f"{expected['error']} errors"
    )
    assert summary in out, out
    assert "150 of 150 lines" in out
    # A URL listed once and resolved before the interruption is not fetched again.
    refetched = counter.hits - hits_before
    once_done = {httpx.URL(u).path for u in done_urls if lines.count(u) == 1}
    assert not once_done & set(refetched), sorted(once_done & set(refetched))[:5]
    services = loopback_services(data_dir)
    assert progress(services.engine, crawl_id).finished
    services.close()
