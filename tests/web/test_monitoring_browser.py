"""The monitoring page in a real headless Chromium: the bars drawn match the JSON, and the
chart follows new counts without a reload."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from sleuth.observe.counters import count_outcome
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.patience import PATIENCE

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/monitoring.png")
T0 = 1_700_000_000 - 1_700_000_000 % 60

# What the page drew: per minute group its data attributes and its rects' geometry.
READ_BARS = """() => {
  const svg = document.querySelector("#chart svg.histogram");
  const groups = [...svg.querySelectorAll("g.minute")].map((g) => ({
    epoch: Number(g.dataset.epoch),
    success: Number(g.dataset.success),
    duplicate: Number(g.dataset.duplicate),
    error: Number(g.dataset.error),
    rects: [...g.querySelectorAll("rect")].map((r) => ({
      outcome: r.dataset.outcome,
      count: Number(r.dataset.count),
      x: Number(r.getAttribute("x")),
      y: Number(r.getAttribute("y")),
      height: Number(r.getAttribute("height")),
      fill: getComputedStyle(r).fill,
    })),
  }));
  return {
    scaleMax: Number(svg.dataset.scaleMax),
    plotHeight: Number(svg.dataset.plotHeight),
    groups,
    legend: [...svg.querySelectorAll(".legend text")].map((t) => t.textContent),
    ticks: [...svg.querySelectorAll(".tick.x")].map((t) => t.textContent),
    titles: [...svg.querySelectorAll(".title")].map((t) => t.textContent),
    totals: Object.fromEntries(
      [...document.querySelectorAll("#totals dd")].map((d) => [d.dataset.outcome, d.textContent])
    ),
  };
}"""


def _count(services: Services, outcome: str, at: float, times: int) -> None:
    with services.engine.begin() as conn:
        for _ in range(times):
            count_outcome(conn, "images", outcome, at)


@pytest.fixture
def server(services: Services) -> Iterator[str]:
    """The app on a real HTTP server on loopback, as `sleuth serve` runs it."""
    httpd = make_server("127.0.0.1", 0, create_app(services), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(PATIENCE)


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A Chromium browser context whose pages wait up to `PATIENCE` for anything."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 700})
        context.set_default_timeout(PATIENCE * 1000)  # milliseconds
        yield context
        browser.close()


def _check_bars(drawn: dict[str, Any], data: dict[str, Any]) -> None:
    """One group per minute of the JSON, each rect as tall as its count says, stacked."""
    assert [g["epoch"] for g in drawn["groups"]] == [m["epoch"] for m in data["minutes"]]
    peak = max(m["success"] + m["error"] + m["duplicate"] for m in data["minutes"])
    assert drawn["scaleMax"] >= peak
    per_unit = drawn["plotHeight"] / drawn["scaleMax"]
    for group, minute in zip(drawn["groups"], data["minutes"], strict=True):
        rects = {r["outcome"]: r for r in group["rects"]}
        assert set(rects) == {"success", "duplicate", "error"}
        for outcome, rect in rects.items():
            assert group[outcome] == rect["count"] == minute[outcome]
            assert rect["height"] == pytest.approx(minute[outcome] * per_unit, abs=0.01)
        # Stacked bottom to top: success, duplicate, error; each starts where the last ended.
        s, d, e = rects["success"], rects["duplicate"], rects["error"]
        assert s["y"] == pytest.approx(d["y"] + d["height"], abs=0.01)
        assert d["y"] == pytest.approx(e["y"] + e["height"], abs=0.01)
        assert len({s["fill"], d["fill"], e["fill"]}) == 3
    xs = [g["rects"][0]["x"] for g in drawn["groups"]]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_bars_match_the_json_and_follow_new_counts(
    services: Services, server: str, chromium: Any
) -> None:
    _count(services, "success", T0, 3)
    _count(services, "error", T0 + 10, 1)
    _count(services, "duplicate", T0 + 20, 2)
    _count(services, "success", T0 + 120, 6)  # T0 + 60 has no events: an empty bar

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
    page.goto(f"{server}/monitoring", wait_until="load")
    page.wait_for_selector("#chart svg.histogram g.minute")

    data = httpx.get(f"{server}/monitoring?format=json", timeout=PATIENCE).json()
    assert len(data["minutes"]) == 3
    drawn = page.evaluate(READ_BARS)
    _check_bars(drawn, data)
    assert drawn["legend"] == ["success", "duplicate", "error"]
    assert drawn["ticks"] == ["22:13", "22:14", "22:15"]
    assert drawn["titles"] == ["minute (UTC)", "images per minute"]
    assert drawn["totals"] == {"success": "9", "duplicate": "2", "error": "1", "total": "12"}

    # New counts in a new minute and in a drawn one: the page redraws without reloading.
    page.evaluate("() => { window.notReloaded = true; }")
    _count(services, "error", T0 + 180, 4)
    _count(services, "duplicate", T0 + 5, 1)
    page.wait_for_function("() => document.querySelectorAll('#chart g.minute').length === 4")
    page.wait_for_function(
        "() => document.querySelector('#totals dd[data-outcome=\"total\"]').textContent === '17'"
    )
    assert page.evaluate("() => window.notReloaded === true")
    data = httpx.get(f"{server}/monitoring?format=json", timeout=PATIENCE).json()
    drawn = page.evaluate(READ_BARS)
    _check_bars(drawn, data)
    assert drawn["groups"][0]["duplicate"] == 3

    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert not problems, problems


def test_another_app_is_drawn_with_its_declared_outcomes(
    sample_app: object, services: Services, server: str, chromium: Any
) -> None:
    with services.engine.begin() as conn:
        for outcome, times in (("saved", 3), ("rejected", 2)):
            for _ in range(times):
                count_outcome(conn, "sample", outcome, T0)
    page = chromium.new_page()
    page.goto(f"{server}/monitoring?app=sample", wait_until="load")
    page.wait_for_selector("#chart svg.histogram g.minute")
    drawn = page.evaluate(
        """() => ({
          legend: [...document.querySelectorAll("#chart .legend text")].map((t) => t.textContent),
          title: document.querySelector("#chart .title.y").textContent,
          bars: [...document.querySelectorAll("#chart g.minute rect")].map((r) => [
            r.dataset.outcome, Number(r.dataset.count), getComputedStyle(r).fill]),
          options: [...document.querySelectorAll("select[name=app] option")].map((o) => o.text),
        })"""
    )
    assert drawn["legend"] == ["saved", "refused"]
    assert drawn["title"] == "notes per minute"
    assert drawn["bars"] == [["saved", 3, "rgb(27, 158, 119)"], ["rejected", 2, "rgb(217, 95, 2)"]]
    assert drawn["options"] == [
        "images",
        "forum",
        "graph",
        "sample",
    ]  # the apps that count outcomes
