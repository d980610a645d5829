"""core tables: per-minute outcome counters

Revision ID: core_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = ("core",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_counts",
        sa.Column("app", sa.String(32), nullable=False),
        sa.Column("minute", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("app", "minute", "outcome", name="pk_outcome_counts"),
    )


def downgrade() -> None:
    op.drop_table("outcome_counts")
