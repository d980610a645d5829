"""Reading a response body within the size cap, and decoding it as what the caller expects.

A body is read raw and decoded (gzip, deflate) with a bound on both, so a decompression bomb
stops at the cap. What the caller expects decides the rest: an image is sniffed from its first
bytes (`sleuth.imaging.sniff`) so an HTML page served as image/jpeg is dropped early; JSON and XML
are parsed, a malformed document failing as `bad_json`/`bad_xml` with where it broke. XML is
parsed with entity declarations refused, so neither an entity bomb (billion laughs) nor an
external entity (a local file, another URL) can be expanded.
"""

from __future__ import annotations

import contextlib
import json
import xml.etree.ElementTree as ET
import zlib
from typing import Any, Literal, NoReturn
from xml.parsers import expat

import httpx

from sleuth.imaging.sniff import SNIFF_BYTES, sniff_image_type
from sleuth.net.errors import ERROR_BODY_BYTES, FetchError

Expect = Literal["image", "json", "xml"]
IMAGE_ACCEPT = "image/avif,image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8"
ACCEPT: dict[str, str] = {
    "image": IMAGE_ACCEPT,
    "json": "application/json",
    "xml": "application/xml, text/xml;q=0.9",
}
# Redirect and error bodies up to this size are read to keep their connection alive.
DISCARD_LIMIT = 64 * 1024


class _Decoder:
    """Undoes a Content-Encoding with a bound on the output, so a small compressed body that
    expands to gigabytes (a decompression bomb) is stopped at the size cap, not in memory."""

    def __init__(self, encoding: str, url: httpx.URL) -> None:
        self._url = url
        self._encoding = encoding.strip().lower()
        self._zlib: Any = None
        if self._encoding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._encoding not in ("", "identity", "deflate"):
            raise FetchError("protocol", f"{url}: unsupported Content-Encoding {encoding!r}")

    def feed(self, data: bytes, room: int) -> bytes:
        """Decode the next raw chunk into at most `room` bytes (more means over the cap)."""
        if self._encoding in ("", "identity"):
            return data
        if self._zlib is None:  # deflate: zlib-wrapped as the RFC says, or raw as some send
            wrapped = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            out: bytes = self._zlib.decompress(data, room)
        except zlib.error as exc:
            raise FetchError("protocol", f"{self._url}: bad {self._encoding} body: {exc}") from None
        return out

    def check_complete(self) -> None:
        if self._zlib is not None and not self._zlib.eof:
            raise FetchError("protocol", f"{self._url}: {self._encoding} body is truncated")


async def read_body(
    response: httpx.Response, url: httpx.URL, cap: int, expect: Expect | None, content_type: str
) -> tuple[bytes, str | None]:
    """The decoded body, raw and decoded bytes each within `cap`, and its sniffed image type
    when an image is expected (sniffed as soon as its first bytes are in).

    A network read returns up to 64 KiB, so at most one such chunk past the cap is received
    before the connection is dropped; nothing past the cap is kept."""
    decoder = _Decoder(response.headers.get("Content-Encoding", ""), url)
    chunks: list[bytes] = []
    raw = size = 0
    image_type: str | None = None
    sniffed = expect != "image"
    async for data in response.aiter_raw():
        raw += len(data)
        chunk = decoder.feed(data, cap - size + 1)
        size += len(chunk)
        if raw > cap or size > cap:
            raise FetchError("too_large", f"{url} sent more than the cap of {cap} bytes")
        chunks.append(chunk)
        if not sniffed and size >= SNIFF_BYTES:
            image_type = sniff(b"".join(chunks)[:SNIFF_BYTES], url, content_type)
            sniffed = True
    decoder.check_complete()
    body = b"".join(chunks)
    if not sniffed:
        image_type = sniff(body, url, content_type)
    return body, image_type


async def discard_body(response: httpx.Response, url: httpx.URL) -> bytes:
    """Read a small redirect or error body to its end, so its connection stays reusable, and
    return its first `ERROR_BODY_BYTES`, decoded; a large or broken one is left to `aclose`,
    which drops the connection."""
    kept = b""
    read = 0
    with contextlib.suppress(FetchError):
        decoder = _Decoder(response.headers.get("Content-Encoding", ""), url)
        async for data in response.aiter_raw():
            read += len(data)
            if len(kept) < ERROR_BODY_BYTES:
                kept += decoder.feed(data, ERROR_BODY_BYTES - len(kept))
            if read > DISCARD_LIMIT:
                break
    return kept[:ERROR_BODY_BYTES]


def sniff(head: bytes, url: httpx.URL | str, content_type: str) -> str:
    """The image type of a body from its first bytes, or `not_image` saying what it is served as."""
    kind = sniff_image_type(head)
    if kind is None:
        served = content_type or "no Content-Type"
        raise FetchError(
            "not_image", f"{url} is served as {served} but starts with {head[:16]!r}, no image"
        )
    return kind


def parse_json(body: bytes, url: httpx.URL | str) -> Any:
    """The body parsed as JSON, or `bad_json` saying where it broke."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError; too deep a nesting
        raise FetchError("bad_json", f"{url} is not valid JSON: {exc}") from None


def _refuse_entities(*_args: object) -> NoReturn:
    raise ValueError("entity declarations are refused")


def parse_xml(body: bytes, url: httpx.URL | str) -> ET.Element:
    """The body parsed as XML, or `bad_xml`; a document declaring entities is refused.

    expat builds the tree directly (ElementTree's own parser offers no entity hooks), with
    every entity declaration refused and external DTDs never read."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _refuse_entities
    parser.UnparsedEntityDeclHandler = _refuse_entities
    parser.ExternalEntityRefHandler = _refuse_entities
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, ValueError) as exc:
        raise FetchError("bad_xml", f"{url} is not acceptable XML: {exc}") from None
    return builder.close()


def decode(expect: Expect | None, body: bytes, url: httpx.URL | str) -> Any:
    """The document a JSON or XML body holds (None for anything else)."""
    if expect == "json":
        return parse_json(body, url)
    if expect == "xml":
        return parse_xml(body, url)
    return None
