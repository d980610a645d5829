"""Full-text search of the collected posts, on each database's own index (migration
graph_0002): SQLite FTS5, PostgreSQL `to_tsvector('simple', text)` under GIN, MariaDB/MySQL
FULLTEXT.

A query is words: every word must be in a post (case does not matter; no stemming, so
`cats` does not find `cat`), and anything else in the text (quotes, operators) is no syntax
of any engine, so no query can fail. Best matches first, as the engine ranks them, then the
newest. On MariaDB, words shorter than its `innodb_ft_min_token_size` (3) and its stopwords
are not indexed, so they match nothing there."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.graph.models import POSTS_FTS, graph_posts

MAX_WORDS = 16
_WORD = re.compile(r"\w+")
_P = graph_posts.c


@dataclass(frozen=True)
class FoundPost:
    network: str
    post_id: str
    account_id: str
    url: str | None
    created_at: float | None
    lang: str | None
    text: str


def words_of(query: str) -> list[str]:
    """The words searched for: the first `MAX_WORDS` of the query, lower-cased."""
    return _WORD.findall(query.lower())[:MAX_WORDS]


def search_posts(conn: Connection, query: str, limit: int = 50) -> list[FoundPost]:
    """The posts holding every word of `query`, best first (none for a query without one)."""
    words = words_of(query)
    if not words:
        return []
    dialect = conn.dialect.name
    columns = [_P[f] for f in FoundPost.__dataclass_fields__]
    if dialect == "sqlite":
        fts = sa.table(POSTS_FTS, sa.column("rowid"), sa.column("rank"))
        match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        select = (
            sa.select(*columns)
            .join_from(graph_posts, fts, fts.c.rowid == _P.id)
            .where(sa.literal_column(POSTS_FTS).op("MATCH")(match))
            .order_by(fts.c.rank, _P.created_at.desc(), _P.id)
        )
    elif dialect == "postgresql":
        vector = sa.func.to_tsvector(sa.literal_column("'simple'"), _P.text)
        wanted = sa.func.plainto_tsquery(sa.literal_column("'simple'"), " ".join(words))
        select = (
            sa.select(*columns)
            .where(vector.op("@@")(wanted))
            .order_by(sa.func.ts_rank(vector, wanted).desc(), _P.created_at.desc(), _P.id)
        )
    else:
        score = sa.text("MATCH (text) AGAINST (:wanted IN BOOLEAN MODE)").bindparams(
            wanted=" ".join(f"+{w}" for w in words)
        )
        select = (
            sa.select(*columns).where(score).order_by(sa.desc(score), _P.created_at.desc(), _P.id)
        )
    rows = conn.execute(select.limit(limit))
    return [FoundPost(**row._mapping) for row in rows]
