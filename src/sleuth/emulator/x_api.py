"""The X API v2 under `/x`, serving the ArtWorld's X accounts to an app-only bearer token:
users by username, user timelines with media expansions, tweet lookup, followers/following,
with X's answers: missing or protected resources as HTTP 200 with an `errors` array, problem
bodies for 400/401/403/429, `x-rate-limit-*` headers with an epoch reset (per endpoint, the
2026 per-app table) and, when `post_cap` is set, the monthly post cap's 429 `UsageCapExceeded`
(sent while the window still has requests left), the 3,200-post timeline window (800 with
`exclude=replies`), and photos under `/x/pbs/media/<id>.<ext>` as pbs.twimg.com serves them
(a deleted one 404s).
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, request

from sleuth.emulator.artworld import Account, ArtWorld, Post
from sleuth.emulator.postmedia import EXTENSIONS, PostMedia, image_format
from sleuth.emulator.ratelimits import Limit, Limiter

PREFIX = "/x"
EMULATOR_TOKEN = "sleuth-emulator-x-bearer-token"
"""The bearer token the emulated X accepts (`sleuth emulator env` prints it)."""
LIMITS = {
    "users/:id/tweets": Limit(10_000, 900.0),
    "tweets": Limit(3_500, 900.0),
    "users/by/username": Limit(300, 900.0),
    "users/:id": Limit(300, 900.0),
    "users/:id/followers": Limit(300, 900.0),
    "users/:id/following": Limit(300, 900.0),
}
WINDOW = 3200
WINDOW_NO_REPLIES = 800
PROBLEMS = "https://api.twitter.com/2/problems/"
UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
TOO_MANY = {
    "title": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
    "detail": "Too Many Requests",
}
USAGE_CAPPED = {
    "account_id": 1,
    "product_name": "pay-per-use",
    "title": "UsageCapExceeded",
    "period": "Monthly",
    "scope": "Product",
    "detail": "Usage cap exceeded: Monthly product cap",
    "type": PROBLEMS + "usage-capped",
}
NOT_ENROLLED = {
    "client_id": "27512824",
    "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and "
    "tokens from a Twitter developer App that is attached to a Project. You can create a project "
    "via the developer portal.",
    "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
    "title": "Client Forbidden",
    "required_enrollment": "Appropriate Level of API Access",
    "reason": "client-not-enrolled",
    "type": PROBLEMS + "client-forbidden",
}
_BUCKETS = {
    "user_by_username": "users/by/username",
    "user_by_id": "users/:id",
    "timeline": "users/:id/tweets",
    "lookup": "tweets",
    "followers": "users/:id/followers",
    "following": "users/:id/following",
}
"""Each view's rate-limit bucket, named as `LIMITS` is."""


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status, content_type="application/json; charset=utf-8")


def _time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _token(offset: int) -> str:
    return base64.b32encode(f"o{offset:08d}".encode()).decode().rstrip("=").lower()


def _offset(token: str) -> int | None:
    try:
        text = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text[1:]) if text.startswith("o") and text[1:].isdigit() else None


def invalid(parameter: str, value: str, message: str) -> Response:
    """X's 400 `Invalid Request` problem."""
    return _json(
        {
            "errors": [{"parameters": {parameter: [value]}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
        400,
    )


def not_found(kind: str, parameter: str, value: str, text: str) -> dict[str, Any]:
    return {
        "value": value,
        "detail": f"Could not find {kind} with {text}: [{value}].",
        "title": "Not Found Error",
        "resource_type": kind,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def not_authorized(kind: str, parameter: str, value: str, label: str) -> dict[str, Any]:
    return {
        "value": value,
        "parameter": parameter,
        "resource_type": kind,
        "section": "data",
        "title": "Authorization Error",
        "detail": f"Sorry, you are not authorized to see the {label} with {parameter}: [{value}].",
        "type": PROBLEMS + "not-authorized-for-resource",
    }


class XEmulator:
    """The state behind the blueprint: the world, the token, budgets, the tier's reach."""

    def __init__(
        self,
        world: ArtWorld,
        *,
        token: str = EMULATOR_TOKEN,
        limits: dict[str, Limit] | None = LIMITS,
        followers_allowed: bool = True,
        post_cap: int | None = None,
    ) -> None:
        self.world = world
        self.post_cap = post_cap
        self.posts_read = 0
        self._cap_lock = threading.Lock()
        self.token = token
        self.limits = limits
        self.followers_allowed = followers_allowed
        self.limiter = Limiter()
        self.files = PostMedia(world)

    def read_posts(self, count: int) -> bool:
        """Count `count` posts returned against the monthly cap; False once it is spent."""
        with self._cap_lock:
            if self.post_cap is not None and self.posts_read >= self.post_cap:
                return False
            self.posts_read += count
            return True

    def by_id(self, ident: str) -> Account | None:
        for account in self.world.accounts:
            if account.network == "x" and account.id == ident:
                return account
        return None

    def user(self, account: Account, base: str) -> dict[str, Any]:
        links = self.world.profile_links(account)
        description = f"Art by {account.display_name}."
        description_urls = []
        for i, url in enumerate(links[1:]):
            short = f"https://t.co/{account.id[-4:]}d{i}"
            start = len(description) + 1
            description += " " + short
            description_urls.append(
                {
                    "start": start,
                    "end": start + len(short),
                    "url": short,
                    "expanded_url": url,
                    "display_url": url.removeprefix("https://"),
                }
            )
        entities: dict[str, Any] = {}
        user: dict[str, Any] = {
            "id": account.id,
            "name": account.display_name,
            "username": account.username,
            "created_at": _time(account.created_at),
            "protected": account.private,
            "description": description,
            "url": "",
            "profile_image_url": f"{base}/pbs/profile_images/{account.id}/avatar_normal.jpg",
            "public_metrics": {
                "followers_count": len(self.world.followers(account)),
                "following_count": len(self.world.following(account)),
                "tweet_count": len([p for p in self.world.posts(account) if not p.deleted]),
                "listed_count": 0,
            },
            "verified": False,
        }
        if links:
            short = f"https://t.co/{account.id[-4:]}u"
            user["url"] = short
            entities["url"] = {
                "urls": [
                    {
                        "start": 0,
                        "end": len(short),
                        "url": short,
                        "expanded_url": links[0],
                        "display_url": links[0].removeprefix("https://"),
                    }
                ]
            }
        if description_urls:
            entities["description"] = {"urls": description_urls}
        if entities:
            user["entities"] = entities
        return user

    def tweet(self, post: Post) -> dict[str, Any]:
        tweet: dict[str, Any] = {
            "id": post.id,
            "text": post.text,
            "edit_history_tweet_ids": [post.id],
            "author_id": post.account.id,
            "created_at": _time(post.created_at),
        }
        if post.repost_of:
            tweet["text"] = f"RT @someone: {post.text}"[:140]
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": post.repost_of}]
        elif post.reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": post.reply_to}]
            tweet["in_reply_to_user_id"] = "1"
        if post.images:
            tweet["attachments"] = {
                "media_keys": [self.media_key(post, i) for i in range(len(post.images))]
            }
        return tweet

    def media_key(self, post: Post, index: int) -> str:
        return f"3_{post.id}{index}"

    def media(self, post: Post, base: str) -> list[dict[str, Any]]:
        out = []
        for i, image in enumerate(post.images):
            ext = EXTENSIONS[image_format(image)]
            out.append(
                {
                    "media_key": self.media_key(post, i),
                    "type": "photo",
                    "url": f"{base}/pbs/media/{image.media_id}.{ext}",
                    "width": image.width,
                    "height": image.height,
                }
            )
        return out


def x_blueprint(emulator: XEmulator) -> Blueprint:
    """The `/x/2/...` API routes and the `/x/pbs/...` media."""
    bp = Blueprint("x_api", __name__, url_prefix=PREFIX)

    def base() -> str:
        return request.host_url.rstrip("/") + PREFIX

    @bp.before_request
    def _gate() -> Response | None:
        if not request.path.startswith(PREFIX + "/2/"):
            return None
        if request.headers.get("Authorization") != f"Bearer {emulator.token}":
            return _json(UNAUTHORIZED, 401)  # no rate-limit headers on a 401, as X does
        key = _BUCKETS.get((request.endpoint or "").removeprefix("x_api."))
        if emulator.limits is None or key is None:
            return None
        decision = emulator.limiter.take(key, request.remote_addr or "", emulator.limits[key])
        request.environ["sleuth.ratelimit"] = decision
        if not decision.allowed:
            return _json(TOO_MANY, 429)
        return None

    @bp.after_request
    def _headers(response: Response) -> Response:
        decision = request.environ.get("sleuth.ratelimit")
        if decision is not None:
            response.headers["x-rate-limit-limit"] = str(decision.limit)
            response.headers["x-rate-limit-remaining"] = str(decision.remaining)
            response.headers["x-rate-limit-reset"] = str(int(decision.reset_at))
        return response

    @bp.get("/2/users/by/username/<username>")
    def user_by_username(username: str) -> Response:
        account = emulator.world.account("x", username)
        if account is None or account.network != "x":
            return _json({"errors": [not_found("user", "username", username, "username")]})
        return _json({"data": emulator.user(account, base())})

    @bp.get("/2/users/<ident>")
    def user_by_id(ident: str) -> Response:
        if not ident.isdigit() or len(ident) > 19:
            return invalid("id", ident, f"The `id` query parameter value [{ident}] is not valid")
        account = emulator.by_id(ident)
        if account is None:
            return _json({"errors": [not_found("user", "id", ident, "id")]})
        return _json({"data": emulator.user(account, base())})

    def max_results(default: int, low: int, high: int) -> int | Response:
        raw = request.args.get("max_results", str(default))
        if not raw.isdigit() or not low <= int(raw) <= high:
            return invalid(
                "max_results",
                raw,
                f"The `max_results` query parameter value [{raw}] is not between {low} and {high}",
            )
        return int(raw)

    @bp.get("/2/users/<ident>/tweets")
    def timeline(ident: str) -> Response:
        account = emulator.by_id(ident)
        if account is None:
            return _json({"errors": [not_found("user", "id", ident, "id")]})
        if account.private:
            return _json({"errors": [not_authorized("user", "id", ident, "user")]})
        size = max_results(10, 5, 100)
        if isinstance(size, Response):
            return size
        excluded = set(request.args.get("exclude", "").split(","))
        listed = [p for p in emulator.world.posts(account) if not p.deleted]
        listed = listed[: WINDOW_NO_REPLIES if "replies" in excluded else WINDOW]
        if "retweets" in excluded:
            listed = [p for p in listed if not p.repost_of]
        if "replies" in excluded:
            listed = [p for p in listed if not p.reply_to]
        since = request.args.get("since_id", "")
        if since.isdigit():
            listed = [p for p in listed if int(p.id) > int(since)]
        token = request.args.get("pagination_token")
        start = 0
        if token:
            offset = _offset(token)
            if offset is None:
                return invalid("pagination_token", token, f"Invalid pagination token [{token}]")
            start = offset
        page = listed[start : start + size]
        if not emulator.read_posts(len(page)):
            return _json(USAGE_CAPPED, 429)  # while x-rate-limit-remaining is still > 0
        if not page:
            return _json({"meta": {"result_count": 0}})
        meta: dict[str, Any] = {
            "result_count": len(page),
            "newest_id": page[0].id,
            "oldest_id": page[-1].id,
        }
        if start + size < len(listed):
            meta["next_token"] = _token(start + size)
        if start:
            meta["previous_token"] = _token(max(0, start - size))
        body: dict[str, Any] = {"data": [emulator.tweet(p) for p in page], "meta": meta}
        if "attachments.media_keys" in request.args.get("expansions", ""):
            media = [m for p in page for m in emulator.media(p, base())]
            if media:
                body["includes"] = {"media": media[::-1]}  # X keeps no per-tweet order here
        return _json(body)

    @bp.get("/2/tweets")
    def lookup() -> Response:
        ids = [i for i in request.args.get("ids", "").split(",") if i]
        bad = [i for i in ids if not i.isdigit() or len(i) > 19]
        if not ids or bad or len(ids) > 100:
            value = request.args.get("ids", "")
            return invalid("ids", value, f"The `ids` query parameter value [{value}] is not valid")
        if not emulator.read_posts(len(ids)):
            return _json(USAGE_CAPPED, 429)
        data, errors, media, users = [], [], [], {}
        for ident in ids:
            post = emulator.world.post("x", ident)
            if post is None or post.deleted:
                errors.append(not_found("tweet", "ids", ident, "ids"))
            elif post.account.private:
                errors.append(not_authorized("tweet", "ids", ident, "Tweet"))
            else:
                data.append(emulator.tweet(post))
                media += emulator.media(post, base())
                users[post.account.id] = emulator.user(post.account, base())
        body: dict[str, Any] = {}
        if data:
            body["data"] = data
        expansions = request.args.get("expansions", "").split(",")
        includes: dict[str, Any] = {}
        if media and "attachments.media_keys" in expansions:
            includes["media"] = media
        if users and "author_id" in expansions:
            includes["users"] = list(users.values())
        if includes:
            body["includes"] = includes
        if errors:
            body["errors"] = errors
        return _json(body)

    def follow_list(ident: str, kind: str) -> Response:
        if not emulator.followers_allowed:
            return _json(NOT_ENROLLED, 403)
        account = emulator.by_id(ident)
        if account is None:
            return _json({"errors": [not_found("user", "id", ident, "id")]})
        size = max_results(100, 1, 1000)
        if isinstance(size, Response):
            return size
        people = (
            emulator.world.followers(account)
            if kind == "followers"
            else emulator.world.following(account)
        )
        token = request.args.get("pagination_token")
        start = _offset(token) if token else 0
        if start is None:
            return invalid("pagination_token", str(token), f"Invalid pagination token [{token}]")
        page = people[start : start + size]
        meta: dict[str, Any] = {"result_count": len(page)}
        if start + size < len(people):
            meta["next_token"] = _token(start + size)
        if start:
            meta["previous_token"] = _token(max(0, start - size))
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [emulator.user(p, base()) for p in page]
        return _json(body)

    @bp.get("/2/users/<ident>/followers")
    def followers(ident: str) -> Response:
        return follow_list(ident, "followers")

    @bp.get("/2/users/<ident>/following")
    def following(ident: str) -> Response:
        return follow_list(ident, "following")

    @bp.get("/pbs/media/<media_id>.<ext>")
    def media(media_id: str, ext: str) -> Response:
        found = emulator.world.media(media_id)
        if found is None or found[0].account.network != "x" or found[1].gone:
            return Response("Not Found", 404, content_type="text/plain")
        return emulator.files.response(found[1])

    return bp
