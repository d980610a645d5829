"""graph app: the posts of stored timelines, and each dialect's full-text index of their text

Revision ID: graph_0002
Revises: graph_0001

SQLite: an FTS5 table whose content is graph_posts (by its integer id), kept by triggers.
PostgreSQL: a GIN index of to_tsvector('simple', text). MariaDB/MySQL: a FULLTEXT index.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "graph_0002"
down_revision = "graph_0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LONG_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

_SQLITE = (
    "CREATE VIRTUAL TABLE graph_posts_fts USING fts5(text, content='graph_posts', "
    "content_rowid='id')",
    "CREATE TRIGGER graph_posts_fts_insert AFTER INSERT ON graph_posts BEGIN "
    "INSERT INTO graph_posts_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER graph_posts_fts_delete AFTER DELETE ON graph_posts BEGIN "
    "INSERT INTO graph_posts_fts(graph_posts_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER graph_posts_fts_update AFTER UPDATE ON graph_posts BEGIN "
    "INSERT INTO graph_posts_fts(graph_posts_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO graph_posts_fts(rowid, text) VALUES (new.id, new.text); END",
)


def upgrade() -> None:
    op.create_table(
        "graph_posts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("network", sa.String(16), nullable=False),
        sa.Column("post_id", sa.String(255), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("created_at", sa.Double),
        sa.Column("lang", sa.String(16)),
        sa.Column("text", LONG_TEXT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_graph_posts"),
        sa.UniqueConstraint("network", "post_id", name="uq_graph_posts_network_post_id"),
    )
    op.create_index("ix_graph_posts_network_account_id", "graph_posts", ["network", "account_id"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_graph_posts_text_search ON graph_posts "
            "USING GIN (to_tsvector('simple', text))"
        )
    else:
        op.execute("CREATE FULLTEXT INDEX ix_graph_posts_text_search ON graph_posts (text)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER graph_posts_fts_{trigger}")
        op.execute("DROP TABLE graph_posts_fts")
    op.drop_table("graph_posts")
