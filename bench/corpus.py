"""A deterministic image corpus built from pictures bundled in PyPI wheels (no download).

Sources: scikit-image's `skimage/data/` and scikit-learn's `sklearn/datasets/images/` (both dev
dependencies). They are re-encoded the way the web serves photos: JPEG at 1024x768 and a few
2560x1600 or phone-sized upscales (q85-q95, baseline and progressive, 4:2:0 and 4:4:4), PNG, plus
the bundled originals and small thumbnails. The tests (bit-identical pHash, exact grayscale) and
the benchmarks (`bench/phash.py`, `bench/kernel.py`) share it, so their figures describe the
same bytes.

Files are cached under `bench/.cache/corpus-v1-pillow<version>/`; the encoder output depends on the
Pillow version, hence its place in the folder name. `build_corpus()` is idempotent and writes each
file atomically.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import PIL
from PIL import Image

CACHE_ROOT = Path(__file__).resolve().parent / ".cache"
VERSION = "v1"


@dataclass(frozen=True)
class Variant:
    """One corpus image: made from `source` by cover-cropping to `size` and encoding."""

    name: str
    source: str
    size: tuple[int, int] | None  # None: keep the source's size
    fmt: str  # "JPEG", "PNG" or "ORIGINAL" (the bundled file's bytes, untouched)
    quality: int = 90
    subsampling: int = 2  # JPEG: 0 = 4:4:4, 2 = 4:2:0
    progressive: bool = False


def _source_path(name: str) -> Path:
    """Locate a bundled picture (`skimage:coffee.png`, `sklearn:china.jpg`)."""
    package, _, filename = name.partition(":")
    if package == "skimage":
        import skimage.data

        folder = Path(skimage.data.__file__).parent
    elif package == "sklearn":
        import sklearn.datasets

        folder = Path(sklearn.datasets.__file__).parent / "images"
    else:
        raise ValueError(f"unknown corpus source package in {name!r}")
    path = folder / filename
    if not path.is_file():
        raise FileNotFoundError(f"corpus source {name!r} not found at {path}")
    return path


PHOTOS = [
    "skimage:astronaut.png",
    "skimage:coffee.png",
    "skimage:chelsea.png",
    "skimage:motorcycle_left.png",
    "skimage:motorcycle_right.png",
    "skimage:ihc.png",
    "skimage:hubble_deep_field.jpg",
    "skimage:retina.jpg",
    "skimage:rocket.jpg",
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
    "skimage:camera.png",
    "skimage:brick.png",
    "skimage:grass.png",
    "skimage:gravel.png",
    "skimage:moon.png",
    "skimage:coins.png",
    "skimage:cell.png",
    "skimage:text.png",
    "skimage:page.png",
    "skimage:color.png",
    "skimage:logo.png",
]


def variants() -> list[Variant]:
    """The corpus recipe; order and content are fixed so every run sees the same images."""
    out: list[Variant] = []
    qualities = (85, 90, 95)
    for i, src in enumerate(PHOTOS):
        stem = src.split(":")[1].rsplit(".", 1)[0]
        out.append(
            Variant(
                f"{stem}-1024x768-q{qualities[i % 3]}.jpg",
                src,
                (1024, 768),
                "JPEG",
                quality=qualities[i % 3],
                subsampling=0 if i % 4 == 3 else 2,
                progressive=i % 5 == 4,
            )
        )
    for src, q in (
        ("skimage:astronaut.png", 90),
        ("skimage:coffee.png", 85),
        ("skimage:retina.jpg", 92),
        ("skimage:motorcycle_left.png", 95),
    ):
        stem = src.split(":")[1].rsplit(".", 1)[0]
        out.append(Variant(f"{stem}-2560x1600-q{q}.jpg", src, (2560, 1600), "JPEG", quality=q))
    out.append(
        Variant("chelsea-4000x3000-q88.jpg", "skimage:chelsea.png", (4000, 3000), "JPEG", 88)
    )
    for src in ("skimage:coffee.png", "skimage:astronaut.png", "skimage:camera.png"):
        stem = src.split(":")[1].rsplit(".", 1)[0]
        out.append(Variant(f"{stem}-1024x768.png", src, (1024, 768), "PNG"))
    for src in (
        "sklearn:china.jpg",
        "sklearn:flower.jpg",
        "skimage:rocket.jpg",
        "skimage:retina.jpg",
        "skimage:hubble_deep_field.jpg",
        "skimage:astronaut.png",
        "skimage:coffee.png",
        "skimage:horse.png",
        "skimage:camera.png",
    ):
        out.append(Variant(f"orig-{src.split(':')[1]}", src, None, "ORIGINAL"))
    for src, size in (
        ("skimage:coffee.png", (320, 240)),
        ("sklearn:china.jpg", (150, 100)),
        ("skimage:astronaut.png", (256, 256)),
        ("skimage:motorcycle_left.png", (500, 300)),
    ):
        stem = src.split(":")[1].rsplit(".", 1)[0]
        out.append(Variant(f"{stem}-{size[0]}x{size[1]}-q85.jpg", src, size, "JPEG", 85))
    return out


def cover(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale (LANCZOS) so the picture covers `size`, then centre-crop: how sites make banners."""
    w, h = img.size
    tw, th = size
    scale = max(tw / w, th / h)
    sw, sh = max(tw, round(w * scale)), max(th, round(h * scale))
    img = img.resize((sw, sh), Image.Resampling.LANCZOS)
    left, top = (sw - tw) // 2, (sh - th) // 2
    return img.crop((left, top, left + tw, top + th))


def render(v: Variant) -> bytes:
    """The encoded bytes of one variant."""
    path = _source_path(v.source)
    if v.fmt == "ORIGINAL":
        return path.read_bytes()
    with Image.open(path) as src:
        img = src.convert("L" if src.mode == "L" else "RGB")
    if v.size is not None:
        img = cover(img, v.size)
    buf = io.BytesIO()
    if v.fmt == "JPEG":
        img.save(
            buf,
            "JPEG",
            quality=v.quality,
            subsampling=v.subsampling,
            progressive=v.progressive,
            optimize=False,
        )
    elif v.fmt == "PNG":
        img.save(buf, "PNG", compress_level=6)
    else:
        raise ValueError(f"unknown corpus format {v.fmt!r}")
    return buf.getvalue()


def cache_dir() -> Path:
    return CACHE_ROOT / f"corpus-{VERSION}-pillow{PIL.__version__}"


def build_corpus(folder: Path | None = None) -> list[Path]:
    """Make (once) and return the corpus files, in recipe order."""
    folder = folder or cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for v in variants():
        path = folder / v.name
        if not path.exists():
            tmp = path.with_name(f".{v.name}.{os.getpid()}.tmp")
            tmp.write_bytes(render(v))
            tmp.replace(path)
        paths.append(path)
    return paths


def load_corpus(folder: Path | None = None) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every corpus image."""
    return [(p.name, p.read_bytes()) for p in build_corpus(folder)]


if __name__ == "__main__":
    for p in build_corpus():
        print(p, p.stat().st_size)
