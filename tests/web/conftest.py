"""A web app on real embedded services, and a way to put real images into it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from sleuth.apps.images.models import ImageContent
from sleuth.apps.images.pipeline import GRAY_EXT
from sleuth.apps.images.records import Item, store_image
from sleuth.crawl.models import QUEUED, crawl_run_items
from sleuth.crawl.runs import open_run
from sleuth.imaging.encode import pack_gray
from sleuth.services import Services
from sleuth.web.app import create_app

CRAWL = "web-tests"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass
class Added:
    md5: str
    pixels: np.ndarray
    url: str
    outcome: str


@dataclass
class Library:
    """Stores images the way the pipeline does: gray blob first, then `store_image` for a
    crawl line (so counters and sources are real too)."""

    services: Services
    lines: int = 0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))

    def __post_init__(self) -> None:
        open_run(self.services.engine, CRAWL, "images", "tests")

    def item(self, url: str) -> Item:
        self.lines += 1
        with self.services.engine.begin() as conn:
            conn.execute(
                sa.insert(crawl_run_items).values(
                    run_id=CRAWL, item_key=str(self.lines), target=url, state=QUEUED
                )
            )
        return Item(crawl=CRAWL, line=self.lines, url=url)

    def add(
        self,
        width: int = 7,
        height: int = 5,
        *,
        url: str | None = None,
        phash: int = 0x0123456789ABCDEF,
        same_as: Added | None = None,
    ) -> Added:
        if same_as is not None:
            pixels, md5 = same_as.pixels, same_as.md5
        else:
            pixels = self.rng.integers(0, 256, size=(height, width), dtype=np.uint8)
            md5 = hashlib.md5(pixels.tobytes() + str(self.lines).encode()).hexdigest()
        packed = pack_gray(pixels.shape[1], pixels.shape[0], pixels)
        gray_key = hashlib.sha256(packed).hexdigest()
        self.services.blobs.put(gray_key, GRAY_EXT, packed)
        url = url or f"http://127.0.0.1:9/img/{self.lines + 1}.png"
        image = ImageContent(
            md5=md5,
            bytes=1000 + self.lines,
            width=pixels.shape[1],
            height=pixels.shape[0],
            phash=phash,
            gray_key=gray_key,
            format="PNG",
            mode="RGB",
        )
        outcome = store_image(self.services.engine, self.item(url), image)
        return Added(md5=md5, pixels=pixels, url=url, outcome=outcome)


@pytest.fixture
def app(services: Services) -> Flask:
    return create_app(services)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def library(services: Services) -> Library:
    return Library(services)
