"""The Flask app factory: core routes (`/healthz`, `/openapi.json`), monitoring, and the
blueprints of the installed apps, with JSON errors and a request size limit everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from sleuth import __version__
from sleuth.app import installed_apps
from sleuth.crawl.api import errors_blueprint
from sleuth.services import Services
from sleuth.web.context import SERVICES_KEY, current_services
from sleuth.web.engine_api import engine_api
from sleuth.web.errors import ApiError, register_error_handlers
from sleuth.web.metrics import blueprint as prometheus
from sleuth.web.monitoring import blueprint as monitoring
from sleuth.web.openapi import build_document, check_documented, json_response, operation

DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])

core = Blueprint("core", __name__)


def installed_blueprints() -> list[Blueprint]:
    """The blueprints every installed app declares, in the apps' order."""
    out: list[Blueprint] = []
    for app in installed_apps():
        out += app.blueprints() if app.blueprints else []
        if app.crawl_jobs is not None:
            out.append(errors_blueprint(app.name))
    return out


@core.get("/healthz")
@operation(
    "Liveness and database reachability",
    tags=("core",),
    responses={
        200: json_response(
            "the web process and its database answer",
            {
                "type": "object",
                "required": ["status", "version", "database"],
                "properties": {
                    "status": {"const": "ok"},
                    "version": {"type": "string"},
                    "database": {"const": "ok"},
                },
            },
        )
    },
    errors=(503,),
)
def healthz() -> Any:
    try:
        with current_services().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise ApiError(
            503, "database_unavailable", f"database unreachable: {str(exc).splitlines()[0]}"
        ) from exc
    return jsonify({"status": "ok", "version": __version__, "database": "ok"})


@core.get("/openapi.json")
@operation(
    "This API's OpenAPI 3.1 document",
    tags=("core",),
    responses={200: json_response("the document", {"type": "object"})},
)
def openapi_document() -> Any:
    return jsonify(build_document(current_app, "sleuth", __version__))


def body_limit(limit: Callable[[], int]) -> Callable[[F], F]:
    """Let a view take bodies up to `limit()` bytes instead of the app's limit (an image
    upload is larger than any other request)."""

    def attach(view: F) -> F:
        view.max_request_bytes = limit  # type: ignore[attr-defined]
        return view

    return attach


def _limit_request_size() -> None:
    """Refuse an oversized body before any view runs, read it or not; a body without a
    Content-Length is cut at the limit while it is read."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit_of = getattr(view, "max_request_bytes", None)
    limit = current_app.config["MAX_CONTENT_LENGTH"] if limit_of is None else limit_of()
    request.max_content_length = limit
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"request body over the limit of {limit} bytes")


def create_app(
    services: Services,
    blueprints: Iterable[Blueprint] | None = None,
    *,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Flask:
    """Build the web app on `services`. `blueprints` defaults to every installed app's; the
    core, monitoring and engine (`/api/engine/*`) routes are always there."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[SERVICES_KEY] = services
    register_error_handlers(app)
    app.before_request(_limit_request_size)
    app.register_blueprint(core)
    app.register_blueprint(monitoring)
    app.register_blueprint(engine_api)
    app.register_blueprint(prometheus)
    for blueprint in installed_blueprints() if blueprints is None else blueprints:
        app.register_blueprint(blueprint)
    pages = [p for a in installed_apps() for p in a.pages] if blueprints is None else []
    app.context_processor(lambda: {"app_pages": pages})  # the top bar of every page
    check_documented(app)
    return app
