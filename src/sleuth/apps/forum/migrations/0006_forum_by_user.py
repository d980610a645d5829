"""forum app: the per-day and totals tables indexed by (site, user, board, year), so a stale
key's poster, pair and domain totals read that user's rows of that board and year, not a whole
board's (a totals row of every year of a board was summed from a scan of the board's rows: at 1M
posts a 1% incremental pass took 13% of a first pass); and the pair totals' most counted index
with the pair's ids, so the social graph's order is the index's

Revision ID: forum_0006
Revises: forum_0005
"""

from alembic import op

revision = "forum_0006"
down_revision = "forum_0005"
branch_labels = None
depends_on = None

DAYS = ("forum_activity", "forum_pair_days", "forum_link_days")
TOTALS = ("forum_poster_totals", "forum_pair_totals", "forum_user_domain_totals")
COLUMNS = ["site_id", "user_id", "board_id", "year"]
SCOPE = ["site_id", "board_id", "year", "kind", "count"]


def upgrade() -> None:
    for table in DAYS:
        op.drop_index(f"ix_{table}_site_id_user_id", table_name=table)
    for table in (*DAYS, *TOTALS):
        op.create_index(f"ix_{table}_site_id_user_id_board_id_year", table, COLUMNS)
    op.drop_index(
        "ix_forum_pair_totals_site_id_board_id_year_kind_count", table_name="forum_pair_totals"
    )
    op.create_index(
        "ix_forum_pair_totals_most_counted",
        "forum_pair_totals",
        [*SCOPE, "user_id", "target_user_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_forum_pair_totals_most_counted", table_name="forum_pair_totals")
    op.create_index(
        "ix_forum_pair_totals_site_id_board_id_year_kind_count", "forum_pair_totals", SCOPE
    )
    for table in (*DAYS, *TOTALS):
        op.drop_index(f"ix_{table}_site_id_user_id_board_id_year", table_name=table)
    for table in DAYS:
        op.create_index(f"ix_{table}_site_id_user_id", table, ["site_id", "user_id"])
