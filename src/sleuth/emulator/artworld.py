"""The artists of the offline web: who they are, where they post, what they posted.

The finder (and the graph crawler) need a world in which the answer is known: artists with
accounts on X, Mastodon (two instances, and remote accounts seen from the other one) and
Bluesky; artworks on the art sites; posts that contain those artworks the way real reposts do
(resized, re-encoded, cropped, mirrored, with a caption burnt in), beside posts of unrelated
photos, reposts of others, replies and deleted posts. Like `world.py`, every object is a pure
function of (seed, parameters): no clock, no global random state. An account's posts are
generated when first asked for, so a world of accounts with thousands of posts costs little
until it is read.

`ArtWorld.ground_truth()` says, for every artwork, its pages on the art sites and each post
(network, account, post id, URL, image position) that contains it; `post_image_bytes` renders
an image as its post serves it. The emulators of each API serve this world; the benchmark and
the tests score answers against the ground truth.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from sleuth.emulator.world import photo

NETWORKS = ("x", "mastodon", "bluesky")
ART_SITES = ("danbooru", "derpibooru", "furbooru", "deviantart", "pixiv")
MASTODON_SERVERS = ("mastodon.example", "art.example")
"""The two emulated Mastodon instances; an account lives on one and may be seen from the other."""
BLUESKY_SERVER = "bsky.social"
X_SERVER = "x.com"

EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
"""The world's first day; everything happens in the 1,000 days after it."""
WORLD_DAYS = 1000
X_EPOCH_MS = 1288834974657  # X's snowflake epoch (ms)

ARTWORK_SIZES = ((1200, 900), (900, 1200), (1600, 1000), (1000, 1000), (800, 1100))
MAX_IMAGES_PER_POST = 4
_ARTWORK_IMAGE_BASE = 1_000_000  # photo ids of artworks; unrelated photos use ids below it
_TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Transform:
    """How a post's copy of an artwork differs from the original (identity: all defaults)."""

    scale: float = 1.0  # 0.25-1.0 of the original's size
    fmt: str = "jpeg"  # "jpeg", "webp" or "png"
    quality: int = 95  # JPEG/WebP quality
    crop: float = 0.0  # the fraction cut from each side, at most 0.05
    mirror: bool = False
    caption: str | None = None  # a small text burnt in, as reposters sign theirs


@dataclass(frozen=True)
class Artwork:
    """One artwork: its original picture, when it was made, and its pages on the art sites."""

    id: int
    artist: int  # index into ArtWorld.artists
    created_at: datetime
    width: int
    height: int
    pages: dict[str, str]  # art site -> page id (a Danbooru post id, a Pixiv illust id, ...)

    @property
    def image_id(self) -> int:
        """The id of its picture in `world.photo`."""
        return _ARTWORK_IMAGE_BASE + self.id


@dataclass(frozen=True)
class Account:
    """An artist's (or a bystander's) account on one network."""

    network: str  # one of NETWORKS
    server: str  # its home server: X_SERVER, one of MASTODON_SERVERS, BLUESKY_SERVER
    username: str  # X screen name, Mastodon local username, Bluesky handle (with its domain)
    id: str  # X numeric id, Mastodon id, Bluesky DID
    artist: int | None  # index into ArtWorld.artists; None for a bystander
    display_name: str
    created_at: datetime
    posts_count: int
    private: bool = False  # protected (X), locked with no public posts (Mastodon)
    seen_from: tuple[str, ...] = ()  # other Mastodon servers that know it as a remote account

    @property
    def acct(self) -> str:
        """How others write it: `@user@server` on Mastodon, `@handle` elsewhere."""
        if self.network == "mastodon":
            return f"{self.username}@{self.server}"
        return self.username

    @property
    def url(self) -> str:
        """The profile's public web address on the real network."""
        if self.network == "x":
            return f"https://x.com/{self.username}"
        if self.network == "mastodon":
            return f"https://{self.server}/@{self.username}"
        return f"https://bsky.app/profile/{self.username}"


@dataclass(frozen=True)
class PostImage:
    """One image of a post: an artwork's copy, or an unrelated photo."""

    media_id: str
    width: int
    height: int
    photo_id: int  # the picture in `world.photo`
    artwork: int | None = None  # Artwork.id when it is a copy of one
    transform: Transform = field(default_factory=Transform)
    gone: bool = False  # deleted from the media server: 404


@dataclass(frozen=True)
class Post:
    """A post with its images, newest posts having the largest ids."""

    id: str  # X/Mastodon snowflake, Bluesky record key (a TID)
    account: Account
    created_at: datetime
    text: str
    images: tuple[PostImage, ...]
    repost_of: str | None = None  # a repost (retweet, reblog) of another account's post
    reply_to: str | None = None
    deleted: bool = False  # listed nowhere; a lookup by id says it is gone

    @property
    def url(self) -> str:
        if self.account.network == "x":
            return f"https://x.com/{self.account.username}/status/{self.id}"
        if self.account.network == "mastodon":
            return f"https://{self.account.server}/@{self.account.username}/{self.id}"
        return f"https://bsky.app/profile/{self.account.username}/post/{self.id}"


@dataclass(frozen=True)
class Artist:
    """An artist: a name, accounts on some networks, artworks, maybe a link-hub page."""

    index: int
    name: str
    accounts: tuple[Account, ...]
    artworks: tuple[int, ...]  # Artwork.id
    link_hub: str | None = None  # "linktree" or "carrd": their links live on a hub page


_Follows = dict[tuple[str, str], list[Account]]
"""Accounts by (network, id) of the account they follow or are followed by."""


def snowflake(moment: datetime, sequence: int, network: str) -> str:
    """A post id that sorts by time as the network's do (X: ms since its epoch << 22;
    Mastodon: ms since 1970 << 16)."""
    ms = int(moment.timestamp() * 1000)
    if network == "x":
        return str(((ms - X_EPOCH_MS) << 22) | (sequence & 0x3FFFFF))
    return str((ms << 16) | (sequence & 0xFFFF))


def tid(moment: datetime, sequence: int) -> str:
    """A Bluesky record key: 13 base-32 characters of (µs << 10 | clock id), sortable."""
    value = (int(moment.timestamp() * 1_000_000) << 10) | (sequence & 0x3FF)
    out = []
    for _ in range(13):
        out.append(_TID_CHARS[value & 31])
        value >>= 5
    return "".join(reversed(out))


def _did(rng: random.Random) -> str:
    return "did:plc:" + "".join(rng.choice(_TID_CHARS) for _ in range(24))


class ArtWorld:
    """The artists' world for a seed: `artists` artists with `artworks_per_artist` artworks
    each and accounts of about `posts_per_account` posts; the first artist's accounts have
    `big_account_posts` posts (an artist who posts a lot, for scans that page far)."""

    def __init__(
        self,
        seed: int = 0,
        artists: int = 12,
        artworks_per_artist: int = 4,
        posts_per_account: int = 40,
        big_account_posts: int = 0,
    ) -> None:
        if artists < 1 or artworks_per_artist < 1 or posts_per_account < artworks_per_artist:
            raise ValueError("need artists >= 1, artworks >= 1, posts_per_account >= artworks")
        self.seed = seed
        self.posts_per_account = posts_per_account
        self.big_account_posts = big_account_posts
        self.artists: list[Artist] = []
        self.artworks: dict[int, Artwork] = {}
        self._posts: dict[tuple[str, str], list[Post]] = {}
        self._media: dict[str, tuple[Post, PostImage]] | None = None
        self._follows: tuple[_Follows, _Follows] | None = None
        self._build(artists, artworks_per_artist)

    def _rng(self, *parts: object) -> random.Random:
        # A string seed is hashed with SHA-512: the same on every run and Python version.
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    def _build(self, artists: int, per_artist: int) -> None:
        artwork_id = 0
        for index in range(artists):
            rng = self._rng("artist", index)
            name = f"artist{index:03d}"
            networks = [n for n in NETWORKS if rng.random() < 0.8] or [rng.choice(NETWORKS)]
            accounts = tuple(
                self._account(rng, network, index, name, position)
                for position, network in enumerate(networks)
            )
            works = []
            for _ in range(per_artist):
                width, height = rng.choice(ARTWORK_SIZES)
                day = rng.uniform(30, WORLD_DAYS - 30)
                sites = rng.sample(ART_SITES, rng.randint(1, 3))
                pages = {
                    site: str(10_000 + artwork_id * 7 + ART_SITES.index(site)) for site in sites
                }
                self.artworks[artwork_id] = Artwork(
                    artwork_id, index, EPOCH + timedelta(days=day), width, height, pages
                )
                works.append(artwork_id)
                artwork_id += 1
            hub = rng.choice((None, None, "linktree", "carrd"))
            self.artists.append(Artist(index, name, accounts, tuple(works), hub))

    def _account(
        self, rng: random.Random, network: str, artist: int, name: str, position: int
    ) -> Account:
        count = self.posts_per_account + rng.randint(0, self.posts_per_account // 2)
        if artist == 0 and self.big_account_posts:
            count = self.big_account_posts
        created = EPOCH + timedelta(days=rng.uniform(0, 20))
        private = artist % 11 == 10 and position == 0  # a few artists lock one account
        if network == "x":
            ident, server, username = str(10**15 + artist * 10 + position), X_SERVER, name
        elif network == "mastodon":
            server = MASTODON_SERVERS[artist % 2]
            ident, username = str(100_000 + artist * 10 + position), name
        else:
            ident, server, username = _did(rng), BLUESKY_SERVER, f"{name}.bsky.social"
        seen = tuple(s for s in MASTODON_SERVERS if s != server) if network == "mastodon" else ()
        return Account(
            network,
            server,
            username,
            ident,
            artist,
            f"Artist {artist}",
            created,
            count,
            private,
            seen,
        )

    # -- lookups ------------------------------------------------------------------------------

    @cached_property
    def accounts(self) -> list[Account]:
        return [account for artist in self.artists for account in artist.accounts]

    def account(self, network: str, username_or_id: str) -> Account | None:
        """The account with this username (case-insensitive) or id on `network`."""
        wanted = username_or_id.lower().lstrip("@")
        for account in self.accounts:
            if account.network == network and wanted in (account.username.lower(), account.id):
                return account
        return None

    def artist_of(self, account: Account) -> Artist | None:
        return None if account.artist is None else self.artists[account.artist]

    def posts(self, account: Account) -> list[Post]:
        """The account's posts, newest first (deleted ones included, flagged)."""
        key = (account.network, account.id)
        if key not in self._posts:
            self._posts[key] = self._make_posts(account)
        return self._posts[key]

    def post(self, network: str, post_id: str) -> Post | None:
        for account in self.accounts:
            if account.network == network:
                for post in self.posts(account):
                    if post.id == post_id:
                        return post
        return None

    def page_url(self, artwork: Artwork, site: str) -> str:
        """The artwork's page on `site` as its real address, the URL a user pastes."""
        page = artwork.pages[site]
        if site == "danbooru":
            return f"https://danbooru.donmai.us/posts/{page}"
        if site in ("derpibooru", "furbooru"):
            return f"https://{site}.org/images/{page}"
        if site == "deviantart":
            name = self.artists[artwork.artist].name
            return f"https://www.deviantart.com/{name}/art/Artwork-{artwork.id}-{page}"
        return f"https://www.pixiv.net/artworks/{page}"

    def original_quirk(self, artwork: Artwork) -> str | None:
        """Why the boorus' and Pixiv's original file of a few artworks cannot be used, so that a
        downloader must fall back on a smaller copy: "oversized" (a body over any sane cap),
        "bomb" (a decompression bomb), None for the others."""
        return {3: "oversized", 7: "bomb"}.get(artwork.id % 10)

    def media(self, media_id: str) -> tuple[Post, PostImage] | None:
        """The post and image with this media id (any network), for media servers."""
        if self._media is None:
            self._media = {
                image.media_id: (post, image)
                for account in self.accounts
                for post in self.posts(account)
                for image in post.images
            }
        return self._media.get(media_id)

    def hub_url(self, artist: Artist) -> str | None:
        """The artist's link-hub page on the real site, if they have one."""
        if artist.link_hub == "linktree":
            return f"https://linktr.ee/{artist.name}"
        if artist.link_hub == "carrd":
            return f"https://{artist.name}.carrd.co"
        return None

    def profile_links(self, account: Account) -> list[str]:
        """What the account's profile links to: the artist's other accounts, then their hub."""
        artist = self.artist_of(account)
        if artist is None:
            return []
        links = [other.url for other in artist.accounts if other != account]
        hub = self.hub_url(artist)
        return links + ([hub] if hub else [])

    def followers(self, account: Account) -> list[Account]:
        """The accounts that follow `account`, newest follow first: a fixed pseudo-random half
        of the other accounts on its network (the graph crawler's ground truth)."""
        return self._follow_graph()[0].get((account.network, account.id), [])

    def following(self, account: Account) -> list[Account]:
        """The accounts `account` follows: those that count it among their followers."""
        return self._follow_graph()[1].get((account.network, account.id), [])

    def _follow_graph(self) -> tuple[_Follows, _Follows]:
        """Followers and follows of every account, drawn once."""
        if self._follows is None:
            followers: _Follows = {}
            following: _Follows = {}
            for account in self.accounts:
                rng = self._rng("followers", account.network, account.id)
                others = [a for a in self.accounts if a.network == account.network and a != account]
                chosen = [a for a in others if rng.random() < 0.5]
                rng.shuffle(chosen)
                followers[(account.network, account.id)] = chosen
                for follower in chosen:
                    following.setdefault((follower.network, follower.id), []).append(account)
            self._follows = (followers, following)
        return self._follows

    def hides_collections(self, account: Account) -> bool:
        """Whether the owner hides their followers and follows (Mastodon's `hide_collections`)."""
        return (
            account.network == "mastodon"
            and account.artist is not None
            and (account.artist % 5 == 4)
        )

    # -- posts --------------------------------------------------------------------------------

    def _make_posts(self, account: Account) -> list[Post]:
        rng = self._rng("posts", account.network, account.id)
        artist = self.artist_of(account)
        works = [self.artworks[w] for w in artist.artworks] if artist else []
        # Each artwork appears in one post of this account with probability 0.85 (never on
        # a locked account); its post comes 0-5 days after the artwork was made.
        placed = [w for w in works if not account.private and rng.random() < 0.85]
        moments = sorted(
            account.created_at + timedelta(days=rng.uniform(0, WORLD_DAYS - 20))
            for _ in range(max(0, account.posts_count - len(placed)))
        )
        plan: list[tuple[datetime, Artwork | None]] = [(m, None) for m in moments]
        plan += [(w.created_at + timedelta(days=rng.uniform(0, 5)), w) for w in placed]
        plan.sort(key=lambda item: item[0])
        posts = []
        for sequence, (moment, artwork) in enumerate(plan):
            posts.append(self._make_post(rng, account, sequence, moment, artwork))
        posts.reverse()
        return posts

    def _make_post(
        self,
        rng: random.Random,
        account: Account,
        sequence: int,
        moment: datetime,
        artwork: Artwork | None,
    ) -> Post:
        if account.network == "bluesky":
            post_id = tid(moment, sequence)
        else:
            post_id = snowflake(moment, sequence, account.network)
        count = rng.choice((1, 1, 1, 2, 2, 3, 4))
        images = []
        position = rng.randrange(count) if artwork else -1
        for i in range(count):
            media_id = f"{account.network[0]}{account.id[-6:]}{sequence:05d}{i}"
            if i == position and artwork is not None:
                transform = self._transform(rng)
                width = max(16, round(artwork.width * transform.scale * (1 - 2 * transform.crop)))
                height = max(16, round(artwork.height * transform.scale * (1 - 2 * transform.crop)))
                images.append(
                    PostImage(media_id, width, height, artwork.image_id, artwork.id, transform)
                )
            else:
                photo_id = rng.randrange(1, _ARTWORK_IMAGE_BASE)
                width, height = rng.choice(((640, 480), (480, 640), (800, 600)))
                gone = rng.random() < 0.02
                images.append(PostImage(media_id, width, height, photo_id, gone=gone))
        kind = rng.random()
        repost = reply = None
        if artwork is None and kind < 0.08:
            repost = f"{sequence + 7}"  # someone else's post, shared: a scan must drop it
        elif artwork is None and kind < 0.14:
            reply = f"{sequence + 3}"
        deleted = artwork is None and repost is None and rng.random() < 0.02
        text = f"{account.display_name} post {sequence}" + (" (new work)" if artwork else "")
        return Post(post_id, account, moment, text, tuple(images), repost, reply, deleted)

    def _transform(self, rng: random.Random) -> Transform:
        if rng.random() < 0.25:
            return Transform()  # posted as made
        return Transform(
            scale=round(rng.uniform(0.25, 1.0), 3),
            fmt=rng.choices(("jpeg", "webp", "png"), (6, 3, 1))[0],
            quality=rng.randint(50, 95),
            crop=round(rng.uniform(0.0, 0.05), 3) if rng.random() < 0.4 else 0.0,
            mirror=rng.random() < 0.1,
            caption="@" + f"fan{rng.randrange(100)}" if rng.random() < 0.15 else None,
        )

    # -- pictures -----------------------------------------------------------------------------

    def artwork_image(self, artwork: Artwork) -> Image.Image:
        return photo(self.seed, artwork.image_id, artwork.width, artwork.height)

    def artwork_bytes(self, artwork: Artwork, fmt: str = "png") -> bytes:
        """The original as the art sites serve it (PNG, lossless; or JPEG q 95)."""
        return _encode(self.artwork_image(artwork), fmt, 95)

    def post_image_bytes(self, image: PostImage) -> bytes:
        """The image as its post's media server serves it."""
        if image.artwork is None:
            return _encode(photo(self.seed, image.photo_id, image.width, image.height), "jpeg", 85)
        artwork = self.artworks[image.artwork]
        t = image.transform
        picture = self.artwork_image(artwork)
        if t.crop:
            dx, dy = round(artwork.width * t.crop), round(artwork.height * t.crop)
            picture = picture.crop((dx, dy, artwork.width - dx, artwork.height - dy))
        picture = picture.resize((image.width, image.height), Image.Resampling.LANCZOS)
        if t.mirror:
            picture = ImageOps.mirror(picture)
        if t.caption:
            ImageDraw.Draw(picture).text((8, image.height - 20), t.caption, fill=(255, 255, 255))
        return _encode(picture, t.fmt, t.quality)

    # -- the answer ---------------------------------------------------------------------------

    def ground_truth(self) -> list[dict[str, Any]]:
        """Per artwork: its artist, pages and every listed post that contains it."""
        found: dict[int, list[dict[str, Any]]] = {a: [] for a in self.artworks}
        for account in self.accounts:
            for post in self.posts(account):
                if post.deleted or post.repost_of:
                    continue
                for position, image in enumerate(post.images, start=1):
                    if image.artwork is not None:
                        found[image.artwork].append(
                            {
                                "network": account.network,
                                "account": account.acct,
                                "account_id": account.id,
                                "post_id": post.id,
                                "post_url": post.url,
                                "image_position": f"{position}/{len(post.images)}",
                                "mirrored": image.transform.mirror,
                            }
                        )
        return [
            {
                "artwork": artwork.id,
                "artist": self.artists[artwork.artist].name,
                "created_at": artwork.created_at.isoformat(),
                "pages": artwork.pages,
                "page_urls": {site: self.page_url(artwork, site) for site in artwork.pages},
                "accounts": [
                    {"network": a.network, "account": a.acct, "account_id": a.id}
                    for a in self.artists[artwork.artist].accounts
                ],
                "posts": found[artwork.id],
            }
            for artwork in self.artworks.values()
        ]


def _encode(picture: Image.Image, fmt: str, quality: int) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        picture.save(out, "PNG", optimize=False, compress_level=1)
    elif fmt == "webp":
        picture.save(out, "WEBP", quality=quality, method=0)
    else:
        picture.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()
