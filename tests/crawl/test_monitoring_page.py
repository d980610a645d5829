"""The monitoring page in a real headless Chromium lists an app's failed items by reason and
follows new failures without a reload."""

from __future__ import annotations

from typing import Any

import pytest

from sleuth.apps.images.crawl import item_job
from sleuth.crawl import runs
from sleuth.crawl.runs import RunItem
from sleuth.services import Services
from tests.web.test_monitoring_browser import chromium, server

pytestmark = pytest.mark.browser
__all__ = ["chromium", "server"]  # fixtures of the monitoring page's own browser tests

READ_FAILURES = """() => [...document.querySelectorAll("#failures-by-reason tr")].map(
  (tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent))"""


def _fail(services: Services, run: str, keys: range, reason: str) -> None:
    items = [RunItem(run, str(k), f"http://127.0.0.1:9/{k}") for k in keys]
    runs.add_items(services.engine, services.queue, items, item_job)
    with services.engine.begin() as conn:
        for item in items:
            runs.fail(conn, "images", run, item.key, reason, "it failed", None)


def test_failures_by_reason_are_listed_and_follow_new_failures(
    services: Services, server: str, chromium: Any
) -> None:
    run = runs.run_id_for("browser test list")
    runs.open_run(services.engine, run, "images", "browser test list")
    page = chromium.new_page()
    page.goto(f"{server}/monitoring", wait_until="load")
    page.wait_for_selector("#chart svg.histogram")
    assert page.evaluate(READ_FAILURES) == [["none", ""]]

    _fail(services, run, range(1), "http_status")
    _fail(services, run, range(1, 3), "not_image")
    page.wait_for_function("() => document.querySelectorAll('#failures-by-reason tr').length === 2")
    assert page.evaluate(READ_FAILURES) == [["not_image", "2"], ["http_status", "1"]]
