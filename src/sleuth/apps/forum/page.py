"""`GET /forum`: the forum dashboard. Its script draws every number from the JSON API under
`/api/forum/` (rankings, weekday × hour, calendar, year over year, the quote graph, domains),
so the page and any other client see the same figures; the page itself lists only which
forums were crawled, to choose from."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, Response, render_template, url_for

from sleuth.apps.forum.models import forum_sites
from sleuth.web.context import current_services
from sleuth.web.openapi import ResponseSpec, operation

blueprint = Blueprint(
    "forum_page",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/forum/static",
)


@blueprint.get("/forum")
@operation(
    "The forum dashboard: poster rankings, activity heatmaps, years, the quote graph, domains",
    description="An HTML page; its script reads `/api/forum/...` for the chosen forum (`site`), "
    "year and board (`bid`), which it keeps in the page's query string.",
    tags=("forum",),
    responses={200: ResponseSpec("the page", {"text/html": {"type": "string"}})},
)
def forum_page() -> Response:
    with current_services().engine.connect() as conn:
        sites = conn.execute(
            sa.select(forum_sites.c.id, forum_sites.c.kind, forum_sites.c.url).order_by(
                forum_sites.c.id
            )
        ).all()
    page = render_template(
        "forum.html",
        sites=sites,
        api_url=url_for("forum_api.index"),
        script=url_for("forum_page.static", filename="forum.js"),
    )
    return Response(page, mimetype="text/html")
