"""core tables: rate-limit budgets per (host, source address)

What sources announce in their rate-limit headers, shared by every worker process when the
queue is not on Redis (`sleuth.net.budgets`).

Revision ID: core_0005
Revises: core_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("quota", sa.Integer, nullable=True),
        sa.Column("remaining", sa.Integer, nullable=True),
        sa.Column("reset_at", sa.Double, nullable=True),
        sa.Column("blocked_until", sa.Double, nullable=True),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("host", "source", name="pk_rate_budgets"),
    )
    op.create_index("ix_rate_budgets_updated_at", "rate_budgets", ["updated_at"])


def downgrade() -> None:
    op.drop_table("rate_budgets")
