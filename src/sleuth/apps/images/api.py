"""Web routes of the images app: the seed's `/image/<md5>` (a real PNG, with caching and
JSON errors), image metadata and a newest-first listing as JSON, an HTML gallery, and search
by image (`POST /api/images/search`, the `/search` page).

Every JSON answer is a record (`sleuth.record`) built from the image record of `models.py`,
and its OpenAPI schema is that record's, so the document states exactly what is sent.

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

from sleuth.apps.images.limits import DEFAULT_LIMIT, DEFAULT_MAX_DISTANCE, MAX_DISTANCE, MAX_LIMIT
from sleuth.apps.images.models import MD5_PATTERN, ImageRecord, image_sources, images
from sleuth.apps.images.pipeline import GRAY_EXT
from sleuth.apps.images.records import APP
from sleuth.apps.images.search import (
    HOST_PATTERN,
    MAX_SOURCES,
    Found,
    ImageSearch,
    Match,
    Query,
    QueryError,
    Result,
    Sourced,
    fetch_query_image,
    query_from_bytes,
    sources_of,
)
from sleuth.imaging.encode import gray_png, thumbnail_jpeg
from sleuth.imaging.errors import ImageError
from sleuth.record import from_row, json_schema, record_field, to_json
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
from sleuth.web.params import TIME_SCHEMA, PageLimit, parse_time

log = logging.getLogger(__name__)

blueprint = Blueprint("images", __name__, template_folder="templates")

# Bump when the bytes served for the same stored pixels change (PNG or thumbnail encoding),
# so that caches holding the old response under the old ETag are bypassed.
ENCODING_VERSION = 1
IMMUTABLE = "public, max-age=31536000, immutable"
THUMB_SIZES = (96, 160, 320)
DEFAULT_THUMB = 160
PAGE_SIZE = 48
PAGE_LIMIT = PageLimit(PAGE_SIZE, 500, "page size")
_MD5 = re.compile(MD5_PATTERN)
CURSOR_PATTERN = r"^([0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?)~([0-9a-f]{32})$"
_CURSOR = re.compile(CURSOR_PATTERN)


@dataclass(frozen=True)
class Links:
    """Where this server serves the image."""

    image_url: str = record_field("the gray copy, as PNG")
    thumb_url: str = record_field("a thumbnail of the gray copy, as JPEG")
    api_url: str = record_field("the image's metadata, as JSON")

    @classmethod
    def of(cls, md5: str) -> Links:
        return cls(
            url_for("images.image_png", md5=md5),
            url_for("images.image_thumb", md5=md5),
            url_for("images.image_meta", md5=md5),
        )


@dataclass(frozen=True)
class ImageSummary:
    """A stored image."""

    image: ImageRecord = record_field(flatten=True)
    links: Links = record_field(flatten=True)


@dataclass(frozen=True)
class ImageDetail:
    """A stored image and the URLs it came from."""

    image: Sourced = record_field(flatten=True)
    links: Links = record_field(flatten=True)


@dataclass(frozen=True)
class ImagePage:
    """One page of images, newest first."""

    images: tuple[ImageSummary, ...]
    next: str | None = record_field(
        "pass as `before` for the next page; null on the last page", pattern=CURSOR_PATTERN
    )


IMAGE_SUMMARY = schema("ImageSummary", json_schema(ImageSummary))
IMAGE = schema("Image", json_schema(ImageDetail))
IMAGE_PAGE = schema("ImagePage", json_schema(ImagePage))
MD5_PARAM = Param(
    "md5",
    "path",
    {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
    "MD5 of the downloaded file: 32 hex digits, any case",
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


def _record(conn: Connection, md5: str) -> ImageRecord:
    row = conn.execute(sa.select(images).where(images.c.md5 == md5)).first()
    if row is None:
        raise ApiError(404, "image_not_found", f"no image with MD5 {md5}")
    return from_row(ImageRecord, row)


def _summary(record: ImageRecord) -> dict[str, Any]:
    return to_json(ImageSummary(record, Links.of(record.md5)))


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
        return _record(conn, md5).gray_key


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
            {"type": "integer", "enum": list(THUMB_SIZES), "default": DEFAULT_THUMB},
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
    size_text = request.args.get("size", str(DEFAULT_THUMB))
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
        (image,) = sources_of(conn, [_record(conn, md5)], MAX_SOURCES)
    return jsonify(to_json(ImageDetail(image, Links.of(md5))))


def _cursor(record: ImageRecord) -> str:
    return f"{record.first_seen!r}~{record.md5}"


def newest(
    conn: Connection, limit: int, before: str | None
) -> tuple[list[ImageRecord], str | None]:
    """One page of images, newest first, and the cursor of the next page.

    Keyset pagination on (first_seen, md5): stable while images are being added, and as
    fast on the last page as on the first. `before` is a cursor or a time."""
    query = sa.select(images).order_by(images.c.first_seen.desc(), images.c.md5.desc())
    if before is not None:
        match = _CURSOR.match(before)
        if match:
            at, md5 = float(match.group(1)), match.group(4)
            query = query.where(
                sa.or_(
                    images.c.first_seen < at,
                    sa.and_(images.c.first_seen == at, images.c.md5 < md5),
                )
            )
        else:
            query = query.where(images.c.first_seen < parse_time("before", before))
    records = [from_row(ImageRecord, row) for row in conn.execute(query.limit(limit + 1))]
    more = len(records) > limit
    records = records[:limit]
    return records, (_cursor(records[-1]) if more else None)


_BEFORE_PARAM = Param(
    "before",
    "query",
    {"anyOf": [{"type": "string", "pattern": CURSOR_PATTERN}, *TIME_SCHEMA["anyOf"]]},
    "the `next` cursor of the previous page, or a time: images first seen before it",
)


@blueprint.get("/api/images")
@operation(
    "Images, newest first",
    tags=("images",),
    params=(
        PAGE_LIMIT.param,
        _BEFORE_PARAM,
    ),
    responses={200: json_response("one page", IMAGE_PAGE)},
    errors=(400,),
)
def image_list() -> Response:
    limit = PAGE_LIMIT.read()
    with current_services().engine.connect() as conn:
        records, cursor = newest(conn, limit, request.args.get("before"))
    summaries = tuple(ImageSummary(r, Links.of(r.md5)) for r in records)
    return jsonify(to_json(ImagePage(summaries, cursor)))


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
        records, cursor = newest(conn, PAGE_SIZE, request.args.get("before"))
        counts = {
            "images": conn.execute(sa.select(sa.func.count()).select_from(images)).scalar_one(),
            "sources": conn.execute(
                sa.select(sa.func.count()).select_from(image_sources)
            ).scalar_one(),
        }
        outcomes = outcome_totals(conn, APP)
    return render_template(
        "images/index.html",
        images=[_summary(r) for r in records],
        next_cursor=cursor,
        paged="before" in request.args,
        counts=counts,
        outcomes=outcomes,
    )


# ----------------------------------------------------------------------- search by image

SEARCH_KEY = "sleuth.images.search"
_SEARCH_LOCK = threading.Lock()
QUERY_PREVIEW = 160  # longest side of the query's preview on the search page


@dataclass(frozen=True)
class LinkedMatch:
    """A stored image within the distance, and where this server serves it."""

    match: Match = record_field(flatten=True)
    links: Links = record_field(flatten=True)


@dataclass(frozen=True)
class LinkedFound(Found):
    """Matches, each with its links."""

    matches: tuple[LinkedMatch, ...] = record_field("by distance, then MD5")  # type: ignore[assignment]


@dataclass(frozen=True)
class SearchAnswer(Result):
    """The query and the stored images that look like it."""

    found: LinkedFound = record_field(flatten=True)  # type: ignore[assignment]


IMAGE_SEARCH = schema("ImageSearch", json_schema(SearchAnswer))
# A `url` the server will try to fetch: http(s), a host, no spaces. Anything else is refused
# before any network access.
URL_PATTERN = r"^https?://[^\s/?#@]+(/\S*)?$"
_URL = re.compile(URL_PATTERN)
_SMALL_INTEGER = re.compile(r"-?[0-9]{1,6}")
_EMPTY = {"type": "string", "maxLength": 0}
_URL_FIELD = {
    "type": "string",
    "minLength": 1,
    "pattern": URL_PATTERN,
    "description": "an http(s) URL of the query image, fetched by the server (instead of an "
    "upload)",
}
_SEARCH_FIELDS: dict[str, Any] = {
    "url": _URL_FIELD,
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
        "anyOf": [_EMPTY, {"type": "string", "pattern": HOST_PATTERN}],
        "description": "only images with a source URL on this host (e.g. i.example.com); "
        "empty: any host",
    },
}
_IMAGE_FIELD = {
    "type": "string",
    "format": "binary",
    "contentMediaType": "application/octet-stream",
    "description": "the query image file (JPEG, PNG, GIF, WebP, ...)",
}
# Exactly one of an uploaded `image` and a non-empty `url` (a page's form sends an empty
# `url` beside its file).
_UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "image": _IMAGE_FIELD,
        **_SEARCH_FIELDS,
        "url": {"anyOf": [_EMPTY, _URL_FIELD]},
    },
    "oneOf": [
        {"required": ["image"], "properties": {"url": _EMPTY}},
        {"required": ["url"], "properties": {"url": _URL_FIELD}, "not": {"required": ["image"]}},
    ],
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
    """A text field: absent or empty is None."""
    if name not in fields:
        return None
    value = fields[name]
    if not isinstance(value, str):
        raise ApiError(400, "invalid_parameter", f"{name} must be a string, not {value!r}")
    return value or None


def _int_field(
    fields: Mapping[str, Any], name: str, default: int, low: int, high: int, *, as_text: bool
) -> int:
    """An integer field: a JSON integer (`11` or `11.0`), or in a form its decimal digits."""
    if name not in fields:
        return default
    value = fields[name]
    number = None
    if as_text:
        if isinstance(value, str) and _SMALL_INTEGER.fullmatch(value):
            number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():  # JSON Schema: 11.0 is an integer
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
    fields: Mapping[str, Any]
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_json", "the body must be a JSON object")
        fields = body
    else:
        fields = request.form
        upload = request.files.get("image")
        if upload is not None:
            image = upload.read()
            if not image and not upload.filename:  # a form sent with no file chosen
                image = None
    url = _text_field(fields, "url")
    if url is not None and not _URL.search(url):
        # Checked before any network access: only what the schema's pattern allows is fetched.
        raise ApiError(
            400, "fetch_bad_url", f"could not fetch {url[:200]!r}: not an http(s) URL with a host"
        )
    if image is None and url is None:
        raise ApiError(
            400,
            "missing_image",
            "nothing to search for: upload an image (multipart field `image`) or give its `url`",
        )
    if image is not None and url is not None:
        raise ApiError(400, "ambiguous_query", "give an uploaded image or a url, not both")
    as_text = not request.is_json
    return SearchForm(
        image=image,
        url=url,
        max_distance=_int_field(
            fields, "max_distance", DEFAULT_MAX_DISTANCE, 0, MAX_DISTANCE, as_text=as_text
        ),
        limit=_int_field(fields, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, as_text=as_text),
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


def _answer(query: Query, found: Found) -> dict[str, Any]:
    matches = tuple(LinkedMatch(m, Links.of(m.md5)) for m in found.matches)
    linked = LinkedFound(found.max_distance, found.limit, found.truncated, matches)
    return to_json(SearchAnswer(query, linked))


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
    return jsonify(_answer(query, found))


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
        query=to_json(query),
        preview=preview,
        found=_answer(query, found),
    )
