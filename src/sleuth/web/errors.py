"""Errors as JSON for every client, and as an HTML page only for a browser on an HTML page.

API clients must never have to parse a stack trace or an HTML page, so the body is always
`{"error": {"code": ..., "message": ...}}` unless a browser (text/html preferred over JSON)
asked for a page that is itself HTML."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class ApiError(Exception):
    """An error a view reports on purpose: its status, a stable machine-readable code and a
    message that states the reason."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def html_page(view: F) -> F:
    """Mark a view as an HTML page, so a browser gets its errors as a page too."""
    view.html_page = True  # type: ignore[attr-defined]
    return view


def wants_html() -> bool:
    """True for a browser on an HTML page (or on a URL that matched no route outside /api/)."""
    if request.args.get("format") == "json":
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best != "text/html":
        return False
    if request.url_rule is None:
        return not request.path.startswith("/api/")
    view = current_app.view_functions.get(request.url_rule.endpoint)
    return bool(getattr(view, "html_page", False))


def _code_of(exc: HTTPException) -> str:
    """`Method Not Allowed` → `method_not_allowed`."""
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def error_response(status: int, code: str, message: str) -> Response:
    if wants_html():
        page = render_template("error.html", status=status, code=code, message=message)
        return Response(page, status=status, mimetype="text/html")
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message)


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    response = error_response(status, _code_of(exc), exc.description or exc.name)
    if status == 405 and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))  # type: ignore[attr-defined]
    return response


def _unexpected(exc: Exception) -> Response:
    """Anything a view did not mean to raise: logged in full, answered without details."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", InternalServerError.description)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
