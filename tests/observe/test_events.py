"""Live events on each deployment: published by any process of the install, read by every
other one and over `GET /api/engine/events/<channel>`, trimmed to the newest per channel."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS31Validator

from sleuth.config import load_settings
from sleuth.observe.events import START, SqliteEvents, live_events
from sleuth.services import Services
from sleuth.web.app import create_app


def _publish_elsewhere(environ: dict[str, str], count: int) -> None:
    """Another process of the install (a worker of `sleuth serve`) publishes."""
    services = Services(load_settings(environ=environ))
    try:
        events = live_events(services.queue)
        for n in range(count):
            events.publish("graph", {"n": n, "from": "child"})
    finally:
        services.close()


def _valid(client: Any, data: dict[str, Any]) -> None:
    doc = client.get("/openapi.json").get_json()
    OAS31Validator({"$ref": "#/components/schemas/EngineEvents", **doc}).validate(data)


def test_events_of_another_process_are_read_here_and_over_http(
    deployment: dict[str, str],
) -> None:
    services = Services(load_settings(environ=deployment))
    try:
        events = live_events(services.queue)
        first = events.publish("graph", {"n": -1, "from": "here"})
        child = multiprocessing.get_context("spawn").Process(
            target=_publish_elsewhere, args=(deployment, 3)
        )
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert [e.data for e in events.read("graph", first)] == [
            {"n": n, "from": "child"} for n in range(3)
        ]
        assert events.read("forum") == []

        client = create_app(services).test_client()
        page = client.get("/api/engine/events/graph?limit=2")
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        data = page.get_json()
        _valid(client, data)
        assert [e["data"]["n"] for e in data["events"]] == [-1, 0]
        rest = client.get(f"/api/engine/events/graph?after={data['last']}").get_json()
        assert [e["data"]["n"] for e in rest["events"]] == [1, 2]
        idle = client.get(f"/api/engine/events/graph?after={rest['last']}").get_json()
        assert idle["events"] == [] and idle["last"] == rest["last"]
        for bad in ("/api/engine/events/graph?after=x", "/api/engine/events/Bad-Name"):
            answer = client.get(bad)
            assert answer.status_code == 400 and answer.get_json()["error"]["code"]
        # past every id: none after it in SQLite; past what a Redis Stream id can be there
        beyond = client.get("/api/engine/events/graph?after=99999999999999999999-1")
        on_redis = "SLEUTH_QUEUE_URL" in deployment
        assert beyond.status_code == (400 if on_redis else 200)
    finally:
        services.close()


def test_a_sqlite_channel_keeps_its_newest(tmp_path: Path) -> None:
    events = SqliteEvents(tmp_path / "queue.db", max_events=3, trim_every=1)
    ids = [events.publish("c", {"n": n}) for n in range(5)]
    events.publish("other", {"n": 99})
    assert [e.data["n"] for e in events.read("c")] == [2, 3, 4]
    assert [e.data for e in events.read("c", ids[3])] == [{"n": 4}]
    assert events.read("c", ids[4]) == [] and events.read("nothing", START) == []
    assert [e.data["n"] for e in events.read("other")] == [99]
