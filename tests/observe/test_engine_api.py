"""`/api/engine/*` on a real worker: answers match their published schemas and the data."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

from sleuth.services import Services
from sleuth.web.app import create_app
from tests.observe.helpers import FAIL, GATES, SLOW, TIMED, running_worker
from tests.patience import wait_for

PATHS = {
    "/api/engine/queues": "EngineQueues",
    "/api/engine/workers": "EngineWorkers",
    "/api/engine/metrics": "EngineMetrics",
    "/api/engine/dead-letters": "EngineDeadLetters",
}


@pytest.fixture
def client(services: Services) -> FlaskClient:
    return create_app(services).test_client()


def _get(client: FlaskClient, path: str) -> dict[str, Any]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    doc = client.get("/openapi.json").get_json()
    name = PATHS[path.split("?")[0]]
    OAS31Validator({"$ref": f"#/components/schemas/{name}", **doc}).validate(data)
    return data


def test_engine_routes_are_documented(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    assert set(PATHS) <= set(doc["paths"])
    params = {p["name"] for p in doc["paths"]["/api/engine/dead-letters"]["get"]["parameters"]}
    assert params == {"queue", "limit"}


def test_engine_api_on_a_running_worker(deployed_services: Services) -> None:
    """Embedded (SQLite) and distributed (Redis + PostgreSQL) alike."""
    services = deployed_services
    client = create_app(services).test_client()
    engine, queue = services.engine, services.queue
    queue.enqueue_many(TIMED, [({"seconds": 0.01}, None) for _ in range(5)])
    queue.enqueue(FAIL, {"key": "api", "always": True})
    GATES["api"] = gate = threading.Event()
    slow = queue.enqueue(SLOW, {"gate": "api"}, priority=3)
    with running_worker(engine, queue, "api:1"):
        wait_for(lambda: queue.dead_letters(FAIL) and queue.pending([TIMED]) == 0)

        def holding() -> dict[str, Any] | None:
            workers = _get(client, "/api/engine/workers")["workers"]
            return workers[0] if workers and workers[0]["current"] else None

        worker = wait_for(holding)
        assert (worker["consumer"], worker["state"]) == ("api:1", "live")
        assert [(j["job_id"], j["queue"]) for j in worker["current"]] == [(slow, SLOW)]

        queues = {
            (q["queue"], q["priority"]): q for q in _get(client, "/api/engine/queues")["queues"]
        }
        assert queues[(SLOW, 3)]["in_flight_by_consumer"] == {"api:1": 1}
        assert queues[(FAIL, 0)]["dead"] == 1

        def timed() -> dict[str, Any] | None:
            stages = _get(client, "/api/engine/metrics?live=true")["stages"]
            return next((s for s in stages if s["queue"] == TIMED and s["count"] == 5), None)

        stage = wait_for(timed)  # flushed with the next heartbeat
        assert stage["errors"] == 0 and stage["workers"] == 1
        assert stage["p50"] <= stage["p90"] <= stage["p99"] <= stage["max"]
        gate.set()

    (dead,) = _get(client, f"/api/engine/dead-letters?queue={FAIL}&limit=5")["dead_letters"]
    assert dead["summary"] == "failed 1 times; last error: ValueError: bad input api"
    assert "second line of the reason" in dead["reason"]
    assert dead["payload"] == {"key": "api", "always": True}
    assert _get(client, "/api/engine/workers")["workers"] == []  # stopped: hidden
    (stopped,) = _get(client, "/api/engine/workers?all=1")["workers"]
    assert stopped["state"] == "stopped" and stopped["current"] == []
    assert _get(client, "/api/engine/metrics?live=true")["stages"] == []
    assert _get(client, f"/api/engine/metrics?queue={FAIL}")["stages"][0]["errors"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/engine/workers?all=maybe",
        "/api/engine/metrics?live=2",
        "/api/engine/dead-letters?limit=0",
        "/api/engine/dead-letters?limit=x",
    ],
)
def test_bad_parameters_are_400_with_a_reason(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter"
    assert path.split("?")[1].split("=")[0] in error["message"]
