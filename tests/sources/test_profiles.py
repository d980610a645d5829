"""Profile URLs and handles → account refs: AOTF's validator examples and every spelling."""

from __future__ import annotations

import pytest

from sleuth.sources.profiles import AccountRef, links_in_text, parse_profile_url, unique

JACK = AccountRef("x", "x.com", "jack")


@pytest.mark.parametrize(
    "url",
    [
        "twitter.com/@jack",
        "https://twitter.com/#!/jack",
        "https://twitter.com/jack",
        "https://mobile.twitter.com/jack/status/20",
        "http://www.twitter.com/Jack",
        "https://x.com/JACK/media",
        "https://mobile.x.com/@jack?lang=en",
    ],
)
def test_x_spellings_name_one_account(url: str) -> None:
    assert parse_profile_url(url) == JACK


@pytest.mark.parametrize(
    "url",
    [
        "twitter.com",
        "https://twitter.com/",
        "https://x.com",
        "https://twitter.com/intent/tweet?text=hi",
        "https://twitter.com/intent/user?screen_name=jack",
        "https://twitter.com/share",
        "https://twitter.com/home",
        "https://x.com/i/flow/login",
        "https://x.com/search?q=art",
        "https://twitter.com/a_name_much_too_long_for_x",
        "https://twitter.com/bad-name",
        "ftp://twitter.com/jack",
        "https://bsky.app/",
        "https://bsky.app/search?q=x",
        "https://www.youtube.com/@jack",
        "https://www.patreon.com/jack",
        "https://example.com/jack",
        "not a url at all",
    ],
)
def test_pages_that_are_no_account(url: str) -> None:
    assert parse_profile_url(url) is None


def test_mastodon_spellings() -> None:
    home = AccountRef("mastodon", "art.example", "jill")
    assert parse_profile_url("https://art.example/@jill") == home
    assert parse_profile_url("https://art.example/@Jill/1234567") == home
    assert parse_profile_url("https://art.example/users/jill") == home
    assert parse_profile_url("@jill@art.example") == home
    # The other server's page of a remote account names the account at its home.
    assert parse_profile_url("https://mastodon.example/@jill@art.example") == home


def test_bluesky_handles_and_dids() -> None:
    assert parse_profile_url("https://bsky.app/profile/Jill.bsky.social") == AccountRef(
        "bluesky", "bsky.social", "jill.bsky.social"
    )
    assert parse_profile_url("https://bsky.app/profile/jill.bsky.social/post/3k2a") == AccountRef(
        "bluesky", "bsky.social", "jill.bsky.social"
    )
    did = "did:plc:abcdefghijklmnopqrstuvwx"
    assert parse_profile_url(f"https://bsky.app/profile/{did}") == AccountRef(
        "bluesky", "bsky.social", did
    )
    assert parse_profile_url("https://bsky.app/profile/not_a_handle") is None


def test_links_and_handles_in_free_text() -> None:
    text = "Commissions open!\nMastodon: @jill@art.example, X: https://x.com/jill."
    assert links_in_text(text) == ["https://x.com/jill", "@jill@art.example"]
    # A handle inside a URL is the URL's, not a second handle.
    assert links_in_text("see https://mastodon.example/@jill@art.example") == [
        "https://mastodon.example/@jill@art.example"
    ]


def test_refs_are_deduplicated_in_order() -> None:
    found = [parse_profile_url(u) for u in ("x.com/B", "twitter.com/b", "x.com/a", "x.com/@b")]
    assert unique(r for r in found if r) == [
        AccountRef("x", "x.com", "b"),
        AccountRef("x", "x.com", "a"),
    ]
