"""sample app: its notes

Revision ID: sample_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "sample_0001"
down_revision = None
branch_labels = ("sample",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "sample_notes",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("text", sa.String(400), nullable=False),
        sa.Column("saved_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sample_notes"),
    )


def downgrade() -> None:
    op.drop_table("sample_notes")
