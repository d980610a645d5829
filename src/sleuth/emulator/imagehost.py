"""An image host shaped like picsum.photos, the host that image_crawler's urls.txt pointed at.

Paths as on picsum: `/<w>/<h>`, `/<size>` (square), `/id/<n>/<w>/<h>`, `/id/<n>/<size>`, each with
an optional `.jpg` or `.webp` extension; sizes above 5000 are refused with 400 "Invalid size" and
unknown paths get 404 "page not found", with picsum's plain-text error bodies (JSON when the
client sends `Accept: application/json`). Two deliberate differences:

- picsum answers `/<w>/<h>` with a 302 to a random photo on its CDN; here the photo is served
  directly and is always the same one, `size_image_id(w, h)`, so a URL always gives the same bytes
  and a crawl's outcome is exactly predictable (`urls.expected_outcomes`). Redirects have their own
  endpoint, `/hostile/redirect/<n>`.
- `/error/<code>` answers with that status for 200..599. picsum has no such route, so the seed's
  `/error/100` lines got 404 "page not found" there; a 1xx cannot be a final HTTP/1.1 response (a
  client would wait for the real one forever), so codes outside 200..599 get that same 404.

`/hostile/...` serves what crawlers meet in the wild and must survive: `slow/<w>/<h>` (a few bytes
per second, `?bps=` to change), `truncated/<w>/<h>` (half a JPEG), `html-as-jpeg`, `redirect-loop`,
`redirect/<n>` (n hops, then a photo), `bomb` (a 4 kB PNG declaring 60000x60000 pixels),
`not-image` (a PDF), `alpha.png`, `palette.gif`, `animated.gif`, `cmyk.jpg`, `gray16.png`,
`bilevel.png`, `image.webp`, `huge-body` (100 MiB streamed; `?length=0` for no Content-Length),
`no-length` (a chunked JPEG) and `reset` (TCP reset mid-body).
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import NamedTuple

import numpy as np
from flask import Blueprint, Flask, Response, request, url_for
from PIL import Image

from sleuth.emulator.artsites import artsites_blueprint
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.bbxml import bbxml_blueprint
from sleuth.emulator.bluesky import LIMIT as BLUESKY_LIMIT
from sleuth.emulator.bluesky import BlueskyEmulator, bluesky_blueprints
from sleuth.emulator.discourse import discourse_blueprint
from sleuth.emulator.forums import Forums
from sleuth.emulator.mastodon import LIMITS as MASTODON_LIMITS
from sleuth.emulator.mastodon import MastodonEmulator, mastodon_blueprint
from sleuth.emulator.ratelimits import Limit
from sleuth.emulator.server import AbortConnection, stopping
from sleuth.emulator.world import JPEG_QUALITY, ByteLRU, photo, photo_jpeg
from sleuth.emulator.x_api import LIMITS as X_LIMITS
from sleuth.emulator.x_api import XEmulator, x_blueprint

MAX_SIZE = 5000
"""picsum's limit on width and height."""

SIZE_ID_BASE = 1 << 40
"""Photos of `/<w>/<h>` have ids from here on, apart from the catalogue ids of `/id/<n>/...`."""

MAX_IMAGE_ID = (1 << 63) - 1
HOSTILE_ID_BASE = 1 << 41
DEFAULT_CACHE_BYTES = 256 * 1024 * 1024
DEFAULT_HUGE_BODY_BYTES = 100 * 1024 * 1024
DEFAULT_SLOW_BYTES_PER_SECOND = 16
MAX_REDIRECTS = 100
BOMB_SIZE = 60_000

IMAGE_CACHE_CONTROL = "public, max-age=2592000, stale-while-revalidate=60, stale-if-error=43200"
ERROR_CACHE_CONTROL = "private, no-cache, no-store, must-revalidate"

_IMAGE_PATH = re.compile(r"^/(?:id/(?P<id>[^/]+)/)?(?P<w>[0-9]+)(?:/(?P<h>[0-9]+))?(?P<ext>\..*)?$")
_DIGITS = re.compile(r"[0-9]+")
_FORMATS = {"": "jpeg", ".jpg": "jpeg", ".webp": "webp"}
_CONTENT_TYPES = {"jpeg": "image/jpeg", "webp": "image/webp"}
_EXTENSIONS = {"jpeg": "jpg", "webp": "webp"}


class ImageRequest(NamedTuple):
    """What an image URL asks for; equal requests get identical bytes."""

    image_id: int
    width: int
    height: int
    fmt: str  # "jpeg" or "webp"


class InvalidImageRequest(ValueError):
    """A path the host refuses, with the status and message picsum would answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


def size_image_id(width: int, height: int) -> int:
    """The photo that `/<width>/<height>` always serves (distinct for every valid size)."""
    return SIZE_ID_BASE + width * (MAX_SIZE + 1) + height


def _dimension(digits: str) -> int:
    """The number, or just above the limit for a longer one (Python refuses 4300+ digits)."""
    return int(digits) if len(digits) <= 9 else MAX_SIZE + 1


def _check_size(width: int, height: int) -> None:
    if not (1 <= width <= MAX_SIZE and 1 <= height <= MAX_SIZE):
        raise InvalidImageRequest(400, "Invalid size")


def parse_image_path(path: str) -> ImageRequest:
    """Resolve a picsum path to the photo it serves, or raise `InvalidImageRequest`.

    The order of checks is picsum's: path shape (404), size syntax and extension (400), image id
    (404), size limit (400).
    """
    match = _IMAGE_PATH.match(path)
    if match is None:
        raise InvalidImageRequest(404, "page not found")
    ext = (match["ext"] or "").lower()
    if ext not in _FORMATS:
        raise InvalidImageRequest(400, "Invalid file extension")
    width = _dimension(match["w"])
    height = _dimension(match["h"]) if match["h"] is not None else width
    raw_id = match["id"]
    if raw_id is None:
        _check_size(width, height)
        return ImageRequest(size_image_id(width, height), width, height, _FORMATS[ext])
    if not (_DIGITS.fullmatch(raw_id) and len(raw_id) <= 19 and int(raw_id) <= MAX_IMAGE_ID):
        raise InvalidImageRequest(404, "Image does not exist")
    _check_size(width, height)
    return ImageRequest(int(raw_id), width, height, _FORMATS[ext])


class ImageHost:
    """The state behind one image-host app: its world seed, encoding settings and byte cache."""

    def __init__(
        self,
        seed: int = 0,
        *,
        quality: int = JPEG_QUALITY,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        huge_body_bytes: int = DEFAULT_HUGE_BODY_BYTES,
        slow_bytes_per_second: int = DEFAULT_SLOW_BYTES_PER_SECOND,
    ) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        if huge_body_bytes < 1024:
            raise ValueError(f"huge_body_bytes must be at least 1024, got {huge_body_bytes}")
        if slow_bytes_per_second < 1:
            raise ValueError(f"slow_bytes_per_second must be >= 1, got {slow_bytes_per_second}")
        self.seed = seed
        self.quality = quality
        self.cache = ByteLRU(cache_bytes)
        self.huge_body_bytes = huge_body_bytes
        self.slow_bytes_per_second = slow_bytes_per_second

    def image_bytes(self, req: ImageRequest) -> bytes:
        """The encoded photo, from the cache when it is there."""
        return self.cache.get_or_make(req, lambda: self._encode(req))

    def _encode(self, req: ImageRequest) -> bytes:
        if req.fmt == "jpeg":
            return photo_jpeg(self.seed, req.image_id, req.width, req.height, self.quality)
        out = io.BytesIO()
        photo(self.seed, req.image_id, req.width, req.height).save(out, "WEBP", quality=80)
        return out.getvalue()

    def etag(self, req: ImageRequest) -> str:
        """A strong ETag without hashing: the bytes are a pure function of these values."""
        return f'"{self.seed:x}-{req.image_id:x}-{req.width}x{req.height}-{self.quality}-{req.fmt}"'

    def asset(self, name: str) -> bytes:
        """One of the fixed hostile files, built once."""
        return self.cache.get_or_make(("asset", name), lambda: _ASSETS[name][1](self.seed))


# --- the fixed hostile files -------------------------------------------------------------------


def _hostile_photo(seed: int, k: int, width: int = 320, height: int = 240) -> Image.Image:
    return photo(seed, HOSTILE_ID_BASE + k, width, height)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _alpha_png(seed: int) -> bytes:
    rgba = _hostile_photo(seed, 1).convert("RGBA")
    ys, xs = np.mgrid[0:240, 0:320].astype(np.float32)
    alpha = 255.0 * (0.5 + 0.5 * np.sin(xs / 23.0) * np.cos(ys / 17.0))
    rgba.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return _encode(rgba, "PNG")


def _palette_gif(seed: int) -> bytes:
    return _encode(_hostile_photo(seed, 2).convert("P", palette=Image.Palette.ADAPTIVE), "GIF")


def _animated_gif(seed: int) -> bytes:
    frames = [
        _hostile_photo(seed, 10 + k, 160, 120).convert("P", palette=Image.Palette.ADAPTIVE)
        for k in range(4)
    ]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def _cmyk_jpg(seed: int) -> bytes:
    return _encode(_hostile_photo(seed, 3).convert("CMYK"), "JPEG", quality=90)


def _gray16_png(seed: int) -> bytes:
    luma = np.asarray(_hostile_photo(seed, 4).convert("L"), dtype=np.uint16)
    fine = (np.arange(320, dtype=np.uint16) * 197 % 256)[None, :]
    return _encode(Image.fromarray(luma * 256 + fine), "PNG")


def _bilevel_png(seed: int) -> bytes:
    return _encode(_hostile_photo(seed, 5).convert("1"), "PNG")


def _webp(seed: int) -> bytes:
    return _encode(_hostile_photo(seed, 6), "WEBP", quality=80)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _bomb_png(seed: int) -> bytes:
    """A 4 kB PNG that declares 60000x60000 RGB pixels (10.8 GB decoded).

    Its IDAT is a complete zlib stream of 4 MiB of zeros (the first rows), so a decoder that
    trusts the header allocates the whole canvas and inflates ~1000x before it notices the end.
    """
    del seed  # the bomb is the same in every world
    header = struct.pack(">IIBBBBB", BOMB_SIZE, BOMB_SIZE, 8, 2, 0, 0, 0)
    packer = zlib.compressobj(9)
    zeros = bytes(1 << 16)
    idat = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _not_image_pdf(seed: int) -> bytes:
    """A small valid one-page PDF with a correct cross-reference table."""
    text = f"BT /F1 24 Tf 72 720 Td (sleuth offline web, world {seed}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _jpeg_header(seed: int) -> bytes:
    """The segments of a real JPEG up to and including its start-of-scan header."""
    data = photo_jpeg(seed, HOSTILE_ID_BASE + 7, 640, 480)
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return data[: pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")]


_ASSETS: dict[str, tuple[str, Callable[[int], bytes]]] = {
    "alpha.png": ("image/png", _alpha_png),
    "palette.gif": ("image/gif", _palette_gif),
    "animated.gif": ("image/gif", _animated_gif),
    "cmyk.jpg": ("image/jpeg", _cmyk_jpg),
    "gray16.png": ("image/png", _gray16_png),
    "bilevel.png": ("image/png", _bilevel_png),
    "image.webp": ("image/webp", _webp),
    "bomb": ("image/png", _bomb_png),
    "not-image": ("application/octet-stream", _not_image_pdf),
    "jpeg-header": ("image/jpeg", _jpeg_header),
}
_HOSTILE_FILES = frozenset(_ASSETS) - {"jpeg-header"}

_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>"
    b"<body><h1>Checking your browser before accessing the image.</h1></body></html>\n"
)


# --- the Flask side ----------------------------------------------------------------------------


def error_response(status: int, message: str) -> Response:
    """An error as picsum writes it: plain text, or JSON for `Accept: application/json`."""
    if request.headers.get("Accept") == "application/json":
        body = json.dumps({"error": message}) + "\n"
        response = Response(body, status, mimetype="application/json")
    else:
        response = Response(f"{message}\n", status, content_type="text/plain; charset=utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = ERROR_CACHE_CONTROL
    return response


def _image_response(host: ImageHost, req: ImageRequest) -> Response:
    etag = host.etag(req)
    filename = f"{req.image_id}-{req.width}x{req.height}.{_EXTENSIONS[req.fmt]}"
    headers = {
        "Cache-Control": IMAGE_CACHE_CONTROL,
        "ETag": etag,
        "Picsum-ID": str(req.image_id),
        "Content-Disposition": f'inline; filename="{filename}"',
        "Access-Control-Allow-Origin": "*",
        "Timing-Allow-Origin": "*",
    }
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers=headers)
    return Response(host.image_bytes(req), content_type=_CONTENT_TYPES[req.fmt], headers=headers)


def _streamed(chunks: Iterator[bytes], content_type: str, length: int | None) -> Response:
    headers = {"Cache-Control": IMAGE_CACHE_CONTROL}
    if length is not None:
        headers["Content-Length"] = str(length)
    return Response(chunks, content_type=content_type, headers=headers, direct_passthrough=True)


def _found(endpoint: str, **values: object) -> Response:
    """A 302 to another route of the blueprint, wherever it is mounted."""
    return Response(status=302, headers={"Location": url_for(f"imagehost.{endpoint}", **values)})


def imagehost_blueprint(host: ImageHost) -> Blueprint:
    """The picsum-shaped routes and the hostile ones, serving `host`'s world."""
    bp = Blueprint("imagehost", __name__)

    @bp.errorhandler(InvalidImageRequest)
    def _refused(exc: InvalidImageRequest) -> Response:
        return error_response(exc.status, exc.message)

    def image(
        size: str | None = None,
        width: str | None = None,
        height: str | None = None,
        n: str | None = None,
    ) -> Response:
        parts = ([] if n is None else ["id", n]) + ([size] if size is not None else [width, height])
        return _image_response(host, parse_image_path("/" + "/".join(map(str, parts))))

    for endpoint, rule in (
        ("square", "/<size>"),
        ("sized", "/<width>/<height>"),
        ("id_square", "/id/<n>/<size>"),
        ("id_sized", "/id/<n>/<width>/<height>"),
    ):
        bp.add_url_rule(rule, endpoint, image, methods=["GET"])

    @bp.get("/error/<code>")
    def error(code: str) -> Response:
        if not (_DIGITS.fullmatch(code) and 200 <= int(code) <= 599):
            return error_response(404, "page not found")
        status = int(code)
        if status in (204, 304):
            return Response(status=status)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown Status"
        return error_response(status, f"{status} {reason}")

    def sized_jpeg(width: str, height: str) -> bytes:
        return host.image_bytes(parse_image_path(f"/{width}/{height}"))

    @bp.get("/hostile/slow/<width>/<height>")
    def slow(width: str, height: str) -> Response:
        data = sized_jpeg(width, height)
        rate = request.args.get("bps", type=int) or host.slow_bytes_per_second
        step = max(1, rate // 4)
        stop = stopping(request.environ)

        def drip() -> Iterator[bytes]:
            for start in range(0, len(data), step):
                yield data[start : start + step]
                if stop.wait(0.25):
                    return

        return _streamed(drip(), "image/jpeg", len(data))

    @bp.get("/hostile/truncated/<width>/<height>")
    def truncated(width: str, height: str) -> Response:
        data = sized_jpeg(width, height)
        return Response(
            data[: len(data) // 2],
            content_type="image/jpeg",
            headers={"Cache-Control": IMAGE_CACHE_CONTROL},
        )

    @bp.get("/hostile/html-as-jpeg")
    def html_as_jpeg() -> Response:
        return Response(_HTML, content_type="image/jpeg")

    @bp.get("/hostile/redirect-loop")
    def redirect_loop() -> Response:
        return _found("redirect_loop_b")

    @bp.get("/hostile/redirect-loop/b")
    def redirect_loop_b() -> Response:
        return _found("redirect_loop")

    @bp.get("/hostile/redirect/<int:hops>")
    def redirect(hops: int) -> Response:
        if hops > MAX_REDIRECTS:
            return error_response(400, f"Invalid redirect count (at most {MAX_REDIRECTS})")
        if hops > 0:
            return _found("redirect", hops=hops - 1)
        return _image_response(host, ImageRequest(HOSTILE_ID_BASE + 8, 640, 480, "jpeg"))

    names = ", ".join(f"'{name}'" for name in sorted(_HOSTILE_FILES))

    @bp.get(f"/hostile/<any({names}):name>")
    def hostile_file(name: str) -> Response:
        content_type, _ = _ASSETS[name]
        return Response(
            host.asset(name),
            content_type=content_type,
            headers={"Cache-Control": IMAGE_CACHE_CONTROL},
        )

    @bp.get("/hostile/huge-body")
    def huge_body() -> Response:
        head = host.asset("jpeg-header")
        total = host.huge_body_bytes
        declare = request.args.get("length", "1") != "0"

        def body() -> Iterator[bytes]:
            yield head
            filler = bytes(256 * 1024)
            left = total - len(head)
            while left > 0:
                chunk = filler if left >= len(filler) else filler[:left]
                left -= len(chunk)
                yield chunk

        return _streamed(body(), "image/jpeg", total if declare else None)

    @bp.get("/hostile/no-length")
    def no_length() -> Response:
        data = host.image_bytes(ImageRequest(HOSTILE_ID_BASE + 9, 640, 480, "jpeg"))
        chunks = (data[i : i + 16384] for i in range(0, len(data), 16384))
        return _streamed(chunks, "image/jpeg", None)

    @bp.get("/hostile/reset")
    def reset() -> Response:
        data = host.image_bytes(ImageRequest(HOSTILE_ID_BASE + 10, 640, 480, "jpeg"))

        def body() -> Iterator[bytes]:
            yield data[: len(data) // 2]
            raise AbortConnection

        return _streamed(body(), "image/jpeg", len(data))

    return bp


SOCIAL = "sleuth.social"
"""The `app.extensions` key of the social emulators, by network."""


def create_imagehost_app(
    seed: int = 0,
    *,
    quality: int = JPEG_QUALITY,
    cache_bytes: int = DEFAULT_CACHE_BYTES,
    huge_body_bytes: int = DEFAULT_HUGE_BODY_BYTES,
    slow_bytes_per_second: int = DEFAULT_SLOW_BYTES_PER_SECOND,
    world: ArtWorld | None = None,
    rate_limits: bool = True,
    window_scale: float = 1.0,
    quota_scale: float = 1.0,
    forums: Forums | None = None,
) -> Flask:
    """A Flask app serving the image host of world `seed` at the root, as picsum.photos does,
    the emulated social APIs and art sites of `world` (default `ArtWorld(seed)`) under their
    prefixes, with their real rate limits unless `rate_limits` is False (benchmarks), their
    windows and counts scaled by `window_scale` and `quota_scale` (`Limit.scaled`), and the
    emulated forums (`forums`, default `Forums.default(seed)`) under `/discourse/<name>` and
    `/bb/<name>/xml`. The social emulators (their limiters count what each client was served)
    are in `app.extensions[SOCIAL]` by network."""
    world = world or ArtWorld(seed)
    host = ImageHost(
        seed,
        quality=quality,
        cache_bytes=cache_bytes,
        huge_body_bytes=huge_body_bytes,
        slow_bytes_per_second=slow_bytes_per_second,
    )
    app = Flask(__name__)
    app.register_blueprint(imagehost_blueprint(host))
    app.register_blueprint(artsites_blueprint(world))

    def scaled(limit: Limit) -> Limit:
        return limit.scaled(window_scale, quota_scale)

    x = XEmulator(
        world, limits={k: scaled(v) for k, v in X_LIMITS.items()} if rate_limits else None
    )
    mastodon = MastodonEmulator(
        world,
        limits=(scaled(MASTODON_LIMITS[0]), scaled(MASTODON_LIMITS[1])) if rate_limits else None,
    )
    bluesky = BlueskyEmulator(world, limit=scaled(BLUESKY_LIMIT) if rate_limits else None)
    app.extensions[SOCIAL] = {"x": x, "mastodon": mastodon, "bluesky": bluesky}
    app.register_blueprint(x_blueprint(x))
    app.register_blueprint(mastodon_blueprint(mastodon))
    for blueprint in bluesky_blueprints(bluesky):
        app.register_blueprint(blueprint)
    forums = forums or Forums.default(seed)
    app.register_blueprint(discourse_blueprint(forums))
    app.register_blueprint(bbxml_blueprint(forums))

    @app.errorhandler(404)
    def _not_found(_: Exception) -> Response:
        return error_response(404, "page not found")

    @app.errorhandler(405)
    def _not_allowed(_: Exception) -> Response:
        return error_response(405, "Method Not Allowed")

    return app
