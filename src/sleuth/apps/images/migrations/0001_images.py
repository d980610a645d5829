"""images app: images, their sources, crawls and per-line outcomes

Revision ID: images_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "images_0001"
down_revision = None
branch_labels = ("images",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("phash", sa.BigInteger, nullable=False),
        sa.Column("gray_key", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("md5", name="pk_images"),
    )
    op.create_index("ix_images_first_seen", "images", ["first_seen"])
    op.create_table(
        "image_sources",
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("url_key", sa.String(40), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("md5", "url_key", name="pk_image_sources"),
    )
    op.create_table(
        "crawls",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("lines_total", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawls"),
    )
    op.create_table(
        "crawl_items",
        sa.Column("crawl_id", sa.String(40), nullable=False),
        sa.Column("line_no", sa.Integer, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("crawl_id", "line_no", name="pk_crawl_items"),
    )
    op.create_index("ix_crawl_items_crawl_id_outcome", "crawl_items", ["crawl_id", "outcome"])


def downgrade() -> None:
    op.drop_table("crawl_items")
    op.drop_table("crawls")
    op.drop_table("image_sources")
    op.drop_index("ix_images_first_seen", "images")
    op.drop_table("images")
