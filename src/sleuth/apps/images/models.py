"""Tables of the images app: one row per distinct image (by MD5), its source URLs, and the
crawls with the outcome of every line of their URL lists."""

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

crawls = sa.Table(
    "crawls",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("lines_total", sa.Integer, nullable=True),  # known once the list is fully read
)

crawl_items = sa.Table(
    "crawl_items",
    metadata,
    sa.Column("crawl_id", sa.String(40), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=True),  # NULL while in progress
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("md5", sa.String(32), nullable=True),
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Index("ix_crawl_items_crawl_id_outcome", "crawl_id", "outcome"),
)


def phash_to_db(value: int) -> int:
    """64 unsigned bits → signed BIGINT, as every database stores it."""
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_from_db(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
