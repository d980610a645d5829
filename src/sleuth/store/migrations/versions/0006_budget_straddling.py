"""core tables: the requests a budget claimed in its window's last moments

They may reach the server after the window's reset and count in the next window there, so
the next window starts with them taken (`sleuth.net.budgets.STRADDLE`).

Revision ID: core_0006
Revises: core_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "core_0006"
down_revision = "core_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rate_budgets") as batch:
        batch.add_column(sa.Column("straddling", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("rate_budgets") as batch:
        batch.drop_column("straddling")
