"""Tables of the images app: one row per distinct image (by MD5) and its source URLs. Crawls
and the outcome of every line of their URL lists are the crawl layer's (`sleuth.crawl`)."""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.store.schema import metadata

images = sa.Table(
    "images",
    metadata,
    sa.Column("md5", sa.String(32), primary_key=True),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("phash", sa.BigInteger, nullable=False),  # signed two's complement of the 64 bits
    sa.Column("gray_key", sa.String(64), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
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


def phash_to_db(value: int) -> int:
    """64 unsigned bits → signed BIGINT, as every database stores it."""
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_from_db(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
