"""core tables: crawl runs, their items and the record of failed items (`sleuth.crawl`)

Revision ID: core_0004
Revises: core_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crawl_runs",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("app", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("total", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_runs"),
    )
    op.create_index("ix_crawl_runs_app_created_at", "crawl_runs", ["app", "created_at"])
    op.create_table(
        "crawl_run_items",
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("item_key", sa.String(255), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("result", sa.String(255), nullable=True),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "item_key", name="pk_crawl_run_items"),
    )
    op.create_index("ix_crawl_run_items_run_id_state", "crawl_run_items", ["run_id", "state"])
    op.create_table(
        "crawl_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("item_key", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_failed_at", sa.Double, nullable=False),
        sa.Column("last_failed_at", sa.Double, nullable=False),
        sa.Column("resolved_at", sa.Double, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_failures"),
        sa.UniqueConstraint("run_id", "item_key", name="uq_crawl_failures_run_id_item_key"),
    )
    op.create_index("ix_crawl_failures_reason", "crawl_failures", ["reason"])


def downgrade() -> None:
    op.drop_table("crawl_failures")
    op.drop_table("crawl_run_items")
    op.drop_index("ix_crawl_runs_app_created_at", "crawl_runs")
    op.drop_table("crawl_runs")
