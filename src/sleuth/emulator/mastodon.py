"""Two emulated Mastodon instances (`MASTODON_SERVERS`) under `/mastodon/<server>`, serving the
ArtWorld's Mastodon accounts with the real REST API's paths, entities, `Link` pagination,
`X-RateLimit-*` headers (ISO-8601 reset; 300 requests / 5 min per address, and 300 / 15 min
for anonymous paged requests) and errors.

An account lives on one server; the other knows it as a remote account (its own id, `acct`
`user@home`) with only its newest statuses, whose media point at the viewer's `media_proxy`
with `remote_url` on the home server, as real instances do. Locked accounts show no statuses;
accounts that hide their network list no followers while counting them; follower pages repeat
an account now and then, as Mastodon's do. A server named in `closed_servers` answers every
anonymous call 401, as instances with `DISALLOW_UNAUTHENTICATED_API_ACCESS` do.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from sleuth.emulator.artworld import MASTODON_SERVERS, Account, ArtWorld, Post, PostImage
from sleuth.emulator.postmedia import EXTENSIONS, PostMedia, image_format
from sleuth.emulator.ratelimits import Limit, Limiter

PREFIX = "/mastodon"
LIMIT = Limit(300, 300.0)  # 300 requests / 5 min per IP, every endpoint
PAGING_LIMIT = Limit(300, 900.0)  # and 300 / 15 min for anonymous paged requests
LIMITS = (LIMIT, PAGING_LIMIT)
PAGING_PARAMS = ("max_id", "min_id", "since_id", "page")
REMOTE_STATUSES = 5  # how many of a remote account's statuses the other server has seen
REMOTE_ID_PREFIX = "7"
ANONYMOUS_REFUSED = "This API requires an authenticated user"


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=utf-8")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true")


class MastodonEmulator:
    """The state behind the blueprint: the world, the budgets, which servers are closed."""

    def __init__(
        self,
        world: ArtWorld,
        *,
        limits: tuple[Limit, Limit] | None = LIMITS,
        closed_servers: Iterable[str] = (),
    ) -> None:
        self.world = world
        self.limits = limits
        self.closed = frozenset(closed_servers)
        self.limiter = Limiter()
        self.files = PostMedia(world)
        self._indexes: dict[
            str, tuple[list[Account], dict[str, Account], dict[tuple[str, str], Account]]
        ] = {}

    # -- who is where ---------------------------------------------------------------------

    def local(self, server: str) -> list[Account]:
        return [a for a in self.world.accounts if a.network == "mastodon" and a.server == server]

    def known(self, server: str) -> list[Account]:
        """Accounts `server` can show: its own and the remote ones it has seen."""
        return self._index(server)[0]

    def _index(
        self, server: str
    ) -> tuple[list[Account], dict[str, Account], dict[tuple[str, str], Account]]:
        """What `server` knows, by its id for them and by (username, home); built once, as a
        world of thousands of accounts is looked up at every request."""
        if server not in self._indexes:
            known = [
                a
                for a in self.world.accounts
                if a.network == "mastodon" and (a.server == server or server in a.seen_from)
            ]
            by_id: dict[str, Account] = {}
            by_acct: dict[tuple[str, str], Account] = {}
            for account in known:
                by_id.setdefault(self.view_id(account, server), account)
                by_acct.setdefault((account.username.lower(), account.server), account)
            self._indexes[server] = (known, by_id, by_acct)
        return self._indexes[server]

    def view_id(self, account: Account, server: str) -> str:
        return account.id if account.server == server else REMOTE_ID_PREFIX + account.id

    def by_id(self, server: str, ident: str) -> Account | None:
        return self._index(server)[1].get(ident)

    def by_acct(self, server: str, acct: str) -> Account | None:
        user, _, home = acct.lstrip("@").partition("@")
        return self._index(server)[2].get((user.lower(), home or server))

    # -- entities -------------------------------------------------------------------------

    def account_entity(self, account: Account, server: str, base: str) -> dict[str, Any]:
        home_base = f"{base}/{account.server}"
        links = self.world.profile_links(account)
        fields = [
            {
                "name": "Website" if "carrd" in url or "linktr" in url else url.split("/")[2],
                "value": f'<a href="{url}" target="_blank" rel="nofollow noopener me" '
                f'translate="no"><span class="invisible">https://</span>'
                f'<span class="">{url.removeprefix("https://")}</span></a>',
                "verified_at": None,
            }
            for url in links
        ]
        note = f"<p>Art by {account.display_name}.</p>"
        if links:
            note += f'<p>Also on <a href="{links[0]}" rel="nofollow noopener">{links[0]}</a></p>'
        public = [p for p in self.world.posts(account) if not p.deleted]
        hidden = self.world.hides_collections(account)
        remote = account.server != server
        return {
            "id": self.view_id(account, server),
            "username": account.username,
            "acct": f"{account.username}@{account.server}" if remote else account.username,
            "display_name": account.display_name,
            "locked": account.private,
            "bot": False,
            "discoverable": True,
            "indexable": True,
            "group": False,
            "created_at": _iso(
                account.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
            ),
            "note": note,
            "url": account.url,
            "uri": f"https://{account.server}/users/{account.username}",
            "avatar": f"{home_base}/avatars/original/missing.png",
            "avatar_static": f"{home_base}/avatars/original/missing.png",
            "avatar_description": "",
            "header": f"{home_base}/headers/original/missing.png",
            "header_static": f"{home_base}/headers/original/missing.png",
            "header_description": "",
            "followers_count": len(self.world.followers(account)),
            "following_count": len(self.world.following(account)),
            "statuses_count": len(public),
            "last_status_at": public[0].created_at.date().isoformat() if public else None,
            "hide_collections": hidden,
            "show_media": True,
            "show_media_replies": True,
            "show_featured": True,
            "noindex": False,
            "feature_approval": {"automatic": [], "manual": [], "current_user": "missing"},
            "emojis": [],
            "roles": [],
            "fields": fields,
        }

    def media_entity(self, post: Post, image: PostImage, server: str, base: str) -> dict[str, Any]:
        ext = EXTENSIONS[image_format(image)]
        home = post.account.server
        original = f"{base}/{home}/system/media_attachments/files/{image.media_id}/original.{ext}"
        small = f"{base}/{home}/system/media_attachments/files/{image.media_id}/small.{ext}"
        remote = home != server
        ratio = round(image.width / image.height, 4)
        return {
            "id": image.media_id,
            "type": "image",
            "url": f"{base}/{server}/media_proxy/{image.media_id}/original" if remote else original,
            "preview_url": f"{base}/{server}/media_proxy/{image.media_id}/small"
            if remote
            else small,
            "remote_url": original if remote else None,
            "preview_remote_url": small if remote else None,
            "text_url": None,
            "meta": {
                "original": {
                    "width": image.width,
                    "height": image.height,
                    "size": f"{image.width}x{image.height}",
                    "aspect": ratio,
                },
                "small": {"width": 400, "height": round(400 / ratio), "aspect": ratio},
            },
            "description": None,
            "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
        }

    def status_entity(
        self, post: Post, server: str, base: str, account: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A Status; `account` is its author's entity when the caller has it already (a
        page of one account's statuses renders it once)."""
        account = account or self.account_entity(post.account, server, base)
        media = [self.media_entity(post, image, server, base) for image in post.images]
        ident = self.view_id_of_post(post, server)
        status: dict[str, Any] = {
            "id": ident,
            "created_at": _iso(post.created_at),
            "in_reply_to_id": post.reply_to,
            "in_reply_to_account_id": account["id"] if post.reply_to else None,
            "sensitive": False,
            "spoiler_text": "",
            "visibility": "public",
            "language": "en",
            "uri": f"https://{post.account.server}/users/{post.account.username}/statuses/{post.id}",
            "url": post.url,
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "quotes_count": 0,
            "edited_at": None,
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "content": f"<p>{post.text}</p>",
            "reblog": None,
            "account": account,
            "media_attachments": media,
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        if post.repost_of:
            # A reblog: the outer status carries nothing; the shared one is someone else's.
            shared = dict(status, id=post.repost_of, reblog=None, url=None)
            shared["account"] = dict(
                account, id="1", username="someone", acct="someone@elsewhere.example"
            )
            status["reblog"] = shared
            status["content"] = ""
            status["media_attachments"] = []
        return status

    def view_id_of_post(self, post: Post, server: str) -> str:
        return post.id if post.account.server == server else str(int(post.id) + 1)

    # -- lists ----------------------------------------------------------------------------

    def statuses(self, account: Account, server: str) -> list[Post]:
        if account.private:
            return []
        posts = [p for p in self.world.posts(account) if not p.deleted]
        if account.server != server:
            posts = posts[:REMOTE_STATUSES]
        if _flag("only_media"):
            posts = [p for p in posts if p.images or p.repost_of]
        if _flag("exclude_reblogs"):
            posts = [p for p in posts if not p.repost_of]
        if _flag("exclude_replies"):
            posts = [p for p in posts if not p.reply_to]
        return posts


def _limit_arg(default: int, maximum: int) -> int:
    try:
        value = int(request.args.get("limit", default))
    except ValueError:
        value = default
    return max(1, min(maximum, value))


def _id_window(ids: list[int], limit: int) -> tuple[int, int]:
    """The slice of `ids` (newest first, descending) that `max_id`/`since_id`/`min_id` ask for."""
    ascending = [-i for i in ids]  # bisect needs ascending order
    start, stop = 0, len(ids)
    if request.args.get("max_id", "").isdigit():
        start = bisect.bisect_right(ascending, -int(request.args["max_id"]))
    if request.args.get("since_id", "").isdigit():
        stop = bisect.bisect_left(ascending, -int(request.args["since_id"]))
    if request.args.get("min_id", "").isdigit():
        stop = bisect.bisect_left(ascending, -int(request.args["min_id"]))
        return max(start, stop - limit), stop
    return start, min(stop, start + limit)


def _link(path: str, limit: int, items: list[str], full: bool, extra: dict[str, str]) -> str:
    parts = []
    if items and full:
        parts.append(
            f'<{path}?{urlencode({**extra, "limit": limit, "max_id": items[-1]})}>; rel="next"'
        )
    if items:
        parts.append(
            f'<{path}?{urlencode({**extra, "limit": limit, "min_id": items[0]})}>; rel="prev"'
        )
    return ", ".join(parts)


def mastodon_blueprint(emulator: MastodonEmulator) -> Blueprint:
    """The `/mastodon/<server>/...` routes of both instances."""
    bp = Blueprint("mastodon", __name__, url_prefix=PREFIX + "/<server>")

    def base() -> str:
        return request.host_url.rstrip("/") + PREFIX

    @bp.before_request
    def _gate() -> Response | None:
        server = (request.view_args or {}).get("server", "")
        if server not in MASTODON_SERVERS:
            return _error(404, "Not Found")
        if "/api/" not in request.path:
            return None  # media files are not rate limited by the API
        if server in emulator.closed and "Authorization" not in request.headers:
            return _error(401, ANONYMOUS_REFUSED)
        if emulator.limits is None:
            return None
        client = request.remote_addr or ""
        everything, paging = emulator.limits
        decisions = [emulator.limiter.take(server, client, everything)]
        paged = any(name in request.args for name in PAGING_PARAMS)
        if paged and "Authorization" not in request.headers:
            decisions.append(emulator.limiter.take(server + " paging", client, paging))
        # When limits overlap, the headers describe the closest one, as Mastodon's do.
        closest = min(decisions, key=lambda d: (d.allowed, d.remaining))
        request.environ["sleuth.ratelimit"] = closest
        if not closest.allowed:
            return _error(429, "Too many requests")
        return None

    @bp.after_request
    def _headers(response: Response) -> Response:
        decision = request.environ.get("sleuth.ratelimit")
        if decision is not None:
            reset = datetime.fromtimestamp(decision.reset_at, UTC)
            response.headers["X-RateLimit-Limit"] = str(decision.limit)
            response.headers["X-RateLimit-Remaining"] = str(decision.remaining)
            response.headers["X-RateLimit-Reset"] = reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return response

    @bp.get("/api/v1/accounts/lookup")
    def lookup(server: str) -> Response:
        account = emulator.by_acct(server, request.args.get("acct", ""))
        if account is None:
            return _error(404, "Record not found")
        return _json(emulator.account_entity(account, server, base()))

    @bp.get("/api/v1/accounts/<ident>")
    def account(server: str, ident: str) -> Response:
        found = emulator.by_id(server, ident)
        if found is None:
            return _error(404, "Record not found")
        return _json(emulator.account_entity(found, server, base()))

    @bp.get("/api/v1/accounts/<ident>/statuses")
    def statuses(server: str, ident: str) -> Response:
        found = emulator.by_id(server, ident)
        if found is None:
            return _error(404, "Record not found")
        limit = _limit_arg(20, 40)
        posts = emulator.statuses(found, server)
        ids = [int(emulator.view_id_of_post(p, server)) for p in posts]
        start, stop = _id_window(ids, limit)
        page = posts[start:stop]
        author = emulator.account_entity(found, server, base())
        body = [emulator.status_entity(p, server, base(), author) for p in page]
        extra = {
            k: v
            for k, v in request.args.items()
            if k in ("only_media", "exclude_reblogs", "exclude_replies")
        }
        path = f"{base()}/{server}/api/v1/accounts/{ident}/statuses"
        response = _json(body)
        link = _link(path, limit, [s["id"] for s in body], len(page) == limit, extra)
        if link:
            response.headers["Link"] = link
        return response

    def follow_list(server: str, ident: str, kind: str) -> Response:
        found = emulator.by_id(server, ident)
        if found is None:
            return _error(404, "Record not found")
        limit = _limit_arg(40, 80)
        people = (
            []
            if emulator.world.hides_collections(found)
            else (
                emulator.world.followers(found)
                if kind == "followers"
                else emulator.world.following(found)
            )
        )
        people = [p for p in people if p.network == "mastodon" and emulator.by_acct(server, p.acct)]
        # Follow-row ids, not account ids: newest follow first, descending.
        rows = [10_000 + len(people) - i for i in range(len(people))]
        start, stop = _id_window(rows, limit)
        page = people[start:stop]
        body = [emulator.account_entity(p, server, base()) for p in page]
        if len(body) >= 3:
            body.append(body[0])  # Mastodon repeats an account inside a page now and then
        response = _json(body)
        link = _link(
            f"{base()}/{server}/api/v1/accounts/{ident}/{kind}",
            limit,
            [str(r) for r in rows[start:stop]],
            len(page) == limit,
            {},
        )
        if link:
            response.headers["Link"] = link
        return response

    @bp.get("/api/v1/accounts/<ident>/followers")
    def followers(server: str, ident: str) -> Response:
        return follow_list(server, ident, "followers")

    @bp.get("/api/v1/accounts/<ident>/following")
    def following(server: str, ident: str) -> Response:
        return follow_list(server, ident, "following")

    def media_file(server: str, media_id: str, want_home: bool) -> Response:
        found = emulator.world.media(media_id)
        if found is None or found[0].account.network != "mastodon":
            return _error(404, "Not Found")
        post, image = found
        if want_home and post.account.server != server:
            return _error(404, "Not Found")
        if image.gone:
            return _error(404, "Not Found")
        return emulator.files.response(image)

    @bp.get("/system/media_attachments/files/<media_id>/<size>.<ext>")
    def media(server: str, media_id: str, size: str, ext: str) -> Response:
        del size, ext  # one rendition: the original
        return media_file(server, media_id, True)

    @bp.get("/media_proxy/<media_id>/<size>")
    def proxy(server: str, media_id: str, size: str) -> Response:
        del size
        return media_file(server, media_id, False)

    return bp
