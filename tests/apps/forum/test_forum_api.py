"""potstats2's JSON API over a crawled emulated forum: shapes, values, keyset pages, errors,
the ETag cache and its invalidation, embedded and on Redis + PostgreSQL. The tests that only
read share one crawl per deployment."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

from sleuth.apps.forum import stats
from sleuth.apps.forum.analytics import analyze
from sleuth.config import load_settings
from sleuth.emulator import EmulatorServer, create_imagehost_app
from sleuth.emulator.forums import Forum, Forums
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.apps.forum.helpers import crawl_emulated
from tests.conftest import DEPLOYMENTS, fresh_install

PREFIXES = ["/api/forum", "/potstats2/api"]


@pytest.fixture
def forum() -> Forum:
    """The forum every test reads: deterministic, so each instance has the same truth."""
    return Forum(5, 700)


@contextmanager
def crawl_of(services: Services, forum: Forum) -> Iterator[tuple[Services, str]]:
    """`forum` served, crawled into `services` and analyzed; the services and its URL."""
    forums = Forums({"main": forum}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as url:
        crawl_emulated(services, url)
        analyze(services.engine)
        yield services, url


@pytest.fixture(scope="module", params=DEPLOYMENTS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FlaskClient]:
    """A client of one crawl per deployment, shared by the tests that only read."""
    with fresh_install(request.param, tmp_path_factory.mktemp("forum")) as env:
        services = Services(load_settings(environ=env))
        try:
            with crawl_of(services, Forum(5, 700)):
                yield create_app(services).test_client()
        finally:
            services.close()


@pytest.fixture
def crawled(deployed_services: Services, forum: Forum) -> Iterator[tuple[Services, str]]:
    """A crawl of its own, for a test that changes the forum or the cache."""
    with crawl_of(deployed_services, forum) as crawl:
        yield crawl


@pytest.fixture
def own_client(crawled: tuple[Services, str]) -> FlaskClient:
    return create_app(crawled[0]).test_client()


def _valid(client: FlaskClient, path: str, body: Any, status: int = 200) -> None:
    """The answer is what /openapi.json says this path answers."""
    doc = client.get("/openapi.json").get_json()
    media = doc["paths"][path]["get"]["responses"][str(status)]["content"]["application/json"]
    OAS31Validator({**media["schema"], "components": doc["components"]}).validate(body)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_every_endpoint_answers_potstats2s_shapes(client: FlaskClient, prefix: str) -> None:
    index = client.get(f"{prefix}/").get_json()
    assert f"{prefix}/poster-stats" in index["apis"]
    for url in index["apis"]:
        query = "?uid=1" if url.endswith("poster-development") else ""
        response = client.get(url + query)
        assert response.status_code == 200, (url, response.get_json())
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        _valid(client, url, response.get_json())


def test_values_equal_the_ground_truth(client: FlaskClient, forum: Forum) -> None:
    truth = forum.ground_truth()
    boards = client.get("/api/forum/boards").get_json()
    assert {int(b): v["post_count"] for b, v in boards.items() if v["post_count"]} == dict(
        truth.posts_by_board
    )
    assert {int(b): v["thread_count"] for b, v in boards.items() if v["thread_count"]} == dict(
        truth.topics_by_board
    )
    weekdays = client.get("/api/forum/weekday-stats").get_json()["rows"]
    assert {int(d): v["post_count"] for d, v in weekdays.items()} == dict(truth.posts_by_weekday)
    year = max(truth.posts_by_year)
    rows = client.get(f"/api/forum/year-over-year-stats?year={year}").get_json()["rows"]
    assert rows == {str(year): rows[str(year)]}
    assert rows[str(year)]["post_count"] == truth.posts_by_year[year]
    board = max(truth.posts_by_board)
    posters = client.get(f"/api/forum/poster-stats?bid={board}&limit=99999").get_json()
    assert sum(r["post_count"] for r in posters["rows"]) == truth.posts_by_board[board]


def test_poster_stats_keyset_pages_cover_every_user_once(client: FlaskClient, forum: Forum) -> None:
    truth = forum.ground_truth()
    for column in ("post_count", "edit_count", "avg_post_length", "threads_created"):
        for order in ("desc", "asc"):
            seen: list[dict[str, Any]] = []
            query = f"order_by_column={column}&order_by={order}&limit=7"
            page = client.get(f"/api/forum/poster-stats?{query}").get_json()
            while True:
                seen += page["rows"]
                if page["next"] is None:
                    break
                after = page["next"]
                page = client.get(
                    f"/api/forum/poster-stats?{query}&following_ob={after['following_ob']}"
                    f"&following_uid={after['following_uid']}"
                ).get_json()
            uids = [r["user"]["uid"] for r in seen]
            assert sorted(uids) == sorted(truth.posts_by_user), (column, order)
            keys = [(r[column], r["user"]["uid"]) for r in seen]
            assert keys == sorted(keys, reverse=order == "desc"), (column, order)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/poster-stats?order_by=up", "Invalid order_by: up"),
        ("/poster-stats?order_by_column=karma", "Invalid order_by_column: karma"),
        ("/poster-stats?limit=0", "Malformed request argument limit"),
        ("/poster-stats?following_ob=x&following_uid=3", "Malformed request argument following_ob"),
        ("/weekday-stats?year=twenty", "Malformed request argument year"),
        ("/domains?type=gif", "Invalid link type 'gif' (choose from ['link', 'image', 'video'])"),
        ("/poster-development", "Missing request argument uid"),
        ("/social-graph?kind=like", "Invalid kind 'like'"),
    ],
)
def test_bad_arguments_get_potstats2s_400(client: FlaskClient, path: str, error: str) -> None:
    for prefix in PREFIXES:
        response = client.get(prefix + path)
        assert response.status_code == 400
        assert response.get_json()["error"].startswith(error)


def test_poster_development_as_json_and_csv(client: FlaskClient, forum: Forum) -> None:
    truth = forum.ground_truth()
    uid = max(truth.posts_by_user, key=truth.posts_by_user.__getitem__)
    data = client.get(f"/api/forum/poster-development?uid={uid}").get_json()
    assert data["user"] == {"name": truth.usernames[uid], "uid": uid}
    assert sum(v["post_count"] for v in data["rows"].values()) == truth.posts_by_user[uid]
    response = client.get(f"/api/forum/poster-development?uid={uid}&format=csv")
    assert response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["month"] for r in table] == list(data["rows"])
    assert sum(int(r["post_count"]) for r in table) == truth.posts_by_user[uid]


def test_social_graph_intensity_and_kinds(client: FlaskClient, forum: Forum) -> None:
    truth = forum.ground_truth()
    rows = client.get("/api/forum/social-graph?kind=quote&limit=99999").get_json()["rows"]
    assert {(r["from"]["uid"], r["to"]["uid"]): r["count"] for r in rows} == dict(truth.quote_pairs)
    assert rows[0]["intensity"] == 1.0
    assert all(0 < r["intensity"] <= 1 for r in rows)
    both = client.get("/api/forum/social-graph?limit=3").get_json()["rows"]
    assert len(both) == 3 and both[0]["count"] >= both[-1]["count"]


def test_answers_are_cached_with_etags_and_go_stale_only_where_changed(
    crawled: tuple[Services, str], own_client: FlaskClient, forum: Forum
) -> None:
    client = own_client
    services, url = crawled
    first_year = min(forum.ground_truth().posts_by_year)
    old = f"/api/forum/weekday-stats?year={first_year}"
    every = "/api/forum/weekday-stats"
    years = sorted(forum.ground_truth().posts_by_year)
    threads = [f"/api/forum/thread-stats?year={y}" for y in years]
    tags = {}
    for path in (old, every, *threads):
        response = client.get(path)
        assert response.headers["X-Cache"] == "miss"
        tags[path] = response.headers["ETag"]
        again = client.get(path, headers={"If-None-Match": tags[path]})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["X-Cache"] == "hit" and again.headers["ETag"] == tags[path]
    forum.advance(forum.topic_gap * 4)  # new posts, in the latest year only
    crawl_emulated(services, url)
    assert client.get(every).headers["X-Cache"] == "hit"  # not analyzed yet: still true
    report = analyze(services.engine)
    assert first_year not in report.years[1]
    assert client.get(old).headers["X-Cache"] == "hit"  # its year did not change
    # a reply to an older topic changes the thread times of the year it started in, only those
    changed = report.thread_years[1]
    assert set(years) & changed and set(years) - changed
    with services.engine.connect() as conn:
        for year, path in zip(years, threads, strict=True):
            answer = client.get(path)
            assert answer.get_json() == stats.thread_stats(conn, stats.Scope(1, year))
            assert answer.headers["X-Cache"] == ("miss" if year in changed else "hit")
    fresh = client.get(every, headers={"If-None-Match": tags[every]})
    assert fresh.status_code == 200 and fresh.headers["X-Cache"] == "miss"
    assert fresh.headers["ETag"] != tags[every]
    truth = forum.ground_truth()
    assert {int(d): v["post_count"] for d, v in fresh.get_json()["rows"].items()} == dict(
        truth.posts_by_weekday
    )


def test_invalidate_cache_makes_every_answer_stale(
    crawled: tuple[Services, str], own_client: FlaskClient
) -> None:
    client = own_client
    from click.testing import CliRunner

    from sleuth.cli.main import cli

    assert client.get("/api/forum/domains").headers["X-Cache"] == "miss"
    assert client.get("/api/forum/domains").headers["X-Cache"] == "hit"
    services = crawled[0]
    env = {"SLEUTH_DATA_DIR": str(services.settings.data_dir)}
    env |= {"SLEUTH_DATABASE_URL": services.settings.effective_database_url}
    env |= {"SLEUTH_QUEUE_URL": services.settings.effective_queue_url}
    result = CliRunner().invoke(cli, ["forum", "invalidate-cache"], env=env)
    assert result.exit_code == 0, result.output
    assert "stale" in result.output
    assert client.get("/api/forum/domains").headers["X-Cache"] == "miss"


def test_a_keyset_bound_alone(client: FlaskClient) -> None:
    """`following_uid` alone starts after that user's row; `following_ob` alone after a value."""
    rows = client.get("/api/forum/poster-stats?limit=99999").get_json()["rows"]
    third = rows[2]
    after_user = client.get(
        f"/api/forum/poster-stats?following_uid={third['user']['uid']}&limit=5"
    ).get_json()["rows"]
    assert after_user == rows[3:8]
    value = third["post_count"]
    after_value = client.get(f"/api/forum/poster-stats?following_ob={value}").get_json()["rows"]
    assert after_value == [r for r in rows if r["post_count"] < value]


def test_an_unknown_forum_is_a_404(client: FlaskClient) -> None:
    response = client.get("/api/forum/weekday-stats?site=99")
    assert response.status_code == 404
    assert response.get_json()["error"].startswith("No crawled forum 99")
