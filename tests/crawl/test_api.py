"""`GET /api/<app>/errors` (keyset pages, filters, 400/404 with reasons, its OpenAPI entry)
and the failures by reason on `/monitoring`, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from sleuth.config import Settings
from sleuth.crawl import runs
from sleuth.crawl.api import errors_blueprint
from sleuth.crawl.runs import RunItem
from sleuth.services import Services
from sleuth.web.app import create_app
from tests.crawl.conftest import APP, drain, toy_job

RUN = runs.run_id_for("toy api run")
OTHER = runs.run_id_for("toy api other")


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[FlaskClient]:
    """The web app with the errors API, 25 failures in RUN and 2 in OTHER."""
    services = Services(Settings(data_dir=tmp_path / "data", database_url=database_url))
    engine, queue = services.engine, services.queue
    for run, n in ((RUN, 25), (OTHER, 2)):
        runs.open_run(engine, run, APP, run[:8])
        keys = [RunItem(run, f"k{i}", f"https://toy.example/{run[:4]}/{i}") for i in range(n)]
        runs.add_items(engine, queue, keys, toy_job)
        for i in range(n):
            with engine.begin() as conn:
                reason = "timeout" if i % 5 else "not_image"
                runs.fail(conn, APP, run, f"k{i}", reason, f"{reason} at {i}", None)
    drain(queue)
    app = create_app(services, blueprints=[errors_blueprint(APP)])
    yield app.test_client()
    services.close()


def test_pages_follow_next_to_the_end(client: FlaskClient) -> None:
    seen: list[dict[str, object]] = []
    url = f"/api/{APP}/errors?limit=10"
    pages = 0
    while url:
        body = client.get(url).get_json()
        pages += 1
        seen += body["errors"]
        url = body["next"] and f"/api/{APP}/errors?limit=10&cursor={body['next']}"
    assert pages == 3
    assert len(seen) == 27
    ids = [row["id"] for row in seen]
    assert ids == sorted(ids) and len(set(ids)) == 27
    assert [row["item"] for row in seen[:25]] == [f"k{i}" for i in range(25)]
    assert {row["crawl"] for row in seen[25:]} == {OTHER}
    first = seen[0]
    assert first["target"] == f"https://toy.example/{RUN[:4]}/0"
    assert (first["reason"], first["message"], first["attempts"]) == (
        "not_image",
        "not_image at 0",
        1,
    )
    assert first["http_status"] is None and first["last_failed"].endswith("Z")


def test_filters_by_crawl_and_reason(client: FlaskClient) -> None:
    body = client.get(f"/api/{APP}/errors?crawl={RUN}&reason=not_image").get_json()
    assert [row["item"] for row in body["errors"]] == ["k0", "k5", "k10", "k15", "k20"]
    assert body["next"] is None
    body = client.get(f"/api/{APP}/errors?crawl={OTHER}").get_json()
    assert [row["item"] for row in body["errors"]] == ["k0", "k1"]
    assert client.get(f"/api/{APP}/errors?reason=none").get_json() == {"errors": [], "next": None}


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("limit=0", 400, "limit must be between 1 and 1000"),
        ("limit=x", 400, "limit must be an integer"),
        ("cursor=abc", 400, "cursor must be a `next` value"),
        ("cursor=-3", 400, "cursor must be a `next` value"),
        ("crawl=" + "a" * 41, 400, "crawl is at most 40 characters"),
        ("reason=" + "r" * 65, 400, "reason is at most 64 characters"),
        ("reason=a%00b", 400, "reason must not contain NUL characters"),
        ("crawl=%00", 400, "crawl must not contain NUL characters"),
        ("crawl=" + "f" * 40, 404, f"no {APP} crawl with id"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(
    client: FlaskClient, query: str, status: int, words: str
) -> None:
    response = client.get(f"/api/{APP}/errors?{query}")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert words in response.get_json()["error"]["message"]


def test_declared_in_openapi(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    op = doc["paths"][f"/api/{APP}/errors"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["crawl", "reason", "limit", "cursor"]
    assert {"200", "400", "404"} <= set(op["responses"])
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/CrawlFailurePage"
    failure = doc["components"]["schemas"]["CrawlFailure"]
    assert set(failure["required"]) == set(failure["properties"])


def test_monitoring_shows_failures_by_reason(client: FlaskClient) -> None:
    data = client.get(f"/monitoring?app={APP}&format=json").get_json()
    assert data["failures_by_reason"] == {"timeout": 21, "not_image": 6}
    page = client.get(f"/monitoring?app={APP}", headers={"Accept": "text/html"}).get_data(
        as_text=True
    )
    assert "Failed items by reason" in page
    assert "<td>timeout</td><td>21</td>" in page
