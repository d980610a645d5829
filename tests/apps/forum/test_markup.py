"""What a post's text says: golden cases for bB's BBCode (potstats2's cases among them) and for
the cooked HTML Discourse renders."""

from __future__ import annotations

import pytest

from sleuth.apps.forum.markup import (
    IMAGE,
    LINK,
    VIDEO,
    LinkRef,
    QuoteRef,
    normalize_url,
    read_bbcode,
    read_cooked,
    read_post,
)

BB = "http://forum.mods.de/bb/xml/"
DISCOURSE = "https://meta.example.org/"


def _links(text: str) -> list[tuple[str, str, str, int]]:
    found = read_bbcode(text, BB).links
    return sorted((k.url, k.domain, k.kind, n) for k, n in found.items())


@pytest.mark.parametrize(
    ("written", "url"),
    [
        ("http://example.com/a", "http://example.com/a"),
        ('"http://example.com/a"', "http://example.com/a"),
        ("'http://example.com/a'", "http://example.com/a"),
        ("example.com/a", "http://example.com/a"),
        ("www.example.com", "http://www.example.com"),
        ("/bb/thread.php?TID=5", "http://forum.mods.de/bb/thread.php?TID=5"),
        ("./thread.php?TID=5", "http://forum.mods.de/bb/thread.php?TID=5"),
        ("https://Example.COM/x", "https://Example.COM/x"),
        ("//cdn.example.com/x.png", "http://cdn.example.com/x.png"),
    ],
)
def test_urls_are_normalized_as_potstats2_did(written: str, url: str) -> None:
    link = normalize_url(written, BB)
    assert link is not None and link.url == url
    assert link.domain == url.split("://")[1].split("/")[0].lower()


@pytest.mark.parametrize("written", ["data:image/png;base64,iVBOR", "", "  ", "javascript:x()"])
def test_what_is_no_link_is_ignored(written: str) -> None:
    assert normalize_url(written, BB) is None
    assert _links(f"[url]{written}[/url] [img]{written}[/img]") == []


def test_each_bbcode_link_form() -> None:
    text = (
        "[url=http://a.example/1]eins[/url] [url]http://b.example/2[/url] "
        '[url="c.example/3"]drei[/url] [img]http://i.example/x.jpg[/img] '
        "[video]http://v.example/1[/video] [video play]http://v.example/2[/video] "
        "[video autoplay]http://v.example/3[/video] [URL=http://a.example/1]again[/URL]"
    )
    assert _links(text) == [
        ("http://a.example/1", "a.example", LINK, 2),
        ("http://b.example/2", "b.example", LINK, 1),
        ("http://c.example/3", "c.example", LINK, 1),
        ("http://i.example/x.jpg", "i.example", IMAGE, 1),
        ("http://v.example/1", "v.example", VIDEO, 1),
        ("http://v.example/2", "v.example", VIDEO, 1),
        ("http://v.example/3", "v.example", VIDEO, 1),
    ]


def test_a_quote_counts_once_and_what_it_holds_not_at_all() -> None:
    text = (
        '[quote=123,456,"Ada"]she said [url]http://inside.example[/url]'
        '[quote=1,2,"Bob"]nested[/quote][/quote] mine: [url]http://outside.example[/url]'
    )
    markup = read_bbcode(text, BB)
    assert markup.quotes == (QuoteRef(123, 456, None, "Ada"),)
    assert _links(text) == [("http://outside.example", "outside.example", LINK, 1)]


def test_quoted_ids_past_64_bits_are_ignored() -> None:
    assert read_bbcode('[quote=1,99999999999999999999,"x"]y[/quote]', BB).quotes == ()
    assert read_bbcode('[quote=0,5,"x"]y[/quote]', BB).quotes == ()


def test_a_quote_without_ids_is_no_quote_but_still_hides_its_links() -> None:
    markup = read_bbcode("[quote]x [url]http://in.example[/url][/quote]", BB)
    assert markup.quotes == () and not markup.links


def test_unclosed_and_stray_tags_lose_nothing_else() -> None:
    text = "[url]http://never.example [/img] [b]x[/b] [url=http://kept.example]k[/url]"
    assert _links(text) == [("http://kept.example", "kept.example", LINK, 1)]


COOKED = """
<aside class="quote no-group" data-username="ada" data-post="3" data-topic="77">
<div class="title"><img alt="" class="avatar" src="/user_avatar/a.png"> ada:</div>
<blockquote><p>quoted <a href="https://inside.example/">in</a></p>
<aside class="quote" data-username="bob" data-post="1" data-topic="77"><blockquote>deeper
</blockquote></aside></blockquote></aside>
<p>Hi <a class="mention" href="/u/bob">@bob</a>, see <a href="https://docs.example/x">docs</a>
and <a href="/t/some-topic/12">this topic</a> <img src="https://emoji.example/smile.png"
class="emoji" alt=":smile:"> <a class="hashtag-cooked" href="/c/dev">#dev</a></p>
<div class="lightbox-wrapper"><a class="lightbox" href="https://up.example/full.jpg">
<img src="https://up.example/optimized.jpg" alt="pic"></a></div>
<p><a href="https://www.youtube.com/watch?v=abc" class="onebox" target="_blank">x</a></p>
<div class="youtube-onebox lazy-video-container" data-video-id="zzz" data-provider-name="youtube">
<a href="https://www.youtube.com/watch?v=zzz"><img class="youtube-thumbnail" src="/t.jpg"></a>
</div>
<aside class="onebox allowlistedgeneric" data-onebox-src="https://news.example/story">
<header><a href="https://news.example/story">news</a></header>
<article><img src="https://news.example/thumb.png"><a href="https://news.example/story">r</a>
</article></aside>
<video controls><source src="https://up.example/clip.mp4"></video>
"""


def test_discourse_cooked_html() -> None:
    markup = read_cooked(COOKED, DISCOURSE)
    assert markup.quotes == (QuoteRef(77, None, 3, "ada"),)
    assert dict(markup.links) == {
        LinkRef("https://docs.example/x", "docs.example", LINK): 1,
        LinkRef("https://meta.example.org/t/some-topic/12", "meta.example.org", LINK): 1,
        LinkRef("https://up.example/optimized.jpg", "up.example", IMAGE): 1,
        LinkRef("https://www.youtube.com/watch?v=abc", "www.youtube.com", VIDEO): 1,
        LinkRef("https://www.youtube.com/watch?v=zzz", "www.youtube.com", VIDEO): 1,
        LinkRef("https://news.example/story", "news.example", LINK): 1,
        LinkRef("https://up.example/clip.mp4", "up.example", VIDEO): 1,
    }


def test_a_post_is_read_in_its_forums_dialect() -> None:
    bb = read_post("bbxml", "[img]http://i.example/a.png[/img]", None, BB)
    assert [k.kind for k in bb.links] == [IMAGE]
    discourse = read_post("discourse", "[img]ignored[/img]", '<img src="/a.png">', DISCOURSE)
    assert [k.url for k in discourse.links] == ["https://meta.example.org/a.png"]
    assert not read_post("discourse", "raw", None, DISCOURSE).links
