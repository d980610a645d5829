"""The OpenAPI document is exact: schemathesis fuzzes every operation of `/openapi.json`
against the real app (SQLite, stored images with their gray blobs, the offline image host
for fetched queries, a crawled and analyzed emulated forum) and no answer contradicts the
document and none is a 5xx.

Positive cases (requests the schema allows) must be accepted and answered as documented;
negative cases (requests it forbids) must be refused with a 4xx. The run is bounded and
deterministic: a fixed number of examples per operation, derandomized, no example database.

Three things no schema can state are handled here, each narrowly:
- a search's uploaded bytes may not be an image: a 400 is allowed for that reason only;
- a `url` the schema allows is replaced by one on the loopback image host before the request
  is sent, so the fuzzer never makes the server resolve or reach another address;
- in a form body every value is text, so a negative value of another type (null, a number)
  can serialize to text the schema allows; such cases are not sent;
- a negative case made by breaking one branch of an `anyOf` may still match another branch
  (an empty `url` beside an uploaded image); a body the schema accepts is not sent as negative.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sleuth.apps.forum.analytics import analyze
from sleuth.apps.forum.crawl import crawl_discourse
from sleuth.apps.images.api import URL_PATTERN
from sleuth.config import Settings
from sleuth.emulator.forums import Forum, Forums
from sleuth.emulator.imagehost import create_imagehost_app
from sleuth.emulator.server import EmulatorServer
from sleuth.imaging.errors import REASONS
from sleuth.net.fetcher import Fetcher
from sleuth.services import Services
from sleuth.sources.discourse import DiscourseClient, forum_base, profile
from sleuth.web.app import create_app
from tests.web.conftest import Library

EXAMPLES = 40  # per operation and mode
SEARCHES = {"/api/images/search", "/search"}
FORMS = {"multipart/form-data", "application/x-www-form-urlencoded"}
_URL = re.compile(URL_PATTERN)


@dataclasses.dataclass(frozen=True)
class Fuzzed:
    app: Flask
    md5s: tuple[str, ...]
    image_url: str


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    base = Settings(data_dir=tmp_path_factory.mktemp("fuzz") / "data")
    settings = dataclasses.replace(base, net=dataclasses.replace(base.net, allow_private=True))
    services = Services(settings)
    library = Library(services)
    added = [library.add(9 + i, 7, phash=0x0123456789ABCDEF ^ (1 << i)) for i in range(3)]
    library.add(same_as=added[0], url="http://127.0.0.1:9/again.png")
    forums = Forums({"main": Forum(3, 150)}, rate_limits=False)
    with EmulatorServer(create_imagehost_app(seed=0, forums=forums)) as host:
        _crawl_forum(services, f"{host}/discourse/main/latest")
        yield Fuzzed(create_app(services), tuple(a.md5 for a in added), f"{host}/id/1/64/48")
    services.close()


def _crawl_forum(services: Services, url: str) -> None:
    """A crawled, analyzed forum, so that the forum API's answers have rows to fuzz."""

    async def crawl() -> None:
        async with Fetcher(allow_private=True) as fetcher:
            client = DiscourseClient(fetcher, forum_base(url), profile(0))
            await crawl_discourse(services.engine, client)

    asyncio.run(crawl())
    analyze(services.engine)


def _semantic_400(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid search may still upload bytes that are not an image: its 400 must say
    so, and nothing else may be refused."""
    if response.status_code != 400:
        return None
    if case.path == "/api/images/search":
        code = response.json()["error"]["code"]
        assert code in REASONS, f"a schema-valid search was refused: {response.text[:300]}"
    else:
        assert "not a usable image" in response.text, "a schema-valid search page was refused"
    return True


def _string_fields(case: Any) -> set[str]:
    """The form fields whose schema allows text."""
    body = case.operation.definition.raw["requestBody"]["content"][case.media_type]["schema"]
    found = set()
    for name, field in body.get("properties", {}).items():
        options = field.get("anyOf", [field])
        if any(o.get("type") == "string" for o in options):
            found.add(name)
    return found


def _ambiguous_form(case: Any) -> bool:
    """A negative form case that is not one once sent: a wrong-typed value that serializes
    to text the schema allows, or a body the schema accepts after all."""
    if case.media_type not in FORMS or not isinstance(case.body, dict):
        return False
    text_fields = _string_fields(case)
    retyped = any(
        name in text_fields and not isinstance(value, (str, bytes))
        for name, value in case.body.items()
    )
    return retyped or _schema_accepts(case)


def _schema_accepts(case: Any) -> bool:
    """A negative form case whose body the operation's schema accepts after all (files read
    as the strings `format: binary` stands for)."""
    if case.media_type not in FORMS or not isinstance(case.body, dict):
        return False
    body = case.operation.definition.raw["requestBody"]["content"][case.media_type]["schema"]
    as_sent = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in case.body.items()}
    return Draft202012Validator(body).is_valid(as_sent)


def _prepare(case: Any, fuzzed: Fuzzed, md5: str | None) -> None:
    """Point allowed URLs at the loopback image host; use a stored image's MD5 when drawn."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str) and _URL.search(body["url"]):
        body["url"] = fuzzed.image_url
    if md5 is not None and case.path_parameters and "md5" in case.path_parameters:
        case.path_parameters["md5"] = md5


def _run(operation: Any, mode: GenerationMode, fuzzed: Fuzzed) -> None:
    positive = mode is GenerationMode.POSITIVE
    search = operation.path in SEARCHES
    excluded = [positive_data_acceptance] if positive and search else []
    additional = [_semantic_400] if positive and search else []
    known = st.sampled_from(fuzzed.md5s) if positive else st.none()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), md5=st.none() | known)
    def check(case: Any, md5: str | None) -> None:
        if not positive and _ambiguous_form(case):
            return
        _prepare(case, fuzzed, md5)
        case.call_and_validate(excluded_checks=excluded, additional_checks=additional)

    check()


def _has_inputs(operation: Any) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_no_answer_contradicts_the_openapi_document(fuzzed: Fuzzed, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzzed.app)
    failures, ran = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
            continue  # nothing to get wrong
        ran += 1
        try:
            _run(operation, mode, fuzzed)
        except Unsatisfiable as exc:
            failures.append(f"{operation.label}: no {mode} case could be made: {exc}")
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis reports a group
            failures.append(f"{operation.label}: {exc}")
    assert ran >= 10, f"only {ran} operations fuzzed"
    assert not failures, "\n\n".join(failures)
