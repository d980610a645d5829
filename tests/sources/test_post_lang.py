"""A post's language as each network states it (Mastodon `language`, Bluesky the record's
`langs`, X `lang`), as its primary subtag: the graph's analysis reads accounts' from them."""

from __future__ import annotations

from sleuth.sources import bluesky, mastodon, x


def test_each_network_s_language_field() -> None:
    status = {"id": "1", "account": {"id": "2"}, "language": "pt-BR"}
    assert mastodon.parse_status(status).lang == "pt"
    assert mastodon.parse_status({**status, "language": None}).lang is None
    view = {
        "uri": "at://did:plc:a/app.bsky.feed.post/3k",
        "author": {"did": "did:plc:a", "handle": "a.bsky.social"},
        "record": {"text": "ciao", "langs": ["it", "en"]},
    }
    assert bluesky.parse_post(view).lang == "it"
    assert bluesky.parse_post({**view, "record": {"text": "?"}}).lang is None
    body = {"data": [{"id": "9", "text": "hola", "lang": "es"}, {"id": "8", "text": "?"}]}
    assert [p.lang for p in x.parse_tweets(body, "someone")] == ["es", None]
