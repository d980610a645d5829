"""Each network's rate-limit headers reach the fetcher's budgets: once the emulator says a
budget is spent, the next call is refused here as `rate_limited`, without a request sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from flask import Flask, request

from sleuth.config import SourcesSettings
from sleuth.emulator import EmulatorServer
from sleuth.emulator.artworld import ArtWorld
from sleuth.emulator.bluesky import BlueskyEmulator, bluesky_blueprints
from sleuth.emulator.mastodon import MastodonEmulator, mastodon_blueprint
from sleuth.emulator.ratelimits import Limit
from sleuth.emulator.x_api import EMULATOR_TOKEN, LIMITS, XEmulator, x_blueprint
from sleuth.net.fetcher import Fetcher
from sleuth.sources import bluesky, mastodon, x
from sleuth.sources.social import SourceError
from tests.sources.conftest import LONG

pytestmark = pytest.mark.anyio

ONE = Limit(1, LONG)
Call = Callable[[Fetcher, SourcesSettings], Awaitable[object]]


def counted(app: Flask) -> list[str]:
    """Every request path the app answers, in order."""
    seen: list[str] = []

    @app.before_request
    def _count() -> None:
        seen.append(request.path)

    return seen


def mastodon_app(world: ArtWorld) -> tuple[Flask, Call]:
    app = Flask(__name__)
    app.register_blueprint(mastodon_blueprint(MastodonEmulator(world, limits=(ONE, ONE))))
    return app, lambda f, s: mastodon.lookup(f, s, "artist000@mastodon.example")


def bluesky_app(world: ArtWorld) -> tuple[Flask, Call]:
    app = Flask(__name__)
    for blueprint in bluesky_blueprints(BlueskyEmulator(world, limit=ONE)):
        app.register_blueprint(blueprint)
    handle = next(a for a in world.accounts if a.network == "bluesky").username
    return app, lambda f, s: bluesky.get_profile(f, s, handle)


def x_app(world: ArtWorld) -> tuple[Flask, Call]:
    app = Flask(__name__)
    limits = dict(LIMITS, **{"users/by/username": ONE})
    app.register_blueprint(x_blueprint(XEmulator(world, limits=limits)))
    return app, lambda f, s: x.user(f, s, "artist000")


@pytest.mark.parametrize("make", [mastodon_app, bluesky_app, x_app])
async def test_a_spent_budget_stops_the_next_call_here(
    make: Callable[[ArtWorld], tuple[Flask, Call]], fetcher: Fetcher, world: ArtWorld
) -> None:
    app, call = make(world)
    seen = counted(app)
    with EmulatorServer(app) as url:
        settings = SourcesSettings(
            x_api_url=url + "/x",
            x_bearer_token=EMULATOR_TOKEN,
            mastodon_url=url + "/mastodon/{server}",
            bluesky_appview_url=url + "/bsky",
        )
        try:
            await call(fetcher, settings)
        except SourceError as exc:
            assert exc.reason == "not_found"  # an answer all the same, with its headers
        assert len(seen) == 1
        with pytest.raises(SourceError) as info:
            await call(fetcher, settings)
    assert info.value.reason == "rate_limited" and info.value.retry_after
    assert len(seen) == 1  # refused by the budget, never sent
