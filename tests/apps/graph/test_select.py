"""The analysis rule's language: what it accepts, how it evaluates, and that nothing else
(calls, attributes, names outside the fields) gets past its parser."""

from __future__ import annotations

import pytest

from sleuth.apps.graph.networks import parse_seed
from sleuth.apps.graph.select import SelectError, parse
from sleuth.sources.social import SourceError

ACCOUNT = {"lang": "it", "statuses_count": 150, "followers_count": None, "network": "x"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("lang == 'it' and statuses_count > 100", True),
        ("lang == 'it' and statuses_count > 200", False),
        ("lang in ['it', 'es'] or followers_count > 5", True),
        ("lang not in ('it',)", False),
        ("not (statuses_count <= 100)", True),
        ("100 < statuses_count <= 150", True),
        ("followers_count > 10", False),  # unknown counts select nothing...
        ("followers_count < 10", False),  # ...either way
        ("followers_count == None", True),
        ("statuses_count > -1 and network != 'mastodon'", True),
        ("lang > 5", False),  # a string and a number do not order
    ],
)
def test_rules_evaluate(rule: str, expected: bool) -> None:
    assert parse(rule).matches(ACCOUNT) is expected


def test_fields_read() -> None:
    assert parse("lang == 'it' and statuses_count > 1").fields == {"lang", "statuses_count"}


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("__import__('os').system('true')", "Call"),
        ("lang.upper() == 'IT'", "Call"),
        ("().__class__", "Attribute"),
        ("password == 1", "unknown field"),
        ("lang == 'it' if True else False", "IfExp"),
        ("statuses_count + 1 > 2", "BinOp"),
        ("lang in 'italian'", "`in` takes a list"),
        ("[x for x in ()]", "ListComp"),
        ("lang ==", "not an expression"),
        ("statuses_count is None", "comparisons are"),
        ("lambda: 1", "Lambda"),
        ("b'x' == lang", "constants are"),
    ],
)
def test_anything_else_is_refused(rule: str, says: str) -> None:
    with pytest.raises(SelectError, match=says.replace("(", r"\(")):
        parse(rule)


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        ("artist@mastodon.example", ("mastodon", "artist@mastodon.example")),
        ("@artist@art.example", ("mastodon", "artist@art.example")),
        ("https://art.example/@artist", ("mastodon", "artist@art.example")),
        ("https://bsky.app/profile/a.bsky.social", ("bluesky", "a.bsky.social")),
        ("did:plc:abc123", ("bluesky", "did:plc:abc123")),
        ("a.bsky.social", ("bluesky", "a.bsky.social")),
        ("https://x.com/Someone", ("x", "someone")),
        ("@someone", ("x", "@someone")),
        ("1234567890", ("x", "1234567890")),
        ("x:42", ("x", "42")),
        ("mastodon:me@mastodon.example", ("mastodon", "me@mastodon.example")),
    ],
)
def test_seeds_by_handle_url_or_id(seed: str, expected: tuple[str, str]) -> None:
    assert parse_seed(seed) == expected


def test_a_seed_of_no_network_is_bad_input() -> None:
    with pytest.raises(SourceError) as info:
        parse_seed("what is this?")
    assert info.value.reason == "bad_input"
