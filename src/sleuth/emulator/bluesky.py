"""The Bluesky public AppView under `/bsky` (XRPC) and a PDS under `/bsky-pds` (getBlob),
serving the ArtWorld's Bluesky accounts: lexicon-shaped profiles, author feeds with every
image embed shape (`images#view`, `recordWithMedia#view`, `gallery#view`), reposts with
`#reasonRepost`, followers/follows, opaque cursors, XRPC error bodies, and atproto's
`RateLimit-*` headers (epoch reset, `RateLimit-Policy`) with `Retry-After` on a 429.

Images are served as the CDN does (`/bsky/img/feed_fullsize/plain/<did>/<cid>@jpeg`) and as
original blobs on the PDS; a CID here is the media id in base 32, so any server instance
finds its image again. `stuck_cursor` makes the last page of every list send back the cursor
it was asked for, the AppView bug the connectors must stop on.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from sleuth.emulator.artworld import Account, ArtWorld, Post, PostImage
from sleuth.emulator.postmedia import MIME_TYPES, PostMedia, image_format
from sleuth.emulator.ratelimits import Limit, Limiter

PREFIX = "/bsky"
PDS_PREFIX = "/bsky-pds"
LIMIT = Limit(3000, 300.0)  # the PDS/entryway figure; the AppView publishes none


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=utf-8")


def xrpc_error(status: int, name: str, message: str) -> Response:
    return _json({"error": name, "message": message}, status)


def _time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def cid_of(image: PostImage) -> str:
    return "bafkrei" + base64.b32encode(image.media_id.encode()).decode().rstrip("=").lower()


def media_id_of(cid: str) -> str | None:
    if not cid.startswith("bafkrei"):
        return None
    text = cid.removeprefix("bafkrei").upper()
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{offset}::sleuth".encode()).decode().rstrip("=")


def _offset(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    head = text.split("::", 1)[0]
    return int(head) if head.isdigit() else None


class BlueskyEmulator:
    """The state behind the blueprints: the world, the budget, the cursor quirk."""

    def __init__(
        self, world: ArtWorld, *, limit: Limit | None = LIMIT, stuck_cursor: bool = False
    ) -> None:
        self.world = world
        self.limit = limit
        self.stuck_cursor = stuck_cursor
        self.limiter = Limiter()
        self.files = PostMedia(world)

    def actor(self, name: str) -> Account | None:
        account = self.world.account("bluesky", name)
        return account if account is not None and account.network == "bluesky" else None

    def basic(self, account: Account, base: str) -> dict[str, Any]:
        return {
            "did": account.id,
            "handle": account.username,
            "displayName": account.display_name,
            "avatar": f"{base}/img/avatar/plain/{account.id}/bafkreiavatar@jpeg",
            "associated": {"chat": {"allowIncoming": "following"}},
            "viewer": {"muted": False, "blockedBy": False},
            "labels": [],
            "createdAt": _time(account.created_at),
        }

    def profile(self, account: Account, base: str, detailed: bool) -> dict[str, Any]:
        links = self.world.profile_links(account)
        view = self.basic(account, base)
        view["description"] = f"Art by {account.display_name}." + "".join(f"\n{u}" for u in links)
        view["indexedAt"] = _time(account.created_at)
        if detailed:
            view.update(
                followersCount=len(self.world.followers(account)),
                followsCount=len(self.world.following(account)),
                postsCount=len([p for p in self.world.posts(account) if not p.deleted]),
                banner=f"{base}/img/banner/plain/{account.id}/bafkreibanner@jpeg",
            )
            if links:
                view["website"] = links[-1]
        return view

    def embed(self, post: Post, sequence: int, base: str) -> dict[str, Any]:
        did = post.account.id

        def url(kind: str, image: PostImage) -> str:
            return f"{base}/img/{kind}/plain/{did}/{cid_of(image)}@jpeg"

        ratio = [{"width": i.width, "height": i.height} for i in post.images]
        if sequence % 7 == 3:
            return {
                "$type": "app.bsky.embed.gallery#view",
                "items": [
                    {
                        "$type": "app.bsky.embed.gallery#viewImage",
                        "thumbnail": url("feed_thumbnail", i),
                        "fullsize": url("feed_fullsize", i),
                        "alt": "",
                        "aspectRatio": r,
                    }
                    for i, r in zip(post.images, ratio, strict=True)
                ],
            }
        images = {
            "$type": "app.bsky.embed.images#view",
            "images": [
                {
                    "thumb": url("feed_thumbnail", i),
                    "fullsize": url("feed_fullsize", i),
                    "alt": "",
                    "aspectRatio": r,
                }
                for i, r in zip(post.images, ratio, strict=True)
            ],
        }
        if sequence % 5 == 1:
            return {
                "$type": "app.bsky.embed.recordWithMedia#view",
                "media": images,
                "record": {"record": self.quoted_view(post, base)},
            }
        return images

    def quoted_uri(self, post: Post) -> str:
        return f"at://{post.account.id}/app.bsky.feed.post/{post.id[:-1]}2"

    def quoted_view(self, post: Post, base: str) -> dict[str, Any]:
        """The author's own earlier post that a recordWithMedia post quotes (text only)."""
        return {
            "$type": "app.bsky.embed.record#viewRecord",
            "uri": self.quoted_uri(post),
            "cid": "bafyreiquoted" + post.id,
            "author": self.basic(post.account, base),
            "value": {
                "$type": "app.bsky.feed.post",
                "createdAt": _time(post.created_at),
                "langs": ["en"],
                "text": "an earlier post",
            },
            "labels": [],
            "likeCount": 0,
            "replyCount": 0,
            "repostCount": 0,
            "indexedAt": _time(post.created_at),
            "embeds": [],
        }

    def record_embed(self, post: Post, sequence: int) -> dict[str, Any]:
        """The post record's own embed: blobs by CID, beside a quoted record's strong ref."""
        images = {
            "$type": "app.bsky.embed.images",
            "images": [
                {
                    "alt": "",
                    "image": {
                        "$type": "blob",
                        "ref": {"$link": cid_of(i)},
                        "mimeType": MIME_TYPES[image_format(i)],
                        "size": 1000,
                    },
                }
                for i in post.images
            ],
        }
        if sequence % 5 == 1 and sequence % 7 != 3:
            ref = {"cid": "bafyreiquoted" + post.id, "uri": self.quoted_uri(post)}
            return {
                "$type": "app.bsky.embed.recordWithMedia",
                "media": images,
                "record": {"$type": "app.bsky.embed.record", "record": ref},
            }
        return images

    def post_view(self, post: Post, sequence: int, base: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "createdAt": _time(post.created_at),
            "text": post.text,
            "langs": ["en"],
            "embed": self.record_embed(post, sequence),
        }
        if post.reply_to:
            parent = f"at://{post.account.id}/app.bsky.feed.post/{post.reply_to}"
            record["reply"] = {
                "root": {"uri": parent, "cid": "bafyreiparent"},
                "parent": {"uri": parent, "cid": "bafyreiparent"},
            }
        return {
            "uri": f"at://{post.account.id}/app.bsky.feed.post/{post.id}",
            "cid": "bafyrei" + post.id,
            "author": self.basic(post.account, base),
            "record": record,
            "embed": self.embed(post, sequence, base),
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 0,
            "quoteCount": 0,
            "indexedAt": _time(post.created_at),
            "labels": [],
        }

    def feed_item(self, post: Post, sequence: int, base: str) -> dict[str, Any]:
        item: dict[str, Any] = {"post": self.post_view(post, sequence, base)}
        if post.repost_of:
            # A repost: the post shown is someone else's, `reason` says who shared it.
            other = dict(
                item["post"]["author"],
                did="did:plc:someoneelse00000000000000",
                handle="someone.bsky.social",
            )
            item["post"]["author"] = other
            item["post"]["uri"] = f"at://{other['did']}/app.bsky.feed.post/{post.id}"
            item["reason"] = {
                "$type": "app.bsky.feed.defs#reasonRepost",
                "by": self.basic(post.account, base),
                "indexedAt": _time(post.created_at),
            }
        if post.reply_to:
            parent = {
                "$type": "app.bsky.feed.defs#notFoundPost",
                "uri": item["post"]["record"]["reply"]["parent"]["uri"],
                "notFound": True,
            }
            item["reply"] = {"root": parent, "parent": parent}
        return item


def _page_args(default: int) -> tuple[int, int] | Response:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        return xrpc_error(400, "InvalidRequest", "limit must be an integer between 1 and 100")
    cursor = request.args.get("cursor")
    start = _offset(cursor) if cursor else 0
    if start is None:
        return xrpc_error(400, "InvalidRequest", "Malformed cursor")
    return int(raw), start


def bluesky_blueprints(emulator: BlueskyEmulator) -> list[Blueprint]:
    """The AppView (`/bsky`) and PDS (`/bsky-pds`) blueprints."""
    appview = Blueprint("bsky_appview", __name__, url_prefix=PREFIX)
    pds = Blueprint("bsky_pds", __name__, url_prefix=PDS_PREFIX)

    def base() -> str:
        return request.host_url.rstrip("/") + PREFIX

    def gate() -> Response | None:
        if "/xrpc/" not in request.path or emulator.limit is None:
            return None
        bucket = "pds" if request.path.startswith(PDS_PREFIX) else "appview"
        decision = emulator.limiter.take(bucket, request.remote_addr or "", emulator.limit)
        request.environ["sleuth.ratelimit"] = decision
        if not decision.allowed:
            response = xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded")
            response.headers["Retry-After"] = str(
                max(1, int(decision.reset_at - datetime.now(UTC).timestamp()))
            )
            return response
        return None

    def headers(response: Response) -> Response:
        decision = request.environ.get("sleuth.ratelimit")
        if decision is not None:
            response.headers["RateLimit-Limit"] = str(decision.limit)
            response.headers["RateLimit-Remaining"] = str(decision.remaining)
            response.headers["RateLimit-Reset"] = str(int(decision.reset_at))
            response.headers["RateLimit-Policy"] = (
                f"{decision.limit};w={int(emulator.limit.window) if emulator.limit else 0}"
            )
        return response

    for bp in (appview, pds):
        bp.before_request(gate)
        bp.after_request(headers)

    def paged(items: list[Any], default: int) -> tuple[list[Any], str | None] | Response:
        args = _page_args(default)
        if isinstance(args, Response):
            return args
        limit, start = args
        page = items[start : start + limit]
        if start + limit < len(items):
            return page, _cursor(start + limit)
        sent = request.args.get("cursor")
        return page, (sent if emulator.stuck_cursor and sent else None)

    @appview.get("/xrpc/app.bsky.actor.getProfile")
    def get_profile() -> Response:
        account = emulator.actor(request.args.get("actor", ""))
        if account is None:
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        return _json(emulator.profile(account, base(), detailed=True))

    @appview.get("/xrpc/app.bsky.actor.getProfiles")
    def get_profiles() -> Response:
        actors = request.args.getlist("actors")
        if not actors or len(actors) > 25:
            return xrpc_error(400, "InvalidRequest", "actors must hold 1 to 25 items")
        found = [a for a in (emulator.actor(n) for n in actors) if a is not None]
        return _json({"profiles": [emulator.profile(a, base(), detailed=True) for a in found]})

    @appview.get("/xrpc/app.bsky.feed.getAuthorFeed")
    def get_author_feed() -> Response:
        account = emulator.actor(request.args.get("actor", ""))
        if account is None:
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        total = len(emulator.world.posts(account))
        numbered = [
            (total - 1 - i, p) for i, p in enumerate(emulator.world.posts(account)) if not p.deleted
        ]
        if request.args.get("filter") == "posts_with_media":
            numbered = [(n, p) for n, p in numbered if p.images]
        elif request.args.get("filter") == "posts_no_replies":
            numbered = [(n, p) for n, p in numbered if not p.reply_to]
        result = paged(numbered, 50)
        if isinstance(result, Response):
            return result
        page, cursor = result
        body: dict[str, Any] = {"feed": [emulator.feed_item(p, n, base()) for n, p in page]}
        if cursor:
            body["cursor"] = cursor
        return _json(body)

    def graph(key: str) -> Response:
        account = emulator.actor(request.args.get("actor", ""))
        if account is None:
            return xrpc_error(400, "InvalidRequest", "Profile not found")
        people = (
            emulator.world.followers(account)
            if key == "followers"
            else emulator.world.following(account)
        )
        result = paged(people, 50)
        if isinstance(result, Response):
            return result
        page, cursor = result
        body: dict[str, Any] = {
            "subject": emulator.profile(account, base(), detailed=False),
            key: [emulator.profile(p, base(), detailed=False) for p in page],
        }
        if cursor:
            body["cursor"] = cursor
        return _json(body)

    @appview.get("/xrpc/app.bsky.graph.getFollowers")
    def get_followers() -> Response:
        return graph("followers")

    @appview.get("/xrpc/app.bsky.graph.getFollows")
    def get_follows() -> Response:
        return graph("follows")

    def image_for(did: str, cid: str) -> PostImage | None:
        media_id = media_id_of(cid)
        found = emulator.world.media(media_id) if media_id else None
        if found is None or found[0].account.id != did or found[1].gone:
            return None
        return found[1]

    @appview.get("/img/<kind>/plain/<did>/<name>")
    def cdn(kind: str, did: str, name: str) -> Response:
        del kind  # one rendition
        image = image_for(did, name.split("@", 1)[0])
        if image is None:
            return Response("Not Found", 404, content_type="text/plain")
        return emulator.files.response(image)

    @pds.get("/xrpc/com.atproto.sync.getBlob")
    def get_blob() -> Response:
        image = image_for(request.args.get("did", ""), request.args.get("cid", ""))
        if image is None:
            return xrpc_error(400, "BlobNotFound", "Blob not found")
        return emulator.files.response(image)

    return [appview, pds]
