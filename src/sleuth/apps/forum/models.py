"""The forum app's tables: what a crawl of a forum keeps, keyed by the forum's own ids.

Every row carries its `site_id` (one crawled forum, `forum_sites`) and the id the forum gave it,
so crawling again is an upsert of the same rows. Times are float epoch seconds (UTC). A post
keeps its source text (`raw`: BBCode on bB, Markdown on Discourse) and, where the forum gives it,
its HTML (`cooked`). Users rename: `forum_user_names` keeps every name seen for a user id, as
potstats2's aliases did. Edits are the edit states seen (a post's edit count and its last edit),
so a re-crawl that finds a post edited again adds one. Quotes and replies (`forum_quotes`) and
links (`forum_links`) are what a post's text says, the inputs of the quote graph and of links,
images and videos by domain.

The statistics (`analytics.py`) are kept per (board, UTC day, user): `forum_activity` (posts,
edits, length, topics started, by hour), `forum_pair_days` (who quoted or answered whom) and
`forum_link_days` (links by domain and kind). A crawl marks the (board, day, user) keys it
touches in `forum_dirty`, in the transaction that writes the posts; analytics recomputes those
keys only, so its cost follows what changed and not the forum's size.
"""

from __future__ import annotations

import sqlalchemy as sa

from sleuth.store.schema import metadata

KINDS = ("discourse", "bbxml")

forum_sites = sa.Table(
    "forum_sites",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # one of KINDS
    sa.Column("url", sa.String(500), nullable=False),  # its normalized base URL
    sa.Column("first_crawled", sa.Double, nullable=False),
    sa.Column("last_crawled", sa.Double, nullable=False),
    # the newest bump time of the last complete crawl: topics bumped no later are stored
    sa.Column("high_water", sa.Double, nullable=True),
    sa.UniqueConstraint("kind", "url"),
)

forum_users = sa.Table(
    "forum_users",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(255), nullable=False),  # the latest name seen
    sa.Column("group_id", sa.Integer, nullable=True),  # bB: 1 admin, 6 moderator, 3 member
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
)

forum_user_names = sa.Table(
    "forum_user_names",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
)

forum_categories = sa.Table(
    "forum_categories",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("category_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)

forum_boards = sa.Table(
    "forum_boards",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("category_id", sa.BigInteger, nullable=True),  # bB's category; Discourse: none
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("slug", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("topic_count", sa.Integer, nullable=False),  # as the forum states it
    sa.Column("post_count", sa.Integer, nullable=False),
    sa.Column("high_water", sa.Double, nullable=True),  # as forum_sites', for one board
)

forum_topics = sa.Table(
    "forum_topics",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("topic_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("subtitle", sa.Text, nullable=False),
    sa.Column("slug", sa.String(255), nullable=False),
    sa.Column("user_id", sa.BigInteger, nullable=True),  # who started it
    sa.Column("created_at", sa.Double, nullable=True),
    sa.Column("last_posted_at", sa.Double, nullable=True),
    sa.Column("posts_count", sa.Integer, nullable=False),  # as the forum states it
    sa.Column("closed", sa.Boolean, nullable=False),
    sa.Column("pinned", sa.Boolean, nullable=False),
    sa.Column("views", sa.Integer, nullable=False),
    # the checkpoint: what the last completed crawl of this topic saw
    sa.Column("crawled_posts", sa.Integer, nullable=False),
    sa.Column("crawled_last_posted_at", sa.Double, nullable=True),
    sa.Column("crawled_at", sa.Double, nullable=True),
    sa.Index("ix_forum_topics_site_id_board_id", "site_id", "board_id"),
)

forum_posts = sa.Table(
    "forum_posts",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("post_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("topic_id", sa.BigInteger, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),  # 1-based position in its topic
    sa.Column("user_id", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("edit_count", sa.Integer, nullable=False),
    sa.Column("last_edit_user_id", sa.BigInteger, nullable=True),
    sa.Column("last_edit_at", sa.Double, nullable=True),
    sa.Column("reply_to_number", sa.Integer, nullable=True),  # Discourse's reply_to_post_number
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("cooked", sa.Text, nullable=True),
    sa.Index("ix_forum_posts_site_id_topic_id_number", "site_id", "topic_id", "number"),
    sa.Index("ix_forum_posts_site_id_created_at", "site_id", "created_at"),
    sa.Index("ix_forum_posts_site_id_user_id_created_at", "site_id", "user_id", "created_at"),
)

forum_edits = sa.Table(
    "forum_edits",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("post_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("edit_count", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("edited_at", sa.Double, nullable=True),
    sa.Column("editor_id", sa.BigInteger, nullable=True),
    sa.Column("seen_at", sa.Double, nullable=False),
)

forum_quotes = sa.Table(
    "forum_quotes",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("post_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), primary_key=True),  # "quote" or "reply"
    sa.Column("target_topic_id", sa.BigInteger, primary_key=True, autoincrement=False),
    # bB quotes name the post id, Discourse its number in the topic; the other one is 0
    sa.Column("target_post_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("target_number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("quoted_name", sa.String(255), nullable=False),  # as written when quoting
    sa.Column("count", sa.Integer, nullable=False),
    # a post that arrives after a quote of it: who quoted it is found by these
    sa.Index("ix_forum_quotes_site_id_target_post_id", "site_id", "target_post_id"),
    sa.Index(
        "ix_forum_quotes_site_id_target_topic_id_target_number",
        "site_id",
        "target_topic_id",
        "target_number",
    ),
)

forum_links = sa.Table(
    "forum_links",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("post_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("url_key", sa.String(40), primary_key=True),  # sha1 of the normalized URL
    sa.Column("kind", sa.String(8), primary_key=True),  # "link", "image" or "video"
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_forum_links_site_id_domain", "site_id", "domain"),
)

forum_dirty = sa.Table(
    "forum_dirty",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),  # UTC days since 1970
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    # set anew by every crawl that marks the key: analytics clears a key only if it is unchanged
    sa.Column("mark", sa.BigInteger, nullable=False),
    sa.Index("ix_forum_dirty_site_id_day", "site_id", "day"),  # a window of days: one range
)


def _by_user(table: str) -> sa.Index:
    """A user's rows of a board and year: what a stale key's poster, pair and domain totals
    read (by the primary key, which leads with the board, that was a scan of the board's rows)."""
    return sa.Index(
        f"ix_{table}_site_id_user_id_board_id_year", "site_id", "user_id", "board_id", "year"
    )


forum_activity = sa.Table(
    "forum_activity",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("hour", sa.Integer, primary_key=True, autoincrement=False),  # 0..23, UTC
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("week", sa.Integer, nullable=False),  # 1..53, week 1 starting on January 1st
    sa.Column("weekday", sa.Integer, nullable=False),  # ISO: 1 Monday .. 7 Sunday
    sa.Column("post_count", sa.Integer, nullable=False),
    sa.Column("edit_count", sa.Integer, nullable=False),
    sa.Column("length_sum", sa.BigInteger, nullable=False),  # characters of the posts' text
    sa.Column("threads_created", sa.Integer, nullable=False),
    sa.Index("ix_forum_activity_site_id_year", "site_id", "year"),
    _by_user("forum_activity"),
    sa.Index("ix_forum_activity_site_id_day", "site_id", "day"),
)

forum_pair_days = sa.Table(
    "forum_pair_days",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),  # who quoted
    sa.Column("kind", sa.String(8), primary_key=True),  # "quote" or "reply"
    sa.Column("target_user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_forum_pair_days_site_id_year", "site_id", "year"),
    _by_user("forum_pair_days"),
)

forum_link_days = sa.Table(
    "forum_link_days",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("board_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), primary_key=True),  # "link", "image" or "video"
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_forum_link_days_site_id_year", "site_id", "year"),
    _by_user("forum_link_days"),
)

forum_stats_versions = sa.Table(
    "forum_stats_versions",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    # a year whose statistics changed; 0 for the site's statistics over all years
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)
"""Moves on each change of a site's statistics: cached answers are keyed by the versions they
read, so a change makes only the answers that read it stale."""

forum_thread_versions = sa.Table(
    "forum_thread_versions",
    metadata,
    sa.Column("site_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)
"""As `forum_stats_versions`, for the thread times (of the year the topics started in): a reply
to an old topic changes that year's thread times, not its other statistics."""

# -- totals: what the API reads, one row per answer line ---------------------------------------
# Kept from the per-day tables above by `totals.py` for the keys a pass changed. `board_id` 0 is
# every board, `year` 0 every year, `kind` "all" every kind: an answer for any scope is a range
# of one index, and a deep keyset page costs what the first does.

ALL_BOARDS, ALL_YEARS, ALL_KINDS, ALL_WEEKDAYS = 0, 0, "all", 0


def _measures() -> list[sa.Column]:
    return [
        sa.Column("post_count", sa.Integer, nullable=False),
        sa.Column("edit_count", sa.Integer, nullable=False),
        sa.Column("length_sum", sa.BigInteger, nullable=False),
        sa.Column("threads_created", sa.Integer, nullable=False),
    ]


def _key(name: str, kind: type = sa.BigInteger) -> sa.Column:
    return sa.Column(name, kind, primary_key=True, autoincrement=False)


forum_poster_totals = sa.Table(
    "forum_poster_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    _key("user_id"),
    *_measures(),
    sa.Column("avg_post_length", sa.Float, nullable=False),
    *(
        sa.Index(
            f"ix_forum_poster_totals_{column}", "site_id", "board_id", "year", column, "user_id"
        )
        for column in ("post_count", "edit_count", "avg_post_length", "threads_created")
    ),
    _by_user("forum_poster_totals"),
)

forum_day_totals = sa.Table(
    "forum_day_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("day", sa.Integer),
    _key("hour", sa.Integer),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("week", sa.Integer, nullable=False),
    sa.Column("weekday", sa.Integer, nullable=False),
    *_measures(),
    sa.Index("ix_forum_day_totals_site_id_board_id_year", "site_id", "board_id", "year"),
    # the whole days of a board (and year) in order: the daily answer, read off the index
    sa.Index("ix_forum_day_totals_whole_days", "site_id", "board_id", "hour", "year", "day"),
    # the days of one (week, weekday) slot in every year: what an all-years hour row sums
    sa.Index(
        "ix_forum_day_totals_site_id_board_id_week_weekday",
        "site_id",
        "board_id",
        "week",
        "weekday",
    ),
)

forum_hour_totals = sa.Table(
    "forum_hour_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("week", sa.Integer),
    _key("weekday", sa.Integer),
    _key("hour", sa.Integer),
    *_measures(),
)
"""The day totals' hour rows summed over every year by (week, weekday, hour): the all-years
hourly answer is one range of at most 53 * 7 * 24 rows, however many years a forum has (a year's
answer is its day totals: in one year a (week, weekday) is one day)."""

forum_weekday_totals = sa.Table(
    "forum_weekday_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    _key("weekday", sa.Integer),
    *_measures(),
)
"""The day totals' whole days by (board, year, ISO weekday), weekday 0 every weekday: a board's,
a year's or a weekday's numbers are a few rows, not a sum over every day of the forum per
request (the boards answer took 170 ms at 1M posts that way)."""

forum_pair_totals = sa.Table(
    "forum_pair_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    sa.Column("kind", sa.String(8), primary_key=True),  # "quote", "reply" or "all"
    _key("user_id"),
    _key("target_user_id"),
    sa.Column("count", sa.Integer, nullable=False),
    # the social graph's order read off the index: with the count alone, every tie was sorted
    # (at 1M posts, the most counted 1000 pairs of 280k took 66 ms)
    sa.Index(
        "ix_forum_pair_totals_most_counted",
        "site_id",
        "board_id",
        "year",
        "kind",
        "count",
        "user_id",
        "target_user_id",
    ),
    _by_user("forum_pair_totals"),
)

forum_user_domain_totals = sa.Table(
    "forum_user_domain_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    sa.Column("kind", sa.String(8), primary_key=True),  # "link", "image", "video" or "all"
    _key("user_id"),
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index(
        "ix_forum_user_domain_totals_site_id_board_id_year_kind_count",
        "site_id",
        "board_id",
        "year",
        "kind",
        "count",
    ),
    _by_user("forum_user_domain_totals"),
)

forum_domain_totals = sa.Table(
    "forum_domain_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index(
        "ix_forum_domain_totals_site_id_board_id_year_kind_count",
        "site_id",
        "board_id",
        "year",
        "kind",
        "count",
    ),
)

forum_stale = sa.Table(
    "forum_stale",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("day", sa.Integer),
    _key("user_id"),
    sa.Column("mark", sa.BigInteger, nullable=False),
)
"""Keys whose per-day rows are recomputed but whose totals are not yet: moved here from
`forum_dirty` in the transaction that rewrites the per-day rows, cleared with the totals."""

# -- thread times: time to first response and lifetime of each topic (`threads.py`) -------------

forum_dirty_topics = sa.Table(
    "forum_dirty_topics",
    metadata,
    _key("site_id", sa.Integer),
    _key("topic_id"),
    # set anew by every crawl that saves the topic: analytics clears it only if it is unchanged
    sa.Column("mark", sa.BigInteger, nullable=False),
)

TIMES = ("first_response", "lifetime")

forum_topic_times = sa.Table(
    "forum_topic_times",
    metadata,
    _key("site_id", sa.Integer),
    _key("topic_id"),
    sa.Column("board_id", sa.BigInteger, nullable=False),
    sa.Column("year", sa.Integer, nullable=False),  # of its creation, UTC
    sa.Column("first_response", sa.Double, nullable=True),  # seconds to its second post
    sa.Column("lifetime", sa.Double, nullable=True),  # seconds from creation to its last post
    # each scope's values in order (site, board, year, or both): a median is one index range
    *(
        sa.Index(f"ix_forum_topic_times_{'_'.join(columns)}", *columns)
        for columns in (
            ("site_id", *by, time)
            for time in TIMES
            for by in ((), ("board_id",), ("year",), ("board_id", "year"))
        )
    ),
)

forum_thread_totals = sa.Table(
    "forum_thread_totals",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    sa.Column("threads", sa.Integer, nullable=False),
    *(
        column
        for time in TIMES
        for column in (
            sa.Column(f"{time}_count", sa.Integer, nullable=False),
            sa.Column(f"{time}_sum", sa.Double, nullable=False),
            sa.Column(f"{time}_median", sa.Double, nullable=True),
        )
    ),
)
"""Per (board, year) of creation, with board 0 and year 0 rows: the topics, and of their
first responses and lifetimes how many, their sum and exact median."""

forum_stale_threads = sa.Table(
    "forum_stale_threads",
    metadata,
    _key("site_id", sa.Integer),
    _key("board_id"),
    _key("year", sa.Integer),
    sa.Column("mark", sa.BigInteger, nullable=False),
)
"""(board, year) scopes whose topic times changed but whose thread totals are not yet."""
