"""core tables: periodic job schedules, leader leases, per-host politeness clocks

The state every worker process shares through the database: which periodic jobs are due
(`sleuth.jobs.schedule`), which process leads the scheduling when the queue is not on Redis,
and when each host may next be sent a request (`sleuth.net.clocks`).

Revision ID: core_0003
Revises: core_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("every", sa.Double, nullable=False),
        sa.Column("next_due", sa.Double, nullable=False),
        sa.Column("last_enqueued_at", sa.Double, nullable=True),
        sa.Column("last_job_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_schedules"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "host_clocks",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("next_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_host_clocks"),
    )
    op.create_index("ix_host_clocks_next_at", "host_clocks", ["next_at"])


def downgrade() -> None:
    op.drop_table("host_clocks")
    op.drop_table("leases")
    op.drop_table("schedules")
