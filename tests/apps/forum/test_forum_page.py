"""The forum dashboard `/forum`: its HTML, and in a real headless Chromium over two crawled and
analyzed emulated forums, every figure it draws equal to what the JSON API answers, redrawn
when the forum, year, board, ranking page or graph kind changes, with no request leaving
loopback."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from werkzeug.serving import make_server

from sleuth.apps.forum.analytics import analyze
from sleuth.config import Settings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.apps.forum.helpers import crawl_emulated
from tests.patience import PATIENCE
from tests.web.test_monitoring_browser import chromium  # noqa: F401  (the browser fixture)

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SCREENSHOT = Path("/tmp/forum.png")

# Everything the dashboard drew, as numbers and labels.
READ_PAGE = """() => {
  const form = document.getElementById("forum");
  const rows = (selector) => [...document.querySelectorAll(selector)];
  const error = document.getElementById("error");
  return {
    state: form.dataset.state,
    drawn: form.dataset.drawn,
    error: error.hidden ? null : error.textContent,
    page: Number(document.getElementById("rankings").dataset.page),
    rankings: rows("#rankings tbody tr").map((tr) => [
      Number(tr.dataset.uid), ...[...tr.cells].map((td) => td.textContent)]),
    week: rows("#week rect.cell").map((r) => [Number(r.dataset.weekday), Number(r.dataset.hour),
      Number(r.dataset.count), r.querySelector("title").textContent]),
    calendar: rows("#calendar rect.cell").map((r) => [r.dataset.day, Number(r.dataset.count),
      r.querySelector("title").textContent]),
    years: rows("#years g.year").map((g) => [g.dataset.year, Number(g.dataset.count),
      g.classList.contains("chosen")]),
    edges: rows("#graph path.edge").map((p) => [Number(p.dataset.from), Number(p.dataset.to),
      Number(p.dataset.count)]),
    nodes: rows("#graph g.node").map((g) => Number(g.dataset.uid)),
    domains: Object.fromEntries(["link", "image", "video"].map((kind) => [kind,
      rows(`#domains-${kind} tbody tr[data-domain]`).map((tr) => [tr.dataset.domain,
        Number(tr.cells[1].textContent)])])),
    posts: document.querySelector("#totals dd[data-total=posts]").textContent,
    threads: document.querySelector("#totals dd[data-total=threads]").textContent,
    boards: rows("select[name=bid] option").map((o) => o.value).filter(Boolean),
    yearsOffered: rows("select[name=year] option").map((o) => o.value).filter(Boolean),
    location: location.search,
  };
}"""


@pytest.fixture(scope="module")
def two_forums(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """Embedded services holding two crawled, analyzed emulated Discourse forums."""
    services = Services(Settings(data_dir=tmp_path_factory.mktemp("forumpage") / "data"))
    forums = Forums({"main": Forum(5, 1600), "other": Forum(7, 250)}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        crawl_emulated(services, url, "main")
        crawl_emulated(services, url, "other")
    analyze(services.engine)
    yield services
    services.close()


def test_the_page_lists_the_crawled_forums_and_loads_nothing_from_elsewhere(
    two_forums: Services,
) -> None:
    client = create_app(two_forums).test_client()
    response = client.get("/forum")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.text
    options = re.findall(r'<option value="([0-9]+)">([^<]*)</option>', html)
    assert [(v, label.split("/discourse/")[1]) for v, label in options] == [
        ("1", "main (discourse)"),
        ("2", "other (discourse)"),
    ]
    assert 'data-api-url="/api/forum/"' in html
    for section in ("rankings", "week", "calendar", "years", "graph", "domains-video"):
        assert f'id="{section}"' in html
    addresses = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "/forum/static/forum.js" in addresses
    assert all(a.startswith("/") for a in addresses), addresses  # no CDN, nothing external
    script = client.get("/forum/static/forum.js")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script.text)


def test_without_a_forum_the_page_says_how_to_crawl_one(services: Services) -> None:
    response = create_app(services).test_client().get("/forum")
    assert response.status_code == 200
    assert "No forum has been crawled yet" in response.text
    assert "forum.js" not in response.text


# -- in Chromium ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(two_forums: Services) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, create_app(two_forums), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(PATIENCE)


def _api(server: str, path: str, **params: Any) -> Any:
    query = {k: v for k, v in params.items() if v is not None}
    response = httpx.get(f"{server}/api/forum/{path}", params=query, timeout=PATIENCE)
    assert response.status_code == 200, response.text
    return response.json()


def _wait_drawn(page: Any, **scope: Any) -> dict[str, Any]:
    drawn = urlencode({k: v for k, v in scope.items() if v is not None})
    page.wait_for_function(
        "(drawn) => { const f = document.getElementById('forum');"
        " return f.dataset.state === 'drawn' && f.dataset.drawn === drawn; }",
        arg=drawn,
    )
    result: dict[str, Any] = page.evaluate(READ_PAGE)
    return result


def _ranking_rows(answer: dict[str, Any], first: int) -> list[list[Any]]:
    return [
        [
            r["user"]["uid"],
            str(first + i + 1),
            r["user"]["name"],
            str(r["post_count"]),
            str(r["edit_count"]),
            r["avg_post_length"],
            str(r["threads_created"]),
        ]
        for i, r in enumerate(answer["rows"])
    ]


def _check_rankings(drawn: dict[str, Any], answer: dict[str, Any], first: int) -> None:
    expected = _ranking_rows(answer, first)
    assert len(drawn["rankings"]) == len(expected) > 0
    for shown, wanted in zip(drawn["rankings"], expected, strict=True):
        assert shown[:5] + shown[6:] == wanted[:5] + wanted[6:]
        assert float(shown[5]) == pytest.approx(wanted[5], abs=0.051)  # shown to one decimal


def _check_everything(
    drawn: dict[str, Any], server: str, site: int, year: int | None, bid: int | None
) -> None:
    """Every figure drawn equals the API's answer for this scope."""
    scope = {"site": site, "year": year, "bid": bid}
    assert drawn["error"] is None
    assert drawn["location"] == "?" + urlencode({k: v for k, v in scope.items() if v})
    _check_rankings(drawn, _api(server, "poster-stats", **scope, limit=25), 0)

    hours: Counter[tuple[int, int]] = Counter()
    for slot, numbers in _api(server, "hourly-stats", **scope)["rows"].items():
        _, weekday, hour = (int(part) for part in slot.split(":"))
        hours[weekday, hour] += numbers["post_count"]
    assert len(drawn["week"]) == 7 * 24
    for weekday, hour, count, title in drawn["week"]:
        assert count == hours[weekday, hour]
        noun = "post" if count == 1 else "posts"
        assert title == f"{WEEKDAYS[weekday - 1]} {hour:02d}:00 UTC: {count:,} {noun}"

    daily = {d: n["post_count"] for d, n in _api(server, "daily-stats", **scope)["rows"].items()}
    cells = {day: count for day, count, _ in drawn["calendar"]}
    assert {d: n for d, n in cells.items() if n} == {d: n for d, n in daily.items() if n}
    assert {day[:4] for day in cells} == {day[:4] for day in daily}
    day, count, title = next(c for c in drawn["calendar"] if c[1])
    assert title == f"{day}: {count:,} post{'' if count == 1 else 's'}"
    posts = sum(daily.values())
    assert drawn["posts"] == f"{posts:,}"
    assert sum(c for _, _, c, _ in drawn["week"]) == posts
    assert drawn["threads"] == f"{_api(server, 'thread-stats', **scope)['threads']:,}"

    years = _api(server, "year-over-year-stats", site=site, bid=bid)["rows"]
    assert drawn["years"] == [[y, n["post_count"], y == str(year)] for y, n in years.items()]
    assert drawn["yearsOffered"] == list(years) + (
        [] if year is None or str(year) in years else [str(year)]
    )
    boards = _api(server, "boards", site=site)
    assert drawn["boards"] == list(boards)

    graph = _api(server, "social-graph", **scope, limit=60)["rows"]
    assert drawn["edges"] == [[r["from"]["uid"], r["to"]["uid"], r["count"]] for r in graph]
    assert sorted(drawn["nodes"]) == sorted({r[k]["uid"] for r in graph for k in ("from", "to")})
    for kind in ("link", "image", "video"):
        rows = _api(server, "domains", **scope, type=kind, limit=12)["rows"]
        assert drawn["domains"][kind] == [[r["domain"], r["count"]] for r in rows], kind


@pytest.mark.browser
def test_the_dashboard_draws_the_apis_numbers_and_redraws_on_each_choice(
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
    page.goto(f"{server}/forum", wait_until="load")
    drawn = _wait_drawn(page, site=1)
    _check_everything(drawn, server, 1, None, None)
    assert drawn["edges"] and drawn["domains"]["link"] and drawn["domains"]["image"]
    page.evaluate("() => { window.notReloaded = true; }")

    # Keyset pages of the rankings (40 users: two pages of 25), forward and back.
    first = _api(server, "poster-stats", site=1, limit=25)
    page.click("#rankings button[name=next]")
    drawn = _wait_drawn(page, site=1)
    assert drawn["page"] == 2
    second = _api(server, "poster-stats", site=1, limit=25, **first["next"])
    _check_rankings(drawn, second, 25)
    page.click("#rankings button[name=previous]")
    drawn = _wait_drawn(page, site=1)
    assert drawn["page"] == 1
    _check_rankings(drawn, first, 0)
    page.select_option("#rankings select[name=order_by_column]", "threads_created")
    drawn = _wait_drawn(page, site=1)
    answer = _api(server, "poster-stats", site=1, limit=25, order_by_column="threads_created")
    _check_rankings(drawn, answer, 0)
    page.select_option("#rankings select[name=order_by_column]", "post_count")
    _check_rankings(_wait_drawn(page, site=1), first, 0)

    # Another year, then a board in it: every figure redrawn for that scope.
    year = int(drawn["yearsOffered"][0])
    page.select_option("select[name=year]", str(year))
    drawn = _wait_drawn(page, site=1, year=year)
    _check_everything(drawn, server, 1, year, None)
    assert [y for y, _, chosen in drawn["years"] if chosen] == [str(year)]
    boards = _api(server, "boards", site=1)
    bid = int(max(boards, key=lambda b: boards[b]["post_count"]))
    page.select_option("select[name=bid]", str(bid))
    drawn = _wait_drawn(page, site=1, year=year, bid=bid)
    _check_everything(drawn, server, 1, year, bid)

    # Only quotes in the graph.
    page.select_option("select[name=kind]", "quote")
    drawn = _wait_drawn(page, site=1, year=year, bid=bid)
    quotes = _api(server, "social-graph", site=1, year=year, bid=bid, kind="quote", limit=60)
    assert drawn["edges"] == [
        [r["from"]["uid"], r["to"]["uid"], r["count"]] for r in quotes["rows"]
    ]
    page.select_option("select[name=kind]", "")

    # The other forum: its own boards and years, the year and board choices cleared.
    page.select_option("select[name=site]", "2")
    drawn = _wait_drawn(page, site=2)
    _check_everything(drawn, server, 2, None, None)
    assert page.evaluate("() => window.notReloaded === true")

    # A linked view opens as it was drawn.
    page.goto(f"{server}/forum?site=1&year={year}&bid={bid}", wait_until="load")
    _check_everything(_wait_drawn(page, site=1, year=year, bid=bid), server, 1, year, bid)

    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert not problems, problems


@pytest.mark.browser
def test_an_api_error_is_shown(server: str, chromium: Any) -> None:  # noqa: F811
    page = chromium.new_page()
    page.goto(f"{server}/forum?site=99", wait_until="load")
    page.wait_for_function("() => document.getElementById('forum').dataset.state === 'error'")
    message = page.evaluate("() => document.getElementById('error').textContent")
    assert message.startswith("Error: No crawled forum 99")
