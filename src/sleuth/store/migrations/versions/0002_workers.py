"""core tables: worker registry, per-worker stage timings, stack-dump requests and answers

Revision ID: core_0002
Revises: core_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "core_0002"
down_revision = "core_0001"
branch_labels = None
depends_on = None

# TEXT holds only 64 KiB on MySQL/MariaDB; a stack dump or a busy worker's job list can be more.
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("queues", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("heartbeat_at", sa.Double, nullable=False),
        sa.Column("beat_every", sa.Double, nullable=False),
        sa.Column("stopped_at", sa.Double, nullable=True),
        sa.Column("loop_lag", sa.Double, nullable=False),
        sa.Column("running_jobs", LONG_TEXT, nullable=False),
        sa.PrimaryKeyConstraint("consumer", name="pk_workers"),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"])
    op.create_table(
        "worker_metrics",
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "queue", name="pk_worker_metrics"),
    )
    op.create_table(
        "stack_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("requested_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stack_requests"),
    )
    op.create_index("ix_stack_requests_requested_at", "stack_requests", ["requested_at"])
    op.create_table(
        "stack_dumps",
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("dumped_at", sa.Double, nullable=False),
        sa.Column("dump_text", LONG_TEXT, nullable=False),
        sa.PrimaryKeyConstraint("request_id", "consumer", name="pk_stack_dumps"),
    )
    op.create_index("ix_stack_dumps_dumped_at", "stack_dumps", ["dumped_at"])


def downgrade() -> None:
    op.drop_table("stack_dumps")
    op.drop_table("stack_requests")
    op.drop_table("worker_metrics")
    op.drop_table("workers")
