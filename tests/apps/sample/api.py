"""The sample app's one route: `GET /api/sample/notes`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify

from sleuth.web.context import current_services
from sleuth.web.openapi import json_response, operation
from tests.apps.sample.notes import notes

blueprint = Blueprint("sample", __name__)

NOTES = {
    "type": "object",
    "required": ["notes"],
    "properties": {
        "notes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "text"],
                "properties": {"id": {"type": "string"}, "text": {"type": "string"}},
            },
        }
    },
}


@blueprint.get("/api/sample/notes")
@operation(
    "Every saved note, oldest first",
    tags=("sample",),
    responses={200: json_response("the notes", NOTES)},
)
def list_notes() -> Any:
    query = sa.select(notes.c.id, notes.c.text).order_by(notes.c.saved_at, notes.c.id)
    with current_services().engine.connect() as conn:
        rows = conn.execute(query).all()
    return jsonify({"notes": [{"id": r.id, "text": r.text} for r in rows]})
