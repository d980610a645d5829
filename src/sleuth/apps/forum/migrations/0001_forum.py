"""forum app: sites, users and their names, categories, boards, topics, posts, edits, quotes, links

Revision ID: forum_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "forum_0001"
down_revision = None
branch_labels = ("forum",)
depends_on = "core_0001"


def upgrade() -> None:
    op.create_table(
        "forum_boards",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("board_id", sa.BigInteger, nullable=False),
        sa.Column("category_id", sa.BigInteger),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("topic_count", sa.Integer, nullable=False),
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("high_water", sa.Double),
        sa.PrimaryKeyConstraint("site_id", "board_id", name="pk_forum_boards"),
    )
    op.create_table(
        "forum_categories",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("category_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "category_id", name="pk_forum_categories"),
    )
    op.create_table(
        "forum_edits",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("edited_at", sa.Double),
        sa.Column("editor_id", sa.BigInteger),
        sa.Column("seen_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "post_id", "edit_count", name="pk_forum_edits"),
    )
    op.create_table(
        "forum_links",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("url_key", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "post_id", "url_key", "kind", name="pk_forum_links"),
    )
    op.create_index("ix_forum_links_site_id_domain", "forum_links", ["site_id", "domain"])
    op.create_table(
        "forum_posts",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("topic_id", sa.BigInteger, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("last_edit_user_id", sa.BigInteger),
        sa.Column("last_edit_at", sa.Double),
        sa.Column("reply_to_number", sa.Integer),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("cooked", sa.Text),
        sa.PrimaryKeyConstraint("site_id", "post_id", name="pk_forum_posts"),
    )
    op.create_index("ix_forum_posts_site_id_created_at", "forum_posts", ["site_id", "created_at"])
    op.create_index(
        "ix_forum_posts_site_id_topic_id_number", "forum_posts", ["site_id", "topic_id", "number"]
    )
    op.create_index("ix_forum_posts_site_id_user_id", "forum_posts", ["site_id", "user_id"])
    op.create_table(
        "forum_quotes",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("post_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("target_topic_id", sa.BigInteger, nullable=False),
        sa.Column("target_post_id", sa.BigInteger, nullable=False),
        sa.Column("target_number", sa.Integer, nullable=False),
        sa.Column("quoted_name", sa.String(255), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "site_id",
            "post_id",
            "kind",
            "target_topic_id",
            "target_post_id",
            "target_number",
            name="pk_forum_quotes",
        ),
    )
    op.create_table(
        "forum_sites",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("first_crawled", sa.Double, nullable=False),
        sa.Column("last_crawled", sa.Double, nullable=False),
        sa.Column("high_water", sa.Double),
        sa.PrimaryKeyConstraint("id", name="pk_forum_sites"),
        sa.UniqueConstraint("kind", "url", name="uq_forum_sites_kind_url"),
    )
    op.create_table(
        "forum_topics",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("topic_id", sa.BigInteger, nullable=False),
        sa.Column("board_id", sa.BigInteger, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("subtitle", sa.Text, nullable=False),
        sa.Column("slug", sa.String(255), nullable=False),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("created_at", sa.Double),
        sa.Column("last_posted_at", sa.Double),
        sa.Column("posts_count", sa.Integer, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False),
        sa.Column("pinned", sa.Boolean, nullable=False),
        sa.Column("views", sa.Integer, nullable=False),
        sa.Column("crawled_posts", sa.Integer, nullable=False),
        sa.Column("crawled_last_posted_at", sa.Double),
        sa.Column("crawled_at", sa.Double),
        sa.PrimaryKeyConstraint("site_id", "topic_id", name="pk_forum_topics"),
    )
    op.create_index("ix_forum_topics_site_id_board_id", "forum_topics", ["site_id", "board_id"])
    op.create_table(
        "forum_user_names",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "user_id", "name", name="pk_forum_user_names"),
    )
    op.create_table(
        "forum_users",
        sa.Column("site_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("group_id", sa.Integer),
        sa.Column("first_seen", sa.Double, nullable=False),
        sa.Column("last_seen", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("site_id", "user_id", name="pk_forum_users"),
    )


def downgrade() -> None:
    op.drop_table("forum_users")
    op.drop_table("forum_user_names")
    op.drop_table("forum_topics")
    op.drop_table("forum_sites")
    op.drop_table("forum_quotes")
    op.drop_table("forum_posts")
    op.drop_table("forum_links")
    op.drop_table("forum_edits")
    op.drop_table("forum_categories")
    op.drop_table("forum_boards")
