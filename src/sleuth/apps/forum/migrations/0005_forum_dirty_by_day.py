"""forum app: the dirty keys by day, so analytics finds a site's first dirty day and a window's
keys as index ranges (the primary key leads with the board: at 10M posts each window read the
site's every key)

Revision ID: forum_0005
Revises: forum_0004
"""

from alembic import op

revision = "forum_0005"
down_revision = "forum_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_forum_dirty_site_id_day", "forum_dirty", ["site_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_forum_dirty_site_id_day", table_name="forum_dirty")
