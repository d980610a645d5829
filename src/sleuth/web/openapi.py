"""The OpenAPI 3.1 document, built from the routes themselves.

Each view carries a small `Operation` (attached with `@operation(...)` under its route
decorator); `build_document` walks the app's URL map, so the document lists exactly the
routes that exist, and `check_documented` refuses to start an app with an undocumented route.
Named schemas are declared once with `schema()` and referenced from operations."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from flask import Flask

F = TypeVar("F", bound=Callable[..., Any])

OPENAPI_VERSION = "3.1.0"
_COMPONENTS: dict[str, dict[str, Any]] = {}
_RULE_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}
_UNDOCUMENTED_ENDPOINTS = {"static"}


def schema(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Declare a named component schema; returns a `$ref` to it. Declaring a name twice with
    a different body is a programming error, caught at import time."""
    body = dict(body)
    if _COMPONENTS.setdefault(name, body) != body:
        raise ValueError(f"OpenAPI schema {name!r} declared twice with different bodies")
    return {"$ref": f"#/components/schemas/{name}"}


def object_schema(properties: Mapping[str, Any], description: str = "") -> dict[str, Any]:
    """An object schema whose every property is required and none other allowed (for answers
    that always carry all their fields)."""
    body: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": dict(properties),
        "additionalProperties": False,
    }
    return body | ({"description": description} if description else {})


ERROR = schema(
    "Error",
    {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "description": "stable, machine-readable"},
                    "message": {"type": "string", "description": "the reason, for people"},
                },
            }
        },
    },
)


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "path", "header"]
    # A callable is asked when the document is built: a schema that depends on what is
    # installed (the names of the installed apps) stays exact.
    schema: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
    description: str
    required: bool = False

    def render(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.required or self.where == "path",
            "description": self.description,
            "schema": dict(self.schema() if callable(self.schema) else self.schema),
        }


@dataclass(frozen=True)
class ResponseSpec:
    description: str
    content: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # type → schema
    headers: Mapping[str, str] = field(default_factory=dict)  # header name → description

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description}
        if self.content:
            out["content"] = {t: {"schema": dict(s)} for t, s in self.content.items()}
        if self.headers:
            out["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in self.headers.items()
            }
        return out


def json_response(description: str, body: Mapping[str, Any]) -> ResponseSpec:
    return ResponseSpec(description, {"application/json": body})


@dataclass(frozen=True)
class RequestBody:
    description: str
    content: Mapping[str, Mapping[str, Any]]  # type → schema
    required: bool = True

    def render(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "required": self.required,
            "content": {t: {"schema": dict(s)} for t, s in self.content.items()},
        }


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str
    tags: tuple[str, ...]
    params: tuple[Param, ...]
    responses: Mapping[int, ResponseSpec]
    errors: tuple[int, ...]
    body: RequestBody | None = None

    def render(self, operation_id: str, path_args: list[str]) -> dict[str, Any]:
        declared = {p.name for p in self.params if p.where == "path"}
        params = [p.render() for p in self.params]
        params += [
            Param(arg, "path", {"type": "string"}, arg).render()
            for arg in path_args
            if arg not in declared
        ]
        responses: dict[str, Any] = {str(s): r.render() for s, r in self.responses.items()}
        for status in self.errors:
            responses[str(status)] = json_response("error", ERROR).render()
        responses["default"] = json_response("unexpected error", ERROR).render()
        out: dict[str, Any] = {
            "operationId": operation_id,
            "summary": self.summary,
            "tags": list(self.tags),
            "responses": responses,
        }
        if self.description:
            out["description"] = self.description
        if params:
            out["parameters"] = params
        if self.body is not None:
            out["requestBody"] = self.body.render()
        return out


def operation(
    summary: str,
    *,
    responses: Mapping[int, ResponseSpec],
    description: str = "",
    tags: tuple[str, ...] = (),
    params: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
    body: RequestBody | None = None,
) -> Callable[[F], F]:
    """Document a view: put it directly above the function, under the route decorator."""
    op = Operation(summary, description, tags, params, responses, errors, body)

    def attach(view: F) -> F:
        view.openapi = op  # type: ignore[attr-defined]
        return view

    return attach


def _documented_rules(app: Flask) -> list[tuple[Any, Operation | None]]:
    rules = []
    for rule in app.url_map.iter_rules():
        # An app's own static files (its blueprint's `static` endpoint) are files, not API.
        if rule.endpoint.rsplit(".", 1)[-1] in _UNDOCUMENTED_ENDPOINTS:
            continue
        view = app.view_functions[rule.endpoint]
        rules.append((rule, getattr(view, "openapi", None)))
    return rules


def check_documented(app: Flask) -> None:
    """Refuse an app one of whose routes has no `@operation`: the document would drift."""
    missing = sorted(rule.rule for rule, op in _documented_rules(app) if op is None)
    if missing:
        raise RuntimeError(f"routes without an OpenAPI @operation: {', '.join(missing)}")


def build_document(app: Flask, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule, op in _documented_rules(app):
        if op is None:
            continue
        path = _RULE_ARG.sub(r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - _IGNORED_METHODS)
        for method in methods:
            op_id = rule.endpoint.replace(".", "_")
            if len(methods) > 1:
                op_id += f"_{method.lower()}"
            args = [m.group(1) for m in _RULE_ARG.finditer(rule.rule)]
            paths.setdefault(path, {})[method.lower()] = op.render(op_id, args)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(_COMPONENTS.items()))},
    }
