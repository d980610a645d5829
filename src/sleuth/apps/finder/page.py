"""`GET /finder`: the page where a person enters an artwork's URL and watches the finder's
request advance to END. The page's script speaks AOTF's `/aotf/query`, as any client would."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, url_for

from sleuth.web.openapi import ResponseSpec, operation

blueprint = Blueprint(
    "finder_page",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/finder/static",
)


@blueprint.get("/finder")
@operation(
    "The finder's page: enter an artwork URL, see the posts that contain it",
    description="An HTML form; its script POSTs the URL to `/aotf/query` and polls every "
    "second until the request ends, showing each status and the matching posts.",
    tags=("finder",),
    responses={200: ResponseSpec("the page", {"text/html": {"type": "string"}})},
)
def finder_page() -> Response:
    page = render_template(
        "finder.html",
        query_url=url_for("finder_aotf.query"),
        script=url_for("finder_page.static", filename="finder.js"),
    )
    return Response(page, mimetype="text/html")
