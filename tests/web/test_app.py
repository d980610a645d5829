"""The app factory: health, the OpenAPI document, JSON errors, the size limit, static files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Blueprint, Flask, request
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from sleuth import __version__
from sleuth.config import Settings
from sleuth.services import Services
from sleuth.web.app import create_app, installed_blueprints
from sleuth.web.errors import html_page
from sleuth.web.openapi import json_response, operation
from tests.web.conftest import BROWSER_ACCEPT

ROUTES = {
    "/",
    "/healthz",
    "/openapi.json",
    "/monitoring",
    "/image/{md5}",
    "/image/{md5}/thumb",
    "/api/images",
    "/api/images/{md5}",
    "/api/images/search",
    "/api/images/errors",
    "/api/forum/errors",
    *(
        f"{prefix}{path}"
        for prefix in ("/api/forum", "/potstats2/api")
        for path in (
            "/",
            "/boards",
            "/poster-stats",
            "/weekday-stats",
            "/hourly-stats",
            "/year-over-year-stats",
            "/daily-stats",
            "/poster-development",
            "/social-graph",
            "/user-domains",
            "/domains",
            "/thread-stats",
        )
    ),
    "/api/graph/errors",
    "/lookup/id/{ident}",
    "/lookup/handle/{handle}",
    "/graph",
    "/api/graph/monitor",
    "/api/graph/posts",
    "/search",
    "/api/engine/queues",
    "/api/engine/workers",
    "/api/engine/metrics",
    "/api/engine/dead-letters",
    "/api/engine/events/{channel}",
    "/metrics",
    "/aotf/query",
    "/finder",
    "/forum",
    "/api/finder/query",
    "/api/finder/accounts",
    "/api/finder/accounts/{network}/{account_id}/posts",
    "/aotf/search",
    "/aotf/stats",
    "/aotf/config",
}


def _error(response: object, status: int, code: str) -> dict:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.mimetype == "application/json"  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def _extra_blueprint() -> Blueprint:
    """Routes a later app could add: one that fails, one that reads a body."""
    bp = Blueprint("extra", __name__)

    @bp.get("/boom")
    @operation("fails", responses={200: json_response("never", {"type": "object"})})
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    @bp.get("/boom-page")
    @operation("fails", responses={200: json_response("never", {"type": "object"})})
    @html_page
    def boom_page() -> str:
        raise RuntimeError("secret internal detail")

    @bp.post("/echo")
    @operation("echoes", responses={200: json_response("the length", {"type": "object"})})
    def echo() -> dict:
        return {"length": len(request.get_data())}

    return bp


@pytest.fixture
def extra_client(services: Services) -> FlaskClient:
    app = create_app(services, [*installed_blueprints(), _extra_blueprint()], max_request_bytes=100)
    return app.test_client()


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "version": __version__,
        "database": "ok",
    }


def test_healthz_reports_an_unreachable_database(tmp_path: Path) -> None:
    down = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # nothing listens on port 1
    services = Services(Settings(data_dir=tmp_path, database_url=down))
    _error(create_app(services).test_client().get("/healthz"), 503, "database_unavailable")


def test_openapi_is_a_valid_3_1_document_listing_every_route(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    validate(doc)  # the official OpenAPI 3.1 schema
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == ROUTES
    meta = doc["paths"]["/api/images/{md5}"]["get"]
    assert [p["name"] for p in meta["parameters"]] == ["md5"]
    assert set(meta["responses"]) == {"200", "400", "404", "default"}
    assert meta["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Image"
    }
    assert {"Error", "Image", "ImagePage", "ImageSummary", "Monitoring"} <= set(
        doc["components"]["schemas"]
    )


def test_openapi_follows_added_blueprints(extra_client: FlaskClient) -> None:
    doc = extra_client.get("/openapi.json").get_json()
    validate(doc)
    assert set(doc["paths"]) == ROUTES | {"/boom", "/boom-page", "/echo"}
    assert "post" in doc["paths"]["/echo"]


def test_an_undocumented_route_refuses_to_start(services: Services) -> None:
    bp = Blueprint("undocumented", __name__)
    bp.add_url_rule("/secret", "secret", lambda: "x")
    with pytest.raises(RuntimeError, match="/secret"):
        create_app(services, [bp])


def test_unknown_path_is_json_for_api_clients(client: FlaskClient) -> None:
    _error(client.get("/nope"), 404, "not_found")
    _error(client.get("/nope", headers={"Accept": "application/json"}), 404, "not_found")
    _error(client.get("/api/nope", headers={"Accept": BROWSER_ACCEPT}), 404, "not_found")


def test_unknown_page_is_an_html_page_for_browsers(client: FlaskClient) -> None:
    response = client.get("/nope", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "404" in response.text and "not_found" in response.text


def test_method_not_allowed(client: FlaskClient) -> None:
    response = client.post("/healthz")
    _error(response, 405, "method_not_allowed")
    assert set(re.split(r",\s*", response.headers["Allow"])) >= {"GET", "HEAD"}


def test_request_size_limit(extra_client: FlaskClient) -> None:
    assert extra_client.post("/echo", data=b"x" * 100).get_json() == {"length": 100}
    body = _error(extra_client.post("/echo", data=b"x" * 101), 413, "request_entity_too_large")
    assert "100 bytes" in body["error"]["message"]
    # Even a route that never reads its body is protected.
    _error(extra_client.get("/healthz", data=b"x" * 101), 413, "request_entity_too_large")


def test_internal_error_is_json_without_details(extra_client: FlaskClient) -> None:
    response = extra_client.get("/boom", headers={"Accept": BROWSER_ACCEPT})
    _error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text


def test_internal_error_on_an_html_page_is_a_page_for_browsers(
    extra_client: FlaskClient,
) -> None:
    response = extra_client.get("/boom-page", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert "secret" not in response.text and "Traceback" not in response.text
    _error(extra_client.get("/boom-page"), 500, "internal_error")


def test_static_files_are_local(client: FlaskClient, app: Flask) -> None:
    js = client.get("/static/monitoring.js")
    assert js.status_code == 200 and "javascript" in js.mimetype
    css = client.get("/static/sleuth.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    for path in ("/", "/monitoring", "/nope"):
        page = client.get(path, headers={"Accept": BROWSER_ACCEPT}).text
        refs = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert refs and all(ref.startswith("/") for ref in refs), refs


def test_every_page_links_each_installed_apps_pages(client: FlaskClient) -> None:
    from sleuth.app import installed_apps

    pages = [page for app in installed_apps() for page in app.pages]
    assert ("forum", "/forum") in pages and ("images", "/") in pages
    expected = [(path, label) for label, path in pages]
    expected += [("/monitoring", "monitoring"), ("/openapi.json", "API")]
    for path in ("/monitoring", "/forum", "/finder", "/graph"):
        html = client.get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
        nav = html.split("<nav>", 1)[1].split("</nav>", 1)[0]
        assert re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav) == expected, path
