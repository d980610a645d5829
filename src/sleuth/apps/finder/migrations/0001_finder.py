"""finder app: accounts, posts, images, requests, per-address limits

Revision ID: finder_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "finder_0001"
down_revision = None
branch_labels = ("finder",)
depends_on = "core_0001"

NETWORK = sa.String(16)
ACCOUNT_ID = sa.String(96)
POST_ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "finder_accounts",
        sa.Column("network", NETWORK, nullable=False),
        sa.Column("account_id", ACCOUNT_ID, nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("cursor", POST_ID),
        sa.Column("scanned_at", sa.Double),
        sa.Column("scan_wanted_at", sa.Double),
        sa.Column("scan_error", sa.Text),
        sa.Column("pending_cursor", POST_ID),
        sa.Column("scan_owner", sa.String(64)),
        sa.Column("scan_owner_until", sa.Double),
        sa.Column("last_use", sa.Double),
        sa.Column("uses_count", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("network", "account_id", name="pk_finder_accounts"),
    )
    op.create_index("ix_finder_accounts_scanned_at", "finder_accounts", ["scanned_at"])
    op.create_table(
        "finder_posts",
        sa.Column("network", NETWORK, nullable=False),
        sa.Column("post_id", POST_ID, nullable=False),
        sa.Column("account_id", ACCOUNT_ID, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("images_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("network", "post_id", name="pk_finder_posts"),
    )
    op.create_index("ix_finder_posts_account", "finder_posts", ["network", "account_id"])
    op.create_table(
        "finder_images",
        sa.Column("network", NETWORK, nullable=False),
        sa.Column("post_id", POST_ID, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("account_id", ACCOUNT_ID, nullable=False),
        sa.Column("media_url", sa.Text, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("phash", sa.BigInteger),
        sa.Column("phash_mirror", sa.BigInteger),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("network", "post_id", "position", name="pk_finder_images"),
    )
    op.create_index("ix_finder_images_account", "finder_images", ["network", "account_id", "state"])
    op.create_index("ix_finder_images_state", "finder_images", ["state", "updated_at"])
    op.create_table(
        "finder_requests",
        sa.Column("id", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.String(48)),
        sa.Column("has_first_time_scan", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("accounts", sa.Text, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("account_name", sa.String(255)),
        sa.Column("phash", sa.BigInteger),
        sa.Column("phash_mirror", sa.BigInteger),
        sa.Column("artwork_at", sa.Double),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double),
        sa.Column("expires_at", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_finder_requests"),
    )
    op.create_index("ix_finder_requests_ip", "finder_requests", ["ip", "finished_at"])
    op.create_index("ix_finder_requests_expires", "finder_requests", ["expires_at"])
    op.create_table(
        "finder_ip_limits",
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("accepted_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("ip", name="pk_finder_ip_limits"),
    )


def downgrade() -> None:
    for table in (
        "finder_ip_limits",
        "finder_requests",
        "finder_images",
        "finder_posts",
        "finder_accounts",
    ):
        op.drop_table(table)
