"""The finder's page in a real headless Chromium: an artwork URL typed in, the statuses shown
as the request advances, and at END the artist's posts that contain it, linked, with their
images, while the finder's workers run beside the web server on the offline web."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from sleuth.apps.finder.settings import NAME
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.artworld import ArtWorld
from sleuth.runner import app_queues, run_worker
from sleuth.web.app import create_app
from tests.apps.finder.test_pipeline import SEED, finder_services, truth_posts
from tests.patience import PATIENCE
from tests.web.test_monitoring_browser import chromium  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.browser

READ_PAGE = """() => ({
  statuses: window.seen,
  status: document.getElementById("status").textContent,
  error: (({ hidden, textContent }) => (hidden ? null : textContent))(
    document.getElementById("error")),
  accounts: [...document.querySelectorAll("#accounts li")].map((li) => li.textContent),
  results: [...document.querySelectorAll("#results li.result")].map((li) => ({
    post: li.querySelector("a.post").href,
    text: li.textContent,
    thumb: li.querySelector("img") ? li.querySelector("img").src : null,
    loaded: li.querySelector("img") ? li.querySelector("img").naturalWidth > 0 : false,
  })),
})"""

# Every status the page shows, in order, recorded as it changes.
WATCH = """() => {
  window.seen = [];
  const el = document.getElementById("status");
  new MutationObserver(() => {
    const s = el.dataset.status;
    if (s && window.seen[window.seen.length - 1] !== s) window.seen.push(s);
  }).observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
}"""


@pytest.fixture
def world_and_servers(tmp_path: Path) -> Iterator[tuple[ArtWorld, str]]:
    """The emulated networks, sleuth's web app on loopback and the finder's workers."""
    world = ArtWorld(seed=SEED, artists=3, artworks_per_artist=2, posts_per_account=10)
    with EmulatorServer(create_imagehost_app(SEED, world=world, rate_limits=False)) as url:
        services = finder_services(tmp_path, url)
        httpd = make_server("127.0.0.1", 0, create_app(services), threaded=True)
        web = threading.Thread(target=httpd.serve_forever, daemon=True)
        stop = threading.Event()
        workers = threading.Thread(
            target=lambda: asyncio.run(
                run_worker(
                    services, queues=app_queues(NAME), until=stop.is_set, handle_signals=False
                )
            ),
            daemon=True,
        )
        web.start()
        workers.start()
        try:
            yield world, f"http://127.0.0.1:{httpd.server_port}"
        finally:
            stop.set()
            workers.join(PATIENCE)
            httpd.shutdown()
            web.join(PATIENCE)
            services.close()


def test_the_page_follows_a_query_to_the_matching_posts(
    world_and_servers: tuple[ArtWorld, str],
    chromium: Any,  # noqa: F811
) -> None:
    world, server = world_and_servers
    entry = next(e for e in world.ground_truth() if e["posts"])
    artwork = world.page_url(world.artworks[entry["artwork"]], sorted(entry["pages"])[0])

    page = chromium.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "request",
        lambda r: (
            problems.append(r.url) if urlsplit(r.url).hostname not in ("127.0.0.1", None) else None
        ),
    )
    page.goto(f"{server}/finder", wait_until="load")
    page.evaluate(WATCH)
    page.fill("input[name=url]", artwork)
    page.click("button[type=submit]")
    page.wait_for_function("() => document.getElementById('status').dataset.status === 'END'")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#results img')].every((i) => i.complete)"
    )
    drawn = page.evaluate(READ_PAGE)

    assert drawn["error"] is None
    # The request advanced through the finder's stages before its END, shown as they came.
    assert drawn["statuses"][-1] == "END" and len(drawn["statuses"]) >= 2
    assert sorted(drawn["accounts"]) == sorted(
        f"{a['network']}: {a['account']}" for a in entry["accounts"]
    )
    shown = {r["post"] for r in drawn["results"]}
    assert {p["post_url"] for p in entry["posts"]} <= shown
    assert len(drawn["results"]) >= len(truth_posts(entry))
    for result in drawn["results"]:
        assert result["thumb"] and result["loaded"], result  # the image itself, from its network
        assert urlsplit(result["thumb"]).hostname == "127.0.0.1"
    assert not problems, problems
