"""Web routes of the images app: the seed's `/image/<md5>` (now a real PNG with caching and
JSON errors), image metadata and a newest-first listing as JSON, an HTML gallery, and search
by image (`POST /api/images/search`, the `/search` page).

Gray copies are stored losslessly as blobs and encoded to PNG on demand; the encoding is a
pure function of the stored pixels, so responses are immutable and cached by ETag."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, render_template, request, url_for
from sqlalchemy import Connection
from sqlalchemy.engine import Row

from sleuth.apps.images.models import image_sources, images, phash_from_db
from sleuth.apps.images.pipeline import GRAY_EXT
from sleuth.apps.images.records import APP
from sleuth.apps.images.search import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_DISTANCE,
    MAX_DISTANCE,
    MAX_LIMIT,
    MAX_MATCH_SOURCES,
    Found,
    ImageSearch,
    Query,
    QueryError,
    fetch_query_image,
    query_from_bytes,
)
from sleuth.crawl.api import errors_blueprint
from sleuth.imaging.decode import ImageError
from sleuth.imaging.encode import gray_png, thumbnail_jpeg
from sleuth.web.app import body_limit
from sleuth.web.context import current_services
from sleuth.web.errors import ApiError, html_page
from sleuth.web.monitoring import outcome_totals
from sleuth.web.openapi import (
    Param,
    RequestBody,
    ResponseSpec,
    json_response,
    operation,
    schema,
)
from sleuth.web.params import int_arg, iso_utc, parse_time

log = logging.getLogger(__name__)

blueprint = Blueprint("images", __name__, template_folder="templates")
blueprint.register_blueprint(errors_blueprint(APP))

# Bump when the bytes served for the same stored pixels change (PNG or thumbnail encoding),
# so that caches holding the old response under the old ETag are bypassed.
ENCODING_VERSION = 1
IMMUTABLE = "public, max-age=31536000, immutable"
THUMB_SIZES = (96, 160, 320)
DEFAULT_THUMB = 160
PAGE_SIZE = 48
MAX_PAGE = 500
MAX_SOURCES = 100
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CURSOR = re.compile(r"^(\d+(?:\.\d+)?(?:e[+-]?\d+)?)~([0-9a-f]{32})$")

_TIME = {"type": "string", "format": "date-time"}
_SUMMARY_FIELDS: dict[str, Any] = {
    "md5": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
    "width": {"type": "integer"},
    "height": {"type": "integer"},
    "phash": {"type": "string", "pattern": "^[0-9a-f]{16}$", "description": "64-bit pHash"},
    "format": {"type": "string", "description": "format of the downloaded file"},
    "mode": {"type": "string", "description": "Pillow mode of the downloaded file"},
    "bytes": {"type": "integer", "description": "size of the downloaded file"},
    "first_seen": _TIME,
    "last_seen": _TIME,
    "image_url": {"type": "string"},
    "thumb_url": {"type": "string"},
    "api_url": {"type": "string"},
}
_SOURCE = {
    "type": "object",
    "required": ["url", "first_seen", "last_seen"],
    "properties": {"url": {"type": "string"}, "first_seen": _TIME, "last_seen": _TIME},
}
IMAGE_SUMMARY = schema(
    "ImageSummary",
    {"type": "object", "required": list(_SUMMARY_FIELDS), "properties": _SUMMARY_FIELDS},
)
IMAGE = schema(
    "Image",
    {
        "type": "object",
        "required": [*_SUMMARY_FIELDS, "sources", "sources_total"],
        "properties": {
            **_SUMMARY_FIELDS,
            "sources": {
                "type": "array",
                "description": f"the URLs these bytes came from, oldest first (at most "
                f"{MAX_SOURCES})",
                "items": _SOURCE,
            },
            "sources_total": {"type": "integer"},
        },
    },
)
IMAGE_PAGE = schema(
    "ImagePage",
    {
        "type": "object",
        "required": ["images", "next"],
        "properties": {
            "images": {"type": "array", "items": IMAGE_SUMMARY},
            "next": {
                "type": ["string", "null"],
                "description": "pass as `before` for the next page; null on the last page",
            },
        },
    },
)
MD5_PARAM = Param(
    "md5", "path", {"type": "string"}, "MD5 of the downloaded file: 32 hex digits, any case"
)
_CACHE_HEADERS = {
    "ETag": "MD5 and encoding version; answer If-None-Match with 304",
    "Cache-Control": IMMUTABLE,
}


def _md5(text: str) -> str:
    md5 = text.lower()
    if not _MD5.match(md5):
        raise ApiError(400, "invalid_md5", f"an MD5 is 32 hexadecimal digits, not {text!r}")
    return md5


def _row(conn: Connection, md5: str) -> Row[Any]:
    row = conn.execute(sa.select(images).where(images.c.md5 == md5)).first()
    if row is None:
        raise ApiError(404, "image_not_found", f"no image with MD5 {md5}")
    return row


def _summary(row: Row[Any]) -> dict[str, Any]:
    return {
        "md5": row.md5,
        "width": row.width,
        "height": row.height,
        "phash": f"{phash_from_db(row.phash):016x}",
        "format": row.format,
        "mode": row.mode,
        "bytes": row.bytes,
        "first_seen": iso_utc(row.first_seen),
        "last_seen": iso_utc(row.last_seen),
        "image_url": url_for("images.image_png", md5=row.md5),
        "thumb_url": url_for("images.image_thumb", md5=row.md5),
        "api_url": url_for("images.image_meta", md5=row.md5),
    }


def _encoded(md5: str, gray_key: str, encode: Callable[[bytes], bytes]) -> bytes:
    """The gray copy, encoded; a missing or damaged blob is a stated server error."""
    try:
        return encode(current_services().blobs.get(gray_key, GRAY_EXT))
    except FileNotFoundError:
        log.error("gray blob %s of image %s is missing", gray_key, md5)
        raise ApiError(
            500, "gray_copy_missing", f"the gray copy of image {md5} is missing from the blob store"
        ) from None
    except ImageError as exc:
        log.error("gray blob %s of image %s is damaged: %s", gray_key, md5, exc.detail)
        raise ApiError(
            500, "gray_copy_damaged", f"the gray copy of image {md5} is damaged: {exc.detail}"
        ) from None


def _cache(response: Response, etag: str) -> Response:
    response.set_etag(etag)
    response.headers["Cache-Control"] = IMMUTABLE
    return response


def _not_modified(etag: str) -> Response | None:
    """304 when the client already holds this ETag (responses never change under one)."""
    if request.if_none_match.contains_weak(etag):
        return _cache(Response(status=304), etag)
    return None


def _gray_key(md5: str) -> str:
    with current_services().engine.connect() as conn:
        return str(_row(conn, md5).gray_key)


@blueprint.get("/image/<md5>")
@operation(
    "The grayscale copy of an image, as PNG",
    description="Gray is exactly (R+G+B)/3 of the decoded pixels, encoded losslessly.",
    tags=("images",),
    params=(MD5_PARAM,),
    responses={
        200: ResponseSpec("the PNG", {"image/png": {}}, _CACHE_HEADERS),
        304: ResponseSpec("the client's copy is current"),
    },
    errors=(400, 404),
)
def image_png(md5: str) -> Response:
    md5 = _md5(md5)
    gray_key = _gray_key(md5)
    etag = f"{md5}-v{ENCODING_VERSION}"
    cached = _not_modified(etag)
    if cached is not None:
        return cached
    return _cache(Response(_encoded(md5, gray_key, gray_png), mimetype="image/png"), etag)


@blueprint.get("/image/<md5>/thumb")
@operation(
    "A small thumbnail of the grayscale copy",
    tags=("images",),
    params=(
        MD5_PARAM,
        Param(
            "size",
            "query",
            {"enum": list(THUMB_SIZES), "default": DEFAULT_THUMB},
            "longest side in pixels",
        ),
    ),
    responses={
        200: ResponseSpec("the thumbnail", {"image/jpeg": {}}, _CACHE_HEADERS),
        304: ResponseSpec("the client's copy is current"),
    },
    errors=(400, 404),
)
def image_thumb(md5: str) -> Response:
    md5 = _md5(md5)
    size_text = request.args.get("size") or str(DEFAULT_THUMB)
    if size_text not in {str(s) for s in THUMB_SIZES}:
        raise ApiError(
            400, "invalid_parameter", f"size must be one of {list(THUMB_SIZES)}, not {size_text!r}"
        )
    size = int(size_text)
    gray_key = _gray_key(md5)
    etag = f"{md5}-t{size}-v{ENCODING_VERSION}"
    cached = _not_modified(etag)
    if cached is not None:
        return cached
    # Thumbnails are derived from content-addressed gray copies, so they are cached as
    # blobs of their own: the gallery decodes each gray copy once per size, not per visit.
    blobs = current_services().blobs
    key = f"{gray_key}-t{size}v{ENCODING_VERSION}"
    if blobs.exists(key, "jpg"):
        body = blobs.get(key, "jpg")
    else:
        body = _encoded(md5, gray_key, lambda data: thumbnail_jpeg(data, size))
        blobs.put(key, "jpg", body)
    return _cache(Response(body, mimetype="image/jpeg"), etag)


@blueprint.get("/api/images/<md5>")
@operation(
    "Metadata of one image and the URLs it came from",
    tags=("images",),
    params=(MD5_PARAM,),
    responses={200: json_response("the image", IMAGE)},
    errors=(400, 404),
)
def image_meta(md5: str) -> Response:
    md5 = _md5(md5)
    with current_services().engine.connect() as conn:
        row = _row(conn, md5)
        sources = conn.execute(
            sa.select(image_sources.c.url, image_sources.c.first_seen, image_sources.c.last_seen)
            .where(image_sources.c.md5 == md5)
            .order_by(image_sources.c.first_seen, image_sources.c.url_key)
            .limit(MAX_SOURCES)
        ).all()
        total = conn.execute(
            sa.select(sa.func.count()).select_from(image_sources).where(image_sources.c.md5 == md5)
        ).scalar_one()
    return jsonify(
        {
            **_summary(row),
            "sources": [
                {
                    "url": s.url,
                    "first_seen": iso_utc(s.first_seen),
                    "last_seen": iso_utc(s.last_seen),
                }
                for s in sources
            ],
            "sources_total": int(total),
        }
    )


def _cursor(row: Row[Any]) -> str:
    return f"{row.first_seen!r}~{row.md5}"


def newest(conn: Connection, limit: int, before: str | None) -> tuple[list[Row[Any]], str | None]:
    """One page of images, newest first, and the cursor of the next page.

    Keyset pagination on (first_seen, md5): stable while images are being added, and as
    fast on the last page as on the first. `before` is a cursor or a time."""
    query = sa.select(images).order_by(images.c.first_seen.desc(), images.c.md5.desc())
    if before:
        match = _CURSOR.match(before)
        if match:
            at, md5 = float(match.group(1)), match.group(2)
            query = query.where(
                sa.or_(
                    images.c.first_seen < at,
                    sa.and_(images.c.first_seen == at, images.c.md5 < md5),
                )
            )
        else:
            query = query.where(images.c.first_seen < parse_time("before", before))
    rows = conn.execute(query.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (_cursor(rows[-1]) if more else None)


_BEFORE_PARAM = Param(
    "before",
    "query",
    {"type": "string"},
    "the `next` cursor of the previous page, or a time (epoch seconds or ISO-8601)",
)


@blueprint.get("/api/images")
@operation(
    "Images, newest first",
    tags=("images",),
    params=(
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": PAGE_SIZE},
            "page size",
        ),
        _BEFORE_PARAM,
    ),
    responses={200: json_response("one page", IMAGE_PAGE)},
    errors=(400,),
)
def image_list() -> Response:
    limit = int_arg("limit", PAGE_SIZE, 1, MAX_PAGE)
    with current_services().engine.connect() as conn:
        rows, cursor = newest(conn, limit, request.args.get("before"))
    return jsonify({"images": [_summary(r) for r in rows], "next": cursor})


@blueprint.get("/")
@operation(
    "The gallery: newest images as thumbnails, with counts",
    tags=("images",),
    params=(_BEFORE_PARAM,),
    responses={200: ResponseSpec("an HTML page", {"text/html": {"type": "string"}})},
    errors=(400,),
)
@html_page
def index() -> str:
    with current_services().engine.connect() as conn:
        rows, cursor = newest(conn, PAGE_SIZE, request.args.get("before"))
        counts = {
            "images": conn.execute(sa.select(sa.func.count()).select_from(images)).scalar_one(),
            "sources": conn.execute(
                sa.select(sa.func.count()).select_from(image_sources)
            ).scalar_one(),
        }
        outcomes = outcome_totals(conn, APP)
    return render_template(
        "images/index.html",
        images=[_summary(r) for r in rows],
        next_cursor=cursor,
        paged=bool(request.args.get("before")),
        counts=counts,
        outcomes=outcomes,
    )


# ----------------------------------------------------------------------- search by image

SEARCH_KEY = "sleuth.images.search"
_SEARCH_LOCK = threading.Lock()
QUERY_PREVIEW = 160  # longest side of the query's preview on the search page

IMAGE_MATCH = schema(
    "ImageMatch",
    {
        "type": "object",
        "required": [*_SUMMARY_FIELDS, "distance", "sources", "sources_total"],
        "properties": {
            **_SUMMARY_FIELDS,
            "distance": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_DISTANCE,
                "description": "Hamming distance between the two 64-bit pHashes",
            },
            "sources": {
                "type": "array",
                "description": f"the URLs these bytes came from, oldest first (at most "
                f"{MAX_MATCH_SOURCES})",
                "items": _SOURCE,
            },
            "sources_total": {"type": "integer"},
        },
    },
)
IMAGE_SEARCH = schema(
    "ImageSearch",
    {
        "type": "object",
        "required": ["query", "max_distance", "limit", "truncated", "matches"],
        "properties": {
            "query": {
                "type": "object",
                "required": ["phash", "width", "height"],
                "properties": {
                    "phash": _SUMMARY_FIELDS["phash"],
                    "width": {"type": "integer"},
                    "height": {"type": "integer"},
                },
            },
            "max_distance": {"type": "integer"},
            "limit": {"type": "integer"},
            "truncated": {
                "type": "boolean",
                "description": "more images lie within max_distance than limit lets through",
            },
            "matches": {
                "type": "array",
                "description": "by distance, then MD5",
                "items": IMAGE_MATCH,
            },
        },
    },
)
_SEARCH_FIELDS: dict[str, Any] = {
    "url": {
        "type": "string",
        "description": "an http(s) URL of the query image, fetched by the server (instead "
        "of an upload)",
    },
    "max_distance": {
        "type": "integer",
        "minimum": 0,
        "maximum": MAX_DISTANCE,
        "default": DEFAULT_MAX_DISTANCE,
        "description": "largest Hamming distance between pHashes that counts as a match",
    },
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_LIMIT,
        "default": DEFAULT_LIMIT,
        "description": "most matches returned",
    },
    "crawl": {"type": "string", "description": "only images found by this crawl (its id)"},
    "host": {
        "type": "string",
        "description": "only images with a source URL on this host (e.g. i.example.com)",
    },
}
_UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "image": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "the query image file (JPEG, PNG, GIF, WebP, ...)",
        },
        **_SEARCH_FIELDS,
    },
}
_URL_FORM = {"type": "object", "required": ["url"], "properties": _SEARCH_FIELDS}
_UPLOAD_LIMIT = "The body may be as large as `net.max_bytes` (the cap on a downloaded image)."
_HTML = {"text/html": {"type": "string"}}


def _upload_limit() -> int:
    return current_services().settings.net.max_bytes


def search_service() -> ImageSearch:
    """The app's one search service, opened on first use (it loads the saved index)."""
    with _SEARCH_LOCK:
        service = current_app.extensions.get(SEARCH_KEY)
        if service is None:
            service = ImageSearch.for_services(current_services())
            current_app.extensions[SEARCH_KEY] = service
    return service


@dataclass(frozen=True)
class SearchForm:
    """A search request, checked: exactly one of `image` (bytes) and `url`."""

    image: bytes | None
    url: str | None
    max_distance: int
    limit: int
    crawl: str | None
    host: str | None


def _text_field(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameter", f"{name} must be a string, not {value!r}")
    return value.strip() or None


def _int_field(fields: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = fields.get(name)
    if value is None or value == "":
        return default
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,6}\s*", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} must be an integer from {low} to {high}, not {value!r}",
        )
    return number


def search_form() -> SearchForm:
    """The search asked for: a multipart upload (`image`), or a form or JSON `url`."""
    image = None
    if request.is_json:
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
    else:
        fields = request.form
        upload = request.files.get("image")
        if upload is not None:
            image = upload.read()
            if not image and not upload.filename:  # a form sent with no file chosen
                image = None
    url = _text_field(fields, "url")
    if image is None and url is None:
        raise ApiError(
            400,
            "missing_image",
            "nothing to search for: upload an image (multipart field `image`) or give its `url`",
        )
    if image is not None and url is not None:
        raise ApiError(400, "ambiguous_query", "give an uploaded image or a url, not both")
    return SearchForm(
        image=image,
        url=url,
        max_distance=_int_field(fields, "max_distance", DEFAULT_MAX_DISTANCE, 0, MAX_DISTANCE),
        limit=_int_field(fields, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        crawl=_text_field(fields, "crawl"),
        host=_text_field(fields, "host"),
    )


def run_search(form: SearchForm) -> tuple[Query, Found]:
    """Decode (or fetch, then decode) the query image and search the index."""
    settings = current_services().settings
    try:
        data = form.image
        if data is None:
            assert form.url is not None
            data = fetch_query_image(form.url, settings.net)
        query = query_from_bytes(data, settings.imaging.max_pixels)
        found = search_service().search(
            query.phash, form.max_distance, form.limit, crawl=form.crawl, host=form.host
        )
    except QueryError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return query, found


def _links(md5: str) -> dict[str, str]:
    return {
        "image_url": url_for("images.image_png", md5=md5),
        "thumb_url": url_for("images.image_thumb", md5=md5),
        "api_url": url_for("images.image_meta", md5=md5),
    }


def _found_json(query: Query, found: Found) -> dict[str, Any]:
    out = {"query": query.as_json(), **found.as_json()}
    for match in out["matches"]:
        match.update(_links(match["md5"]))
    return out


@blueprint.post("/api/images/search")
@operation(
    "Find the stored images that look like an uploaded or fetched image",
    description="The query's 64-bit pHash is compared with every stored image's, exactly (an "
    "index, not a sample): every image within `max_distance` is a match, nearest first. "
    + _UPLOAD_LIMIT,
    tags=("images",),
    body=RequestBody(
        "the query image, uploaded as `image`, or the `url` to fetch it from",
        {
            "multipart/form-data": _UPLOAD_FORM,
            "application/x-www-form-urlencoded": _URL_FORM,
            "application/json": _URL_FORM,
        },
    ),
    responses={200: json_response("the matches", IMAGE_SEARCH)},
    errors=(400, 404, 413, 502),
)
@body_limit(_upload_limit)
def image_search() -> Response:
    query, found = run_search(search_form())
    return jsonify(_found_json(query, found))


def _search_page(status: int = 200, **values: Any) -> Response:
    page = render_template(
        "images/search.html",
        form=request.form,
        default_max_distance=DEFAULT_MAX_DISTANCE,
        max_distance=MAX_DISTANCE,
        **values,
    )
    return Response(page, status=status, mimetype="text/html")


@blueprint.get("/search")
@operation(
    "The search page: upload an image (or give its URL) to find the stored ones like it",
    tags=("images",),
    responses={200: ResponseSpec("an HTML page", _HTML)},
)
@html_page
def search_page() -> Response:
    return _search_page()


@blueprint.post("/search")
@operation(
    "The search page with the query and its matches as thumbnails",
    description=_UPLOAD_LIMIT,
    tags=("images",),
    body=RequestBody("the page's form", {"multipart/form-data": _UPLOAD_FORM}),
    responses={
        200: ResponseSpec("the query and its matches", _HTML),
        400: ResponseSpec("the form again, with the reason the search failed", _HTML),
        404: ResponseSpec("the form again: no such crawl", _HTML),
        502: ResponseSpec("the form again: the URL could not be fetched", _HTML),
    },
    errors=(413,),
)
@html_page
@body_limit(_upload_limit)
def search_results() -> Response:
    try:
        query, found = run_search(search_form())
    except ApiError as exc:
        return _search_page(exc.status, error=exc.message)
    preview = base64.b64encode(query.preview_png(QUERY_PREVIEW)).decode("ascii")
    return _search_page(
        query=query.as_json(),
        preview=preview,
        found=_found_json(query, found),
    )
