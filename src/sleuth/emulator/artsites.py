"""The art sites of the offline web, serving `ArtWorld`'s artworks with the real APIs' paths,
field names and errors: Danbooru (`/danbooru`), Derpibooru and Furbooru (`/derpibooru`,
`/furbooru`, Philomena's API), DeviantArt (`/deviantart` pages and `/about`, and its oEmbed at
`/deviantart-backend/oembed`), Pixiv (`/pixiv`: the ajax API, and an image host that answers
403 without Pixiv's Referer), and the link hubs (`/linktree/<name>`, `/carrd/<name>`).

An artist's profile links point at their accounts in real form (`Account.url` and the other
spellings people write), among links no account is behind; an artist with a link hub lists only
the hub, whose page lists the accounts (depth 2). The hostile cases: a Danbooru post hidden
from anonymous callers (`HIDDEN_POST_OFFSET`), Danbooru posts with no artist tag (found by
their source, `search[url_matches]`) and artists Danbooru does not know (found only through the
Pixiv or DeviantArt work their posts' `source` names), Linktree links gated as sensitive
(unlocked by POST `/linktree/api/profiles/validation/gates`), merged and deleted Philomena images
(`MERGED_IMAGE_OFFSET`, `DELETED_IMAGE_OFFSET`), originals over any size cap or decompression
bombs (`ArtWorld.original_quirk`: served by the image host's hostile routes), 404s.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import cached_property
from html import escape
from typing import Any

from flask import Blueprint, Response, abort, request, url_for
from PIL import Image

from sleuth.emulator.artworld import Account, Artist, Artwork, ArtWorld
from sleuth.emulator.world import ByteLRU, photo

HIDDEN_POST_OFFSET = 5_000_000
"""Danbooru post `page + this` is the artwork again, uploaded with a restricted tag: no file."""
MERGED_IMAGE_OFFSET = 5_000_000
"""Philomena image `page + this` was merged into `page` (`duplicate_of`)."""
DELETED_IMAGE_OFFSET = 6_000_000
"""Philomena image `page + this` was deleted, into nothing."""
PIXIV_USER_BASE = 20_000_000
"""An artist's Pixiv user id is this plus the artist's index."""
BANNED_PIXIV_USERS = 10
"""The Pixiv user ids just after the artists' are suspended: their profile answers 403."""
LINKTREE_ACCOUNT_BASE = 3_000_000
"""An artist's Linktree account id is this plus the artist's index."""
PIXIV_REFERER = "https://www.pixiv.net/"
PICTURE_CACHE_BYTES = 64 * 1024 * 1024
"""The encoded pictures kept, so that each size of an artwork is drawn once."""

_X_STATUS = re.compile(r"^https?://(?:www\.|mobile\.)?(?:twitter|x)\.com/(\w{1,15})/status/[0-9]+")
_DANBOORU_BOXES = {"180x180": 180, "360x360": 360, "720x720": 720}
_DANBOORU_SAMPLE_WIDTH = 850
_PHILOMENA_BOXES = {
    "thumb_tiny": (50, 50),
    "thumb_small": (150, 150),
    "thumb": (250, 250),
    "small": (320, 240),
    "medium": (800, 600),
    "large": (1280, 1024),
    "tall": (1024, 4096),
}
# Links on every artist's pages that name no account of theirs: the sites' own, pages of X.
_NOISE = (
    "https://twitter.com/deviantart",
    "https://twitter.com/intent/tweet?text=my%20new%20work",
    "https://x.com/home",
    "https://www.patreon.com/{name}",
    "https://www.youtube.com/@{name}",
)


def _spellings(account: Account, variant: int) -> str:
    """One of the ways people write the account's profile address; 0 is `Account.url`."""
    forms = [account.url]
    if account.network == "x":
        forms += [
            f"https://twitter.com/{account.username.capitalize()}",
            f"https://mobile.twitter.com/@{account.username}",
            f"http://www.twitter.com/#!/{account.username}",
        ]
    elif account.network == "mastodon":
        forms.append(f"https://{account.server}/users/{account.username}")
        if account.seen_from:  # as the other server shows it
            forms.append(f"https://{account.seen_from[0]}/@{account.username}@{account.server}")
    return forms[variant % len(forms)]


def _hub_url(artist: Artist) -> str:
    if artist.link_hub == "linktree":
        return f"https://linktr.ee/{artist.name}"
    return f"https://{artist.name}.carrd.co"


def account_links(artist: Artist, variant: int) -> list[str]:
    """A link to each of the artist's accounts, spelt one of the ways people write them."""
    return [_spellings(account, variant + i) for i, account in enumerate(artist.accounts)]


def profile_links(artist: Artist, variant: int) -> list[str]:
    """The links an artist's profile shows on an art site: the hub alone when they have one."""
    return [_hub_url(artist)] if artist.link_hub else account_links(artist, variant)


def _encoded(picture: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        picture.save(out, "PNG", compress_level=1)
    else:
        picture.convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _fit(width: int, height: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(1.0, box_w / width, box_h / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class ArtSites:
    """The artworks of `world` by page, and their pictures at every size, cached."""

    def __init__(self, world: ArtWorld) -> None:
        self.world = world
        self.by_page: dict[tuple[str, str], Artwork] = {
            (site, page): artwork
            for artwork in world.artworks.values()
            for site, page in artwork.pages.items()
        }
        self.cache = ByteLRU(PICTURE_CACHE_BYTES)

    def artwork(self, site: str, page: int | str) -> Artwork | None:
        return self.by_page.get((site, str(page)))

    def artist(self, artwork: Artwork) -> Artist:
        return self.world.artists[artwork.artist]

    def artist_named(self, name: str) -> Artist | None:
        return next((a for a in self.world.artists if a.name == name.lower()), None)

    def danbooru_untagged(self, artwork: Artwork) -> bool:
        """Its Danbooru post lacks the artist tag (`artist_request`): it has a work to cite."""
        return artwork.id % 4 == 1 and bool({"pixiv", "deviantart"} & artwork.pages.keys())

    def danbooru_knows(self, artist: Artist) -> bool:
        """Whether Danbooru has an artist entry: a few artists whose every post there cites a
        Pixiv or DeviantArt work have none."""
        cited = all(
            {"pixiv", "deviantart"} & self.world.artworks[w].pages.keys()
            for w in artist.artworks
            if "danbooru" in self.world.artworks[w].pages
        )
        return not (artist.index % 3 == 2 and cited)

    def danbooru_source(self, artwork: Artwork) -> str:
        """The post's `source`: the Pixiv work, else the DeviantArt one, else the artist's X
        post of it, else nothing."""
        for site in ("pixiv", "deviantart"):
            if site in artwork.pages:
                return self.world.page_url(artwork, site)
        for account in self.artist(artwork).accounts:
            if account.network == "x":
                for post in self.world.posts(account):
                    if any(image.artwork == artwork.id for image in post.images):
                        return f"https://twitter.com/{account.username}/status/{post.id}"
        return ""

    def danbooru_artist_matching(self, url: str) -> Artist | None:
        """The artist Danbooru's source extractor finds for `url`: the maker of a Pixiv or
        DeviantArt work, the owner of an X post or of a profile, when Danbooru knows them."""
        found = self._made_by.get(url.strip())
        status = _X_STATUS.match(url.strip())
        if found is None and status:
            account = self.world.account("x", status.group(1))
            found = None if account is None else self.world.artist_of(account)
        if found is None:
            found = next(
                (self.world.artist_of(a) for a in self.world.accounts if a.url == url), None
            )
        return found if found is not None and self.danbooru_knows(found) else None

    @cached_property
    def _made_by(self) -> dict[str, Artist]:
        return {
            self.world.page_url(artwork, site): self.artist(artwork)
            for artwork in self.world.artworks.values()
            for site in ("pixiv", "deviantart")
            if site in artwork.pages
        }

    def picture(self, artwork_id: int, box: tuple[int, int] | None, fmt: str) -> bytes:
        """The artwork (its original when `box` is None, else fitted in the box), encoded."""

        def make() -> bytes:
            artwork = self.world.artworks[artwork_id]
            picture = self.world.artwork_image(artwork)
            if box is not None:
                size = _fit(artwork.width, artwork.height, *box)
                picture = picture.resize(size, Image.Resampling.LANCZOS)
            return _encoded(picture, fmt)

        return self.cache.get_or_make(("artwork", artwork_id, box, fmt), make)

    def original_url(self, artwork: Artwork, endpoint: str, **values: object) -> str:
        """The original file's URL: the hostile image host's for a quirky artwork."""
        quirk = self.world.original_quirk(artwork)
        if quirk == "oversized":
            return url_for("imagehost.huge_body", _external=True)
        if quirk == "bomb":
            return url_for("imagehost.hostile_file", name="bomb", _external=True)
        return _url(endpoint, **values)


def _url(endpoint: str, **values: object) -> str:
    """The absolute URL of one of this module's routes (its blueprints nest in `artsites`)."""
    return url_for(f"artsites.{endpoint}", _external=True, **values)


def _json(data: object, status: int = 200) -> Response:
    return Response(json.dumps(data), status, mimetype="application/json")


def _html(body: str, status: int = 200, head: str = "") -> Response:
    page = f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"
    return Response(page, status, content_type="text/html; charset=utf-8")


def _image(data: bytes, fmt: str) -> Response:
    return Response(data, content_type=f"image/{'png' if fmt == 'png' else 'jpeg'}")


def _anchors(links: list[str]) -> str:
    return "".join(f'<p><a href="{escape(link)}">{escape(link)}</a></p>' for link in links)


def _iso(moment: datetime, offset_hours: int = 0, timespec: str = "milliseconds") -> str:
    """A moment as the site writes it: in its zone (`Z` for UTC), to the millisecond."""
    text = moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat(timespec=timespec)
    return text.replace("+00:00", "Z")


# --- Danbooru ----------------------------------------------------------------------------------


def danbooru_blueprint(sites: ArtSites) -> Blueprint:
    bp = Blueprint("danbooru", __name__, url_prefix="/danbooru")

    def not_found() -> Response:
        return _json(
            {
                "success": False,
                "error": "ActiveRecord::RecordNotFound",
                "message": "That record was not found.",
            },
            404,
        )

    def variant_url(artwork: Artwork, variant: str) -> str:
        if variant == "original":
            return sites.original_url(
                artwork, "danbooru.data", variant="original", artwork_id=artwork.id, ext="png"
            )
        return _url("danbooru.data", variant=variant, artwork_id=artwork.id, ext="jpg")

    def post_json(artwork: Artwork, post_id: int, hidden: bool) -> dict[str, object]:
        artist = sites.artist(artwork)
        w, h = artwork.width, artwork.height
        has_large = w > _DANBOORU_SAMPLE_WIDTH
        variants = [
            {
                "type": name,
                "url": variant_url(artwork, name),
                "width": _fit(w, h, box, box)[0],
                "height": _fit(w, h, box, box)[1],
                "file_ext": "jpg",
            }
            for name, box in _DANBOORU_BOXES.items()
        ]
        if has_large:
            sample = _fit(w, h, _DANBOORU_SAMPLE_WIDTH, 10**6)
            variants.append(
                {
                    "type": "sample",
                    "url": variant_url(artwork, "sample"),
                    "width": sample[0],
                    "height": sample[1],
                    "file_ext": "jpg",
                }
            )
        variants.append(
            {
                "type": "original",
                "url": variant_url(artwork, "original"),
                "width": w,
                "height": h,
                "file_ext": "png",
            }
        )
        md5 = f"{artwork.id:032x}"
        tagged = not sites.danbooru_untagged(artwork)
        artist_tag = artist.name if tagged else ""
        post: dict[str, object] = {
            "id": post_id,
            "created_at": _iso(artwork.created_at + timedelta(hours=2), -5),
            "uploader_id": 1000 + artwork.artist,
            "score": 10 + artwork.id % 50,
            "source": sites.danbooru_source(artwork),
            "md5": md5,
            "rating": "g",
            "image_width": w,
            "image_height": h,
            "tag_string": f"{artist_tag} 1girl original solo".lstrip()
            + ("" if tagged else " artist_request"),
            "file_ext": "png",
            "file_size": w * h,
            "tag_string_artist": artist_tag,
            "tag_string_general": "1girl solo",
            "tag_string_character": "",
            "tag_string_copyright": "original",
            "tag_string_meta": "" if tagged else "artist_request",
            "pixiv_id": int(artwork.pages["pixiv"]) if "pixiv" in artwork.pages else None,
            "parent_id": None,
            "has_large": has_large,
            "file_url": variant_url(artwork, "original"),
            "large_file_url": variant_url(artwork, "sample" if has_large else "original"),
            "preview_file_url": variant_url(artwork, "180x180"),
            "media_asset": {
                "id": 500_000 + artwork.id,
                "md5": md5,
                "file_ext": "png",
                "image_width": w,
                "image_height": h,
                "status": "active",
                "variants": variants,
            },
        }
        if hidden:  # what an anonymous caller sees of a restricted post
            for key in ("file_url", "large_file_url", "preview_file_url", "md5"):
                del post[key]
            asset = post["media_asset"]
            assert isinstance(asset, dict)
            del asset["md5"], asset["variants"]
        return post

    @bp.get("/posts/<int:post_id>.json")
    def post(post_id: int) -> Response:
        artwork = sites.artwork("danbooru", post_id)
        if artwork is not None:
            return _json(post_json(artwork, post_id, hidden=False))
        artwork = sites.artwork("danbooru", post_id - HIDDEN_POST_OFFSET)
        if artwork is not None:
            return _json(post_json(artwork, post_id, hidden=True))
        return not_found()

    @bp.get("/artists.json")
    def artists() -> Response:
        if "search[url_matches]" in request.args:
            artist = sites.danbooru_artist_matching(request.args["search[url_matches]"])
        else:
            artist = sites.artist_named(request.args.get("search[name]", ""))
        if artist is None or not sites.danbooru_knows(artist):
            return _json([])
        urls = [*profile_links(artist, 1), f"https://twitter.com/{artist.name}_old"]
        entries = [
            {
                "id": 9000 + artist.index * 10 + i,
                "artist_id": 7000 + artist.index,
                "url": url,
                "is_active": not url.endswith("_old"),
            }
            for i, url in enumerate(urls)
        ]
        return _json(
            [
                {
                    "id": 7000 + artist.index,
                    "name": artist.name,
                    "other_names": [],
                    "group_name": "",
                    "is_banned": False,
                    "is_deleted": False,
                    "urls": entries,
                }
            ]
        )

    @bp.get(
        "/data/<any(original, sample, '180x180', '360x360', '720x720'):variant>"
        "/<int:artwork_id>.<any(png, jpg):ext>"
    )
    def data(variant: str, artwork_id: int, ext: str) -> Response:
        if artwork_id not in sites.world.artworks:
            abort(404)
        box: tuple[int, int] | None = None
        if variant == "sample":
            box = (_DANBOORU_SAMPLE_WIDTH, 10**6)
        elif variant != "original":
            box = (_DANBOORU_BOXES[variant],) * 2
        return _image(sites.picture(artwork_id, box, "png" if ext == "png" else "jpeg"), ext)

    return bp


# --- Philomena (Derpibooru, Furbooru) ----------------------------------------------------------


def philomena_blueprint(sites: ArtSites, site: str) -> Blueprint:
    bp = Blueprint(site, __name__, url_prefix=f"/{site}")

    def rep_url(artwork: Artwork, page: str, rep: str) -> str:
        if rep == "full":
            return sites.original_url(artwork, f"{site}.view", image=int(page))
        return _url(f"{site}.rep", image=int(page), rep=rep)

    def image_json(artwork: Artwork) -> dict[str, object]:
        page = artwork.pages[site]
        artist = sites.artist(artwork)
        sources = profile_links(artist, artwork.id)
        moment = _iso(artwork.created_at + timedelta(hours=3))
        reps = {rep: rep_url(artwork, page, rep) for rep in (*_PHILOMENA_BOXES, "full")}
        return {
            "id": int(page),
            "created_at": moment,
            "updated_at": moment,
            "first_seen_at": moment,
            "width": artwork.width,
            "height": artwork.height,
            "aspect_ratio": artwork.width / artwork.height,
            "mime_type": "image/png",
            "format": "png",
            "animated": False,
            "size": artwork.width * artwork.height,
            "tags": [f"artist:{artist.name}", "oc", "safe", "solo"],
            "tag_count": 4,
            "uploader": "uploader",
            "score": 40,
            "description": "",
            "source_url": sources[0] if sources else None,
            "source_urls": sources,
            "view_url": reps["full"],
            "representations": reps,
            "deletion_reason": None,
            "duplicate_of": None,
            "hidden_from_users": False,
            "processed": True,
            "thumbnails_generated": True,
        }

    def gone(image: int, moment: datetime, merged: int | None, reason: str | None) -> Response:
        when = _iso(moment)
        body = {
            "id": image,
            "created_at": when,
            "updated_at": when,
            "first_seen_at": when,
            "duplicate_of": merged,
            "deletion_reason": reason,
            "hidden_from_users": True,
        }
        return _json({"image": body, "interactions": []})

    @bp.get("/api/v1/json/images/<int:image>")
    def image(image: int) -> Response:
        artwork = sites.artwork(site, image)
        if artwork is not None:
            return _json({"image": image_json(artwork), "interactions": []})
        merged = sites.artwork(site, image - MERGED_IMAGE_OFFSET)
        if merged is not None:
            return gone(image, merged.created_at, image - MERGED_IMAGE_OFFSET, None)
        deleted = sites.artwork(site, image - DELETED_IMAGE_OFFSET)
        if deleted is not None:
            return gone(image, deleted.created_at, None, "Rule #1 (not the artist's)")
        return _json({"error": "not found"}, 404)

    @bp.get("/api/v1/json/search/images")
    def search() -> Response:
        query = request.args.get("q", "")
        per_page = min(50, max(1, request.args.get("per_page", 25, type=int) or 25))
        page = max(1, request.args.get("page", 1, type=int) or 1)
        artist = (
            sites.artist_named(query.removeprefix("artist:"))
            if query.startswith("artist:")
            else None
        )
        found = (
            []
            if artist is None
            else [
                image_json(sites.world.artworks[w])
                for w in artist.artworks
                if site in sites.world.artworks[w].pages
            ]
        )
        shown = found[(page - 1) * per_page : page * per_page]
        return _json({"images": shown, "interactions": [], "total": len(found)})

    @bp.get("/img/view/<int:image>.png")
    def view(image: int) -> Response:
        artwork = sites.artwork(site, image) or abort(404)
        return _image(sites.picture(artwork.id, None, "png"), "png")

    @bp.get(f"/img/<int:image>/<any({', '.join(_PHILOMENA_BOXES)}):rep>.jpg")
    def rep(image: int, rep: str) -> Response:
        artwork = sites.artwork(site, image) or abort(404)
        return _image(sites.picture(artwork.id, _PHILOMENA_BOXES[rep], "jpeg"), "jpg")

    return bp


# --- DeviantArt --------------------------------------------------------------------------------

_DEVIATION = re.compile(r"^https?://(?:www\.)?deviantart\.com/([\w-]+)/art/[\w-]*?-?([0-9]+)/?$")


def deviantart_blueprints(sites: ArtSites) -> list[Blueprint]:
    site = Blueprint("deviantart", __name__, url_prefix="/deviantart")
    backend = Blueprint("deviantart_backend", __name__, url_prefix="/deviantart-backend")

    def deviation(url: str) -> Artwork | None:
        match = _DEVIATION.match(url)
        if not match:
            return None
        artwork = sites.artwork("deviantart", match.group(2))
        if artwork is None or sites.artist(artwork).name != match.group(1).lower():
            return None
        return artwork

    @backend.get("/oembed")
    def oembed() -> Response:
        artwork = deviation(request.args.get("url", ""))
        if artwork is None:
            return Response("404 Not Found", 404, content_type="text/plain")
        artist = sites.artist(artwork)
        thumb = _fit(artwork.width, artwork.height, 300, 300)
        return _json(
            {
                "version": "1.0",
                "type": "photo",
                "title": f"Artwork {artwork.id}",
                "category": "Digital Art / Paintings & Airbrushing",
                "url": _url("deviantart.image", artwork_id=artwork.id),
                "author_name": artist.name,
                "author_url": f"https://www.deviantart.com/{artist.name}",
                "provider_name": "DeviantArt",
                "provider_url": "https://www.deviantart.com",
                "safety": "nonadult",
                "pubdate": _iso(artwork.created_at, -8, "seconds"),
                "width": artwork.width,
                "height": artwork.height,
                "imagetype": "png",
                "thumbnail_url": _url("deviantart.image", artwork_id=artwork.id),
                "thumbnail_width": thumb[0],
                "thumbnail_height": thumb[1],
            }
        )

    @site.get("/<user>/art/<slug>")
    def page(user: str, slug: str) -> Response:
        url = f"https://www.deviantart.com/{user}/art/{slug}"
        artwork = deviation(url) or abort(404)
        image = _url("deviantart.image", artwork_id=artwork.id)
        head = f'<link rel="preload" as="image" href="{escape(image)}">'
        return _html(f"<h1>Artwork {artwork.id}</h1>", head=head)

    @site.get("/<user>/about")
    def about(user: str) -> Response:
        artist = sites.artist_named(user) or abort(404)
        noise = [n.format(name=artist.name) for n in _NOISE]
        links = [*profile_links(artist, 2), *noise]
        return _html(f"<h1>{escape(artist.name)}</h1><section>{_anchors(links)}</section>")

    @site.get("/img/<int:artwork_id>.png")
    def image(artwork_id: int) -> Response:
        if artwork_id not in sites.world.artworks:
            abort(404)
        return _image(sites.picture(artwork_id, None, "png"), "png")

    return [site, backend]


# --- Pixiv -------------------------------------------------------------------------------------


def pixiv_blueprint(sites: ArtSites) -> Blueprint:
    bp = Blueprint("pixiv", __name__, url_prefix="/pixiv")

    def error(message: str, status: int) -> Response:
        return _json({"error": True, "message": message, "body": []}, status)

    def pages_of(artwork: Artwork) -> int:
        return 1 + artwork.id % 3

    def urls(artwork: Artwork, illust: int, n: int) -> dict[str, str]:
        master = _url("pixiv.master", illust=illust, n=n)
        if n == 0:
            original = sites.original_url(artwork, "pixiv.original", illust=illust, n=n)
        else:
            original = _url("pixiv.original", illust=illust, n=n)
        return {
            "mini": master,
            "thumb": master,
            "small": master,
            "regular": master,
            "original": original,
        }

    def page_size(artwork: Artwork, n: int) -> tuple[int, int]:
        return (artwork.width, artwork.height) if n == 0 else (800, 600)

    @bp.get("/ajax/illust/<int:illust>")
    def illust(illust: int) -> Response:
        artwork = sites.artwork("pixiv", illust)
        if artwork is None:
            return error("該当作品は削除されたか、存在しない作品IDです。", 404)
        artist = sites.artist(artwork)
        moment = artwork.created_at.replace(microsecond=0).isoformat()
        return _json(
            {
                "error": False,
                "message": "",
                "body": {
                    "illustId": str(illust),
                    "illustTitle": f"Artwork {artwork.id}",
                    "illustComment": "",
                    "createDate": moment,
                    "uploadDate": moment,
                    "userId": str(PIXIV_USER_BASE + artist.index),
                    "userName": f"Artist {artist.index}",
                    "userAccount": artist.name,
                    "pageCount": pages_of(artwork),
                    "width": artwork.width,
                    "height": artwork.height,
                    "urls": urls(artwork, illust, 0),
                },
            }
        )

    @bp.get("/ajax/illust/<int:illust>/pages")
    def pages(illust: int) -> Response:
        artwork = sites.artwork("pixiv", illust)
        if artwork is None:
            return error("該当作品は削除されたか、存在しない作品IDです。", 404)
        body = []
        for n in range(pages_of(artwork)):
            width, height = page_size(artwork, n)
            body.append({"urls": urls(artwork, illust, n), "width": width, "height": height})
        return _json({"error": False, "message": "", "body": body})

    @bp.get("/ajax/user/<int:user>")
    def user(user: int) -> Response:
        index = user - PIXIV_USER_BASE
        if len(sites.world.artists) <= index < len(sites.world.artists) + BANNED_PIXIV_USERS:
            return error("このユーザーは凍結されています", 403)  # suspended accounts
        if not 0 <= index < len(sites.world.artists):
            return error("ユーザーが見つかりません", 404)
        artist = sites.world.artists[index]
        social: dict[str, dict[str, str]] = {}
        webpage = None
        comment = "Commissions open."
        if artist.link_hub:
            webpage = _hub_url(artist)
        else:
            for account in artist.accounts:
                if account.network == "x":
                    social["twitter"] = {"url": f"https://twitter.com/{account.username}"}
                elif account.network == "bluesky":
                    webpage = account.url
                else:
                    comment += f"\nMastodon: @{account.username}@{account.server}"
        return _json(
            {
                "error": False,
                "message": "",
                "body": {
                    "userId": str(user),
                    "name": f"Artist {artist.index}",
                    "premium": False,
                    "isFollowed": False,
                    "webpage": webpage,
                    "social": social or [],
                    "comment": comment,
                },
            }
        )

    def guarded(make: Callable[[], Response]) -> Response:
        if not request.headers.get("Referer", "").startswith(PIXIV_REFERER):
            return Response(
                "<html><body>403 Forbidden</body></html>", 403, content_type="text/html"
            )
        return make()

    def picture(illust: int, n: int, fmt: str) -> Response:
        artwork = sites.artwork("pixiv", illust) or abort(404)
        if n >= pages_of(artwork):
            abort(404)
        if n == 0:
            box = None if fmt == "png" else (1200, 1200)
            return _image(sites.picture(artwork.id, box, fmt), fmt)
        data = _encoded(photo(sites.world.seed, 2_000_000 + artwork.id * 10 + n, 800, 600), fmt)
        return _image(data, fmt)

    @bp.get("/i/img-original/img/<int:illust>_p<int:n>.png")
    def original(illust: int, n: int) -> Response:
        return guarded(lambda: picture(illust, n, "png"))

    @bp.get("/i/img-master/img/<int:illust>_p<int:n>_master1200.jpg")
    def master(illust: int, n: int) -> Response:
        return guarded(lambda: picture(illust, n, "jpeg"))

    return bp


# --- link hubs ---------------------------------------------------------------------------------


def linkhub_blueprints(sites: ArtSites) -> list[Blueprint]:
    linktree = Blueprint("linktree", __name__, url_prefix="/linktree")
    carrd = Blueprint("carrd", __name__, url_prefix="/carrd")

    def hub_artist(name: str) -> Artist:
        artist = sites.artist_named(name)
        if artist is None or artist.link_hub is None:
            abort(404)
        return artist

    def tree_links(artist: Artist) -> list[dict[str, object]]:
        """The page's CLASSIC links: the accounts but X, then the carrd site; an artist with an
        even index marks their account links sensitive."""
        gated = artist.index % 2 == 0
        links: list[dict[str, object]] = [
            {
                "id": 100 + i,
                "type": "CLASSIC",
                "title": a.network,
                "url": a.url,
                "locked": gated,
                "rules": {"gate": {"activeOrder": ["sensitiveContent"] if gated else []}},
            }
            for i, a in enumerate(artist.accounts)
            if a.network != "x"
        ]
        site = f"https://{artist.name}.carrd.co"
        links.append({"id": 99, "type": "CLASSIC", "title": "site", "url": site, "locked": False})
        return links

    @linktree.get("/<name>")
    def tree(name: str) -> Response:
        artist = hub_artist(name)
        links = [{**link, "url": None} if link["locked"] else link for link in tree_links(artist)]
        social = [{"type": "TWITTER", "url": a.url} for a in artist.accounts if a.network == "x"]
        data = {
            "props": {
                "pageProps": {
                    "account": {
                        "id": LINKTREE_ACCOUNT_BASE + artist.index,
                        "username": artist.name,
                        "socialLinks": social,
                    },
                    "links": links,
                }
            },
            "page": "/[profile]",
        }
        script = json.dumps(data).replace("</", "<\\/")
        body = f'<script id="__NEXT_DATA__" type="application/json">{script}</script>'
        return _html(body)

    @linktree.post("/api/profiles/validation/gates")
    def gates() -> Response:
        body: Any = request.get_json(silent=True)
        try:
            index = int(body["accountId"]) - LINKTREE_ACCOUNT_BASE
            wanted = {int(i) for i in body["validationInput"]["acceptedSensitiveContent"]}
        except (TypeError, KeyError, ValueError):
            return _json({"message": "Invalid request"}, 400)
        if not 0 <= index < len(sites.world.artists) or sites.world.artists[index].link_hub is None:
            return _json({"message": "Account not found"}, 404)
        links = tree_links(sites.world.artists[index])
        unlocked = [{**link, "locked": False} for link in links if link["id"] in wanted]
        return _json({"links": unlocked})

    @carrd.get("/<name>")
    def site(name: str) -> Response:
        artist = hub_artist(name)
        links = [
            *account_links(artist, 3),
            f"https://linktr.ee/{artist.name}",
            "https://twitter.com/home",
        ]
        return _html(f"<h1>{escape(artist.name)}</h1>{_anchors(links)}")

    return [linktree, carrd]


def artsites_blueprint(world: ArtWorld) -> Blueprint:
    """Every art site and link hub of `world`, each under its own prefix."""
    sites = ArtSites(world)
    bp = Blueprint("artsites", __name__)
    for child in (
        danbooru_blueprint(sites),
        philomena_blueprint(sites, "derpibooru"),
        philomena_blueprint(sites, "furbooru"),
        *deviantart_blueprints(sites),
        pixiv_blueprint(sites),
        *linkhub_blueprints(sites),
    ):
        bp.register_blueprint(child)
    return bp
