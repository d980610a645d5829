"""The `/graph` monitor page in a real headless Chromium: after a crawl of world 0's
rate-limited emulators it shows the figures of `/api/graph/monitor`, and it follows new ones
(a crawl queued, a failure recorded) without a reload, and its form finds the collected
posts that `/api/graph/posts` finds, asking nothing off loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from sleuth.apps.graph.app import NAME
from sleuth.apps.graph.cli import crawl_graph, open_graph_run
from sleuth.apps.graph.jobs import F, Plan, T, item_job, seed_item
from sleuth.crawl import runs
from sleuth.emulator.artworld import ArtWorld
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.apps.graph.conftest import graph_settings
from tests.apps.graph.test_crawl import _seed, _seeds
from tests.apps.graph.test_monitor import limited_url  # noqa: F401  (the emulators' fixture)
from tests.patience import PATIENCE
from tests.web.test_monitoring_browser import chromium  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.browser

READ_PAGE = """() => ({
  figures: Object.fromEntries(
    [...document.querySelectorAll("[data-figure]")].map((el) => [el.dataset.figure, el.textContent])
  ),
  errors: [...document.querySelectorAll("#errors tr[data-reason]")].map((tr) =>
    [tr.dataset.reason, tr.cells[1].textContent]),
  budgets: [...document.querySelectorAll("#budgets tr[data-host]")].map((tr) =>
    [...tr.cells].map((td) => td.textContent)),
  workers: document.querySelectorAll("#workers tr[data-consumer]").length,
})"""


@pytest.fixture
def crawled(tmp_path: Path, limited_url: str, world: ArtWorld) -> Iterator[Services]:  # noqa: F811
    """Services after a crawl of a Mastodon seed's timeline and followers and a seed that is
    none (run before the browser starts: Playwright's loop owns the test's thread then)."""
    services = Services(graph_settings(tmp_path, limited_url))
    seeds = _seeds(tmp_path, _seed(world, "mastodon").url, "not a seed!")
    assert crawl_graph(services, seeds, Plan((T, F), depth=0))[1].finished
    yield services
    services.close()


@pytest.fixture
def server(crawled: Services) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, create_app(crawled), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(PATIENCE)


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """The JSON's scalar figures by path (keys joined by /), as the page's text shows them."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out |= _flatten(value, f"{prefix}{key}/")
        return out
    return {prefix[:-1]: str(data)} if not isinstance(data, list) else {}


def _drawn_as(page: dict[str, Any], data: dict[str, Any]) -> None:
    flat = _flatten(data)
    for path, text in page["figures"].items():
        if path == "generated_at" or path.startswith("rates/"):
            continue  # they move on with the clock between the two reads
        assert text == flat[path], path
    assert page["errors"] == [[r, str(n)] for r, n in data["errors_by_reason"].items()]
    assert [row[:2] for row in page["budgets"]] == [
        [b["host"], b["source"] or "default"] for b in data["budgets"]
    ]


def test_the_page_shows_the_figures_and_follows_them(
    crawled: Services,
    server: str,
    chromium: Any,  # noqa: F811
) -> None:
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
    page.goto(f"{server}/graph", wait_until="load")
    data = httpx.get(f"{server}/api/graph/monitor", timeout=PATIENCE).json()
    drawn = page.evaluate(READ_PAGE)
    _drawn_as(drawn, data)
    assert drawn["figures"]["frontier/items"] == "0"
    assert drawn["errors"] == [["bad_input", "1"]]
    assert drawn["budgets"] and drawn["workers"] == 0
    assert int(drawn["figures"]["graph/edges"]) > 0

    # A crawl queued and a failure recorded: the page shows them without reloading.
    page.evaluate("() => { window.notReloaded = true; }")
    plan = Plan((F,), depth=1)
    run = open_graph_run(crawled.engine, "queued")
    items = [seed_item(run, n, f"@nobody{n}@nowhere.example", plan) for n in (1, 2, 3)]
    runs.add_items(crawled.engine, crawled.queue, items, item_job)
    with crawled.engine.begin() as conn:
        runs.fail(conn, NAME, run, "seed:3", "account_not_found", "no such account", 404)
    page.wait_for_function(
        "() => document.querySelector('[data-figure=\"frontier/items\"]').textContent === '2'"
    )
    page.wait_for_function(
        "() => document.querySelectorAll('#errors tr[data-reason]').length === 2"
    )
    assert page.evaluate("() => window.notReloaded === true")
    data = httpx.get(f"{server}/api/graph/monitor", timeout=PATIENCE).json()
    drawn = page.evaluate(READ_PAGE)
    _drawn_as(drawn, data)
    assert drawn["figures"]["frontier/queues/graph.analysis/ready"] == "3"  # seed:3's job too
    assert sorted(drawn["errors"]) == [["account_not_found", "1"], ["bad_input", "1"]]

    # The search form: the posts holding both words, as the API answers them.
    query = "post 1"
    page.fill("#post-search input[name=q]", query)
    page.click("#post-search button[type=submit]")
    page.wait_for_function(
        "() => /found$/.test(document.getElementById('posts-status').textContent)"
    )
    shown = page.evaluate(
        """() => [...document.querySelectorAll("#posts li.post")].map((li) =>
          [li.dataset.network, li.dataset.postId, li.querySelector("p").textContent])"""
    )
    answer = httpx.get(f"{server}/api/graph/posts", params={"q": query}, timeout=PATIENCE).json()
    assert shown == [[p["network"], p["post_id"], p["text"]] for p in answer["posts"]]
    assert shown and all(text.lower().split().count("1") for _, _, text in shown)
    assert not problems, problems
