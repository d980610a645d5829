"""The images app's records and tables: one row per distinct image (by MD5) and its source
URLs. Crawls and the outcome of every line of their URL lists are the crawl layer's
(`sleuth.crawl`).

An image's fields are declared once, in `Pixels` → `ImageContent` → `ImageRecord` (see
`sleuth.record`): the `images` table's columns, the JSON of every answer that shows an image
and those answers' OpenAPI schemas all come from these classes."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from sleuth.imaging.hashes import phash_from_db, phash_hex, phash_to_db
from sleuth.record import TIME, Codec, columns, record_field
from sleuth.store.schema import metadata

MD5_PATTERN = "^[0-9a-f]{32}$"


# Written as 16 hex digits (as imagehash prints it), stored as a signed BIGINT.
PHASH = Codec(
    {"type": "string", "pattern": "^[0-9a-f]{16}$"},
    to_json=phash_hex,
    to_db=phash_to_db,
    from_db=phash_from_db,
)


@dataclass(frozen=True)
class Pixels:
    """What decoding the downloaded file finds (the grayscale stage's result; the gray pixels
    themselves are a blob named by `gray_key`)."""

    width: int = record_field("pixels", column=sa.Integer, minimum=1)
    height: int = record_field("pixels", column=sa.Integer, minimum=1)
    phash: int = record_field("64-bit pHash", codec=PHASH, column=sa.BigInteger)
    gray_key: str = record_field(in_json=False, column=sa.String(64))
    format: str = record_field("format of the downloaded file", column=sa.String(16))
    mode: str = record_field("Pillow mode of the downloaded file", column=sa.String(16))


@dataclass(frozen=True)
class ImageContent(Pixels):
    """An image as its bytes define it: what is stored once per MD5."""

    md5: str = record_field(
        "MD5 of the downloaded file", column=sa.String(32), primary_key=True, pattern=MD5_PATTERN
    )
    bytes: int = record_field("size of the downloaded file", column=sa.Integer, minimum=0)


@dataclass(frozen=True)
class ImageRecord(ImageContent):
    """A stored image: a row of `images`."""

    first_seen: float = record_field(codec=TIME, column=sa.Double)
    last_seen: float = record_field(codec=TIME, column=sa.Double)


images = sa.Table(
    "images",
    metadata,
    *columns(ImageRecord),
    sa.Index("ix_images_first_seen", "first_seen"),
)

image_sources = sa.Table(
    "image_sources",
    metadata,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("url_key", sa.String(40), primary_key=True),  # sha1 of the URL: indexable anywhere
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
)
