"""Which indexed images are the artwork: Hamming distance between 64-bit pHashes, the
artwork's own and its mirror's against each image's, exactly, with numpy.

One group per account, as AOTF searched: the images of the request's accounts are read from
the database and compared at once (a few thousand per account; a vectorised XOR + popcount
over them takes well under a millisecond, less than building an index would). The
whole-database search of `/search` reads the images in chunks, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Connection

from sleuth.apps.finder.models import images, posts
from sleuth.apps.finder.requests import Result

CHUNK = 50_000  # images compared per step of a whole-database search


def distances(query: int, hashes: np.ndarray) -> np.ndarray:
    """Hamming distance from `query` (unsigned) to each of `hashes` (int64, as stored)."""
    return np.bitwise_count(hashes.view(np.uint64) ^ np.uint64(query)).astype(np.int64)


@dataclass(frozen=True)
class Query:
    phash: int
    mirror: int
    max_distance: int


def _matches(query: Query, rows: Sequence[sa.Row[tuple]]) -> list[Result]:
    if not rows:
        return []
    direct = distances(query.phash, np.array([r.phash for r in rows], dtype=np.int64))
    mirrored = distances(query.mirror, np.array([r.phash for r in rows], dtype=np.int64))
    out = []
    for row, d, m in zip(rows, direct.tolist(), mirrored.tolist(), strict=True):
        best, flipped = (m, True) if m < d else (d, False)
        if best <= query.max_distance:
            out.append(
                Result(
                    network=row.network,
                    post_id=row.post_id,
                    account_id=row.account_id,
                    post_url=row.url,
                    position=row.position,
                    images_count=row.images_count,
                    distance=int(best),
                    mirrored=flipped,
                    media_url=row.media_url,
                )
            )
    return out


def _select() -> sa.Select[tuple]:
    return (
        sa.select(
            images.c.network,
            images.c.post_id,
            images.c.account_id,
            images.c.position,
            images.c.phash,
            images.c.media_url,
            posts.c.url,
            posts.c.images_count,
        )
        .join(
            posts,
            sa.and_(posts.c.network == images.c.network, posts.c.post_id == images.c.post_id),
        )
        .where(images.c.state == "indexed")
    )


def search_accounts(
    conn: Connection, query: Query, accounts: Iterable[tuple[str, str]]
) -> list[Result]:
    """The posts of these (network, account id) accounts whose images match, per account."""
    found: list[Result] = []
    for network, account_id in accounts:
        stmt = _select().where(images.c.network == network, images.c.account_id == account_id)
        found += _matches(query, conn.execute(stmt).all())
    return found


def search_everything(conn: Connection, query: Query) -> list[Result]:
    """Every indexed post whose images match, read in chunks of CHUNK images."""
    found: list[Result] = []
    after: tuple[str, str, int] | None = None
    key = (images.c.network, images.c.post_id, images.c.position)
    while True:
        stmt = _select().order_by(*key).limit(CHUNK)
        if after is not None:
            stmt = stmt.where(sa.tuple_(*key) > sa.tuple_(*after))
        rows = conn.execute(stmt).all()
        found += _matches(query, rows)
        if len(rows) < CHUNK:
            return found
        last = rows[-1]
        after = (last.network, last.post_id, last.position)
