"""`/monitoring`: JSON equal to the counters written, bounded, negotiated; the HTML page."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient
from openapi_schema_validator import OAS31Validator

from sleuth.observe.counters import count_outcome
from sleuth.services import Services
from sleuth.web.monitoring import MAX_MINUTES
from tests.web.conftest import BROWSER_ACCEPT, Library

T0 = 1_700_000_000 - 1_700_000_000 % 60  # 2023-11-14T22:13:00Z, a minute boundary


def _count(services: Services, app: str, outcome: str, at: float, times: int = 1) -> None:
    with services.engine.begin() as conn:
        for _ in range(times):
            count_outcome(conn, app, outcome, at)


def _json(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/monitoring?format=json{query}")
    assert response.status_code == 200, response.text
    data = response.get_json()
    doc = client.get("/openapi.json").get_json()
    # Every answer matches the schema the OpenAPI document publishes for it.
    OAS31Validator({"$ref": "#/components/schemas/Monitoring", **doc}).validate(data)
    return data


def test_minutes_and_totals_equal_the_counts(
    sample_app: object, client: FlaskClient, services: Services
) -> None:
    _count(services, "images", "success", T0 + 5, 3)
    _count(services, "images", "error", T0 + 59, 2)
    _count(services, "images", "duplicate", T0 + 61)
    _count(services, "images", "success", T0 + 3 * 60 + 1, 4)
    _count(services, "sample", "saved", T0, 9)  # another app's counts stay out
    data = _json(client)
    assert data["app"] == "images"
    assert data["minutes"] == [
        {"minute": "2023-11-14T22:13:00Z", "epoch": T0, "success": 3, "error": 2, "duplicate": 0},
        {"minute": "2023-11-14T22:14:00Z", "epoch": T0 + 60, "success": 0, "error": 0,
         "duplicate": 1},
        {"minute": "2023-11-14T22:15:00Z", "epoch": T0 + 120, "success": 0, "error": 0,
         "duplicate": 0},
        {"minute": "2023-11-14T22:16:00Z", "epoch": T0 + 180, "success": 4, "error": 0,
         "duplicate": 0},
    ]  # fmt: skip
    assert data["totals"] == {"success": 7, "error": 2, "duplicate": 1, "total": 10}
    assert _json(client, "&app=sample")["totals"] == {"saved": 9, "rejected": 0, "total": 9}


def test_counts_from_stored_images(client: FlaskClient, library: Library) -> None:
    first = library.add()
    library.add(same_as=first, url="http://127.0.0.1:9/again.png")
    library.add()
    totals = _json(client)["totals"]
    assert totals == {"success": 2, "error": 0, "duplicate": 1, "total": 3}


def test_empty(client: FlaskClient) -> None:
    data = _json(client)
    assert data["minutes"] == [] and data["totals"]["total"] == 0


def test_window_is_bounded_to_the_newest_minutes(client: FlaskClient, services: Services) -> None:
    last = T0 + 2 * MAX_MINUTES * 60
    first_inside = last - (MAX_MINUTES - 1) * 60
    _count(services, "images", "error", T0)
    _count(services, "images", "error", first_inside - 60)  # one minute too old
    _count(services, "images", "duplicate", first_inside)
    _count(services, "images", "success", last)
    data = _json(client)
    assert len(data["minutes"]) == MAX_MINUTES
    assert data["minutes"][0]["epoch"] == first_inside
    assert data["minutes"][-1]["epoch"] == last
    assert data["totals"] == {"success": 1, "error": 0, "duplicate": 1, "total": 2}
    # The window starts at its first event, so a short crawl is not drawn as a thin line.
    assert [m["epoch"] for m in _json(client, "&minutes=3")["minutes"]] == [last]
    _count(services, "images", "error", last - 120)
    assert [m["error"] for m in _json(client, "&minutes=3")["minutes"]] == [1, 0, 0]


def test_since(client: FlaskClient, services: Services) -> None:
    for i in range(5):
        _count(services, "images", "success", T0 + i * 60, i + 1)
    assert [m["success"] for m in _json(client, f"&since={T0 + 180}")["minutes"]] == [4, 5]
    iso = "2023-11-14T22:16:30Z"  # inside the minute T0+180: that minute is included
    assert [m["success"] for m in _json(client, f"&since={iso}")["minutes"]] == [4, 5]


def test_bad_parameters(client: FlaskClient) -> None:
    for query, word in [
        ("?since=yesterday", "since"),
        ("?minutes=0", "minutes"),
        (f"?minutes={MAX_MINUTES + 1}", "minutes"),
        ("?minutes=ten", "minutes"),
        ("?app=Robert%27);DROP", "app"),
        ("?format=xml", "format"),
    ]:
        response = client.get(f"/monitoring{query}")
        assert response.status_code == 400, query
        assert response.get_json()["error"]["code"] == "invalid_parameter"
        assert word in response.get_json()["error"]["message"]


def test_content_negotiation(client: FlaskClient, services: Services) -> None:
    _count(services, "images", "success", T0, 2)
    for accept in ("application/json", "*/*", None):
        headers = {"Accept": accept} if accept else {}
        response = client.get("/monitoring", headers=headers)
        assert response.mimetype == "application/json", accept
        assert response.headers["Cache-Control"] == "no-store"
        assert "Accept" in response.headers["Vary"]
    page = client.get("/monitoring", headers={"Accept": BROWSER_ACCEPT})
    assert page.mimetype == "text/html" and "Accept" in page.headers["Vary"]
    assert client.get("/monitoring?format=json", headers={"Accept": BROWSER_ACCEPT}).is_json
    assert client.get("/monitoring?format=html").mimetype == "text/html"


def test_page_embeds_the_data_and_the_chart_script(
    sample_app: object, client: FlaskClient, services: Services
) -> None:
    _count(services, "images", "error", T0, 5)
    _count(services, "sample", "saved", T0)
    page = client.get("/monitoring?minutes=60", headers={"Accept": BROWSER_ACCEPT}).text
    found = re.search(r'<script type="application/json" id="initial-data">(.*?)</script>', page)
    assert found is not None
    initial = json.loads(found.group(1))
    assert initial["minutes"] == _json(client, "&minutes=60")["minutes"]
    assert 'src="/static/monitoring.js"' in page
    assert 'data-url="/monitoring?minutes=60&amp;format=json"' in page
    assert '<dd data-outcome="error">5</dd>' in page
    assert "<option selected>images</option>" in page and "<option>sample</option>" in page


def test_the_default_is_the_first_installed_app_and_others_are_refused(
    sample_app: object, client: FlaskClient
) -> None:
    assert _json(client)["app"] == "images"
    response = client.get("/monitoring?format=json&app=nosuchapp")
    assert response.status_code == 400
    assert (
        "one of ['images', 'forum', 'graph', 'sample'], not 'nosuchapp'"
        in response.get_json()["error"]["message"]
    )


def test_an_app_is_shown_with_its_declared_outcomes(
    sample_app: object, client: FlaskClient, services: Services
) -> None:
    _count(services, "sample", "rejected", T0, 2)
    data = _json(client, "&app=sample")
    assert data["minutes"] == [
        {"minute": "2023-11-14T22:13:00Z", "epoch": T0, "saved": 0, "rejected": 2}
    ]
    page = client.get("/monitoring?app=sample", headers={"Accept": BROWSER_ACCEPT}).text
    found = re.search(r'<script type="application/json" id="outcomes">(.*?)</script>', page)
    assert found is not None
    assert json.loads(found.group(1)) == [
        {"name": "saved", "label": "saved", "colour": "#1b9e77"},
        {"name": "rejected", "label": "refused", "colour": "#d95f02"},
    ]
    assert "<dt>refused</dt>" in page and '<dd data-outcome="rejected">2</dd>' in page


def test_page_escapes_what_it_embeds(client: FlaskClient, services: Services) -> None:
    page = client.get("/monitoring?app=x&since=</script>", headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 400 and "</script>" not in page.text
