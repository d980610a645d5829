"""Match quality of pHash search: recall and precision of "same image" per Hamming distance.

    .venv/bin/python -m bench.search_quality [--synthetic 200] [--write-results]

What is searched, and for what:
- The index holds originals: the real photos of bench/corpus.py (scikit-image and scikit-learn
  pictures, their bundled files), four corner regions of each (60% x 60%: different pictures
  that share content with the photo, the hardest negatives), and photo-like synthetic pictures
  of the offline web (`sleuth.emulator.world.photo`), which only serve as unrelated images.
- The queries are transformed copies of every real photo and region, in the families of
  issue 4: resize 25-200% (three filters), JPEG re-encode q30-95, crop of up to 5% per side,
  small text or a watermark, grayscale, brightness and contrast +-15%, PNG <-> JPEG, and a
  `combined` family of what reposts do together (downscale + crop + JPEG).
- Every hash is `sleuth.imaging.phash.phash_bytes` of the encoded bytes, as the crawler
  computes it from a downloaded file.
A pair (copy, original) is "same image" when the copy was made from that original; every other
pair is a negative, labelled by what the two are: regions of one photo, two shots of one scene
(scikit-image's stereo pair motorcycle_left/right), two different photos, or a synthetic
picture. Per distance threshold t = 0..16 the script reports recall (same-image
pairs within t), precision (among all pairs within t), the false matches per query, and the
false-match rate per indexed image, which is what a query meets in a large index:
rate x N false matches in an index of N unrelated images.
`--write-results` replaces the `## search quality` section of bench/RESULTS.md (appended if
missing).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from bench.corpus import PHOTOS, Variant, render
from bench.index import machine, write_section
from sleuth.emulator.world import photo
from sleuth.imaging.phash import phash_bytes

MAX_PIXELS = 64_000_000  # sleuth's default decode limit; the largest copy here is ~8 Mpx
THRESHOLDS = range(17)
REGION = 0.6  # side of a corner region, as a share of the photo's
SYNTHETIC_SIZES = ((640, 480), (800, 600), (1024, 768), (480, 640), (500, 500))
FILTERS = (Image.Resampling.LANCZOS, Image.Resampling.BICUBIC, Image.Resampling.BILINEAR)
SCENES = {"motorcycle_right.png": "motorcycle_left.png"}  # a stereo pair: one scene, two shots
NEGATIVES = ("regions of one photo", "one scene, other shot", "other photo", "synthetic")
UNRELATED = ("other photo", "synthetic")  # what the false-match rate counts
MEASURABLE = 30  # unrelated matches needed to measure a rate
FAMILIES = (
    "resize",
    "jpeg",
    "crop",
    "text",
    "grayscale",
    "brightness",
    "contrast",
    "format",
    "combined",
)


@dataclass(frozen=True)
class Original:
    """An indexed picture: `base` names the real photo it comes from (None: synthetic)."""

    name: str
    kind: str  # "photo", "region" or "synthetic"
    base: str | None
    image: Image.Image  # decoded, RGB or L
    fmt: str  # "PNG" or "JPEG": the format it is published in
    data: bytes  # its published bytes (what its hash is computed from)


@dataclass(frozen=True)
class Copy:
    family: str
    label: str
    source: int  # index of its original
    data: bytes


def encode(img: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, "JPEG", quality=quality)
    else:
        img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def _plain(img: Image.Image) -> Image.Image:
    """RGB or L pixels (alpha dropped, as pHash's convert('L') ignores it too)."""
    return img if img.mode in ("RGB", "L") else img.convert("RGB")


def originals(synthetic: int) -> list[Original]:
    out: list[Original] = []
    for source in PHOTOS:
        name = source.split(":")[1]
        data = render(Variant(name, source, None, "ORIGINAL"))
        with Image.open(io.BytesIO(data)) as opened:
            img = _plain(opened)
            img.load()
        fmt = "JPEG" if name.endswith(".jpg") else "PNG"
        out.append(Original(name, "photo", name, img, fmt, data))
        w, h = img.size
        rw, rh = round(w * REGION), round(h * REGION)
        for corner, (x, y) in zip(
            ("nw", "ne", "sw", "se"),
            ((0, 0), (w - rw, 0), (0, h - rh), (w - rw, h - rh)),
            strict=True,
        ):
            region = img.crop((x, y, x + rw, y + rh))
            out.append(
                Original(f"{name}#{corner}", "region", name, region, fmt, encode(region, fmt, 92))
            )
    for k in range(synthetic):
        w, h = SYNTHETIC_SIZES[k % len(SYNTHETIC_SIZES)]
        img = photo(4, 1000 + k, w, h)
        out.append(Original(f"synthetic-{k}", "synthetic", None, img, "JPEG", encode(img, "JPEG")))
    return out


def _font(img: Image.Image, share: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, round(img.height * share)))


def _ink(img: Image.Image, level: int) -> int | tuple[int, int, int]:
    return level if img.mode == "L" else (level, level, level)


def caption(img: Image.Image, text: str, corner: str, share: float) -> Image.Image:
    """Opaque text with an outline in a corner, as reposts credit an account."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    font = _font(img, share)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=2)
    margin = round(img.height * 0.02)
    x = margin if corner.endswith("w") else img.width - (right - left) - margin
    y = margin if corner.startswith("n") else img.height - (bottom - top) - margin
    draw.text(
        (x - left, y - top),
        text,
        font=font,
        fill=_ink(img, 255),
        stroke_width=2,
        stroke_fill=_ink(img, 0),
    )
    return out


def watermark(img: Image.Image, text: str, opacity: float) -> Image.Image:
    """Semi-transparent text across the middle, as stock and art sites mark previews."""
    base = img.convert("RGB")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(img, 0.1)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = (base.width - (right - left)) // 2 - left, (base.height - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=(255, 255, 255, round(255 * opacity)))
    out = Image.alpha_composite(base.convert("RGBA"), layer).convert("RGB")
    return out.convert("L") if img.mode == "L" else out


def badge(img: Image.Image, text: str) -> Image.Image:
    """A small opaque label box in the bottom-right corner (a site's logo)."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    font = _font(img, 0.035)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    pad = 4
    x1, y1 = img.width - 2, img.height - 2
    x0, y0 = x1 - (right - left) - 2 * pad, y1 - (bottom - top) - 2 * pad
    draw.rectangle((x0, y0, x1, y1), fill=_ink(img, 30))
    draw.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=_ink(img, 235))
    return out


def resized(img: Image.Image, scale: float, flt: Image.Resampling) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), flt)


def cropped(img: Image.Image, sides: tuple[float, float, float, float]) -> Image.Image:
    w, h = img.size
    left, top, right, bottom = sides
    return img.crop((round(w * left), round(h * top), w - round(w * right), h - round(h * bottom)))


def transforms(orig: Original, rng: np.random.Generator) -> Iterator[tuple[str, str, bytes]]:
    """(family, label, bytes) of every copy of one original."""
    img, fmt = orig.image, orig.fmt
    for i, scale in enumerate((0.25, 0.33, 0.5, 0.75, 1.5, 2.0)):
        flt = FILTERS[i % len(FILTERS)]
        yield "resize", f"{scale:.0%} {flt.name.lower()}", encode(resized(img, scale, flt), "PNG")
    for q in (30, 40, 50, 60, 70, 80, 90, 95):
        yield "jpeg", f"q{q}", encode(img, "JPEG", q)
    for most in (0.01, 0.02, 0.03, 0.05):
        sides = tuple(float(s) for s in rng.uniform(0, most, 4))
        yield "crop", f"<= {most:.0%} per side", encode(cropped(img, sides), "PNG")  # type: ignore[arg-type]
    yield "crop", "5% every side", encode(cropped(img, (0.05,) * 4), "PNG")
    yield "text", "caption bottom-right", encode(caption(img, "@some_artist", "se", 0.04), "PNG")
    yield "text", "caption top-left", encode(caption(img, "reposted by x", "nw", 0.03), "PNG")
    yield "text", "watermark 30%", encode(watermark(img, "(c) studio", 0.3), "PNG")
    yield "text", "logo badge", encode(badge(img, "example.net"), "PNG")
    yield "grayscale", "PNG", encode(img.convert("L"), "PNG")
    yield "grayscale", "JPEG q85", encode(img.convert("L"), "JPEG", 85)
    for factor in (0.85, 0.92, 1.08, 1.15):
        bright = ImageEnhance.Brightness(img).enhance(factor)
        yield "brightness", f"x{factor}", encode(bright, "PNG")
        yield "contrast", f"x{factor}", encode(ImageEnhance.Contrast(img).enhance(factor), "PNG")
    if fmt == "PNG":
        yield "format", "PNG -> JPEG q90", encode(img, "JPEG", 90)
        yield "format", "PNG -> JPEG q75", encode(img, "JPEG", 75)
    else:
        yield "format", "JPEG -> PNG", encode(img, "PNG")
    thumb = resized(img, 0.5, Image.Resampling.LANCZOS)
    yield "combined", "50% + q75", encode(thumb, "JPEG", 75)
    yield "combined", "33% + q60", encode(resized(img, 0.33, FILTERS[2]), "JPEG", 60)
    small = resized(cropped(img, (0.03, 0.02, 0.03, 0.02)), 0.8, FILTERS[1])
    yield "combined", "crop 3% + 80% + q85", encode(small, "JPEG", 85)
    yield "combined", "caption + q80", encode(caption(img, "@some_artist", "se", 0.04), "JPEG", 80)


def phash(data: bytes) -> int:
    return phash_bytes(data, MAX_PIXELS)


def build(synthetic: int, log: Callable[[str], None]) -> tuple[list[Original], list[Copy]]:
    t = time.perf_counter()
    origs = originals(synthetic)
    rng = np.random.default_rng(4)
    copies = [
        Copy(family, label, i, data)
        for i, orig in enumerate(origs)
        if orig.kind != "synthetic"
        for family, label, data in transforms(orig, rng)
    ]
    log(f"# {len(origs)} originals, {len(copies)} copies in {time.perf_counter() - t:.0f} s")
    return origs, copies


# ----------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Pairs:
    """Distances of every (copy, original) pair and what each pair is."""

    dist: np.ndarray  # (copies, originals)
    same: np.ndarray  # bool, the copy was made from that original
    category: np.ndarray  # str: "same", a NEGATIVES entry
    families: np.ndarray  # str (copies,): each copy's family


def pairs(origs: list[Original], copies: list[Copy], copy_hashes: np.ndarray) -> Pairs:
    orig_hashes = np.array([phash(o.data) for o in origs], dtype=np.uint64)
    dist = np.bitwise_count(copy_hashes[:, None] ^ orig_hashes[None, :]).astype(np.int64)
    source = np.array([c.source for c in copies])
    same = source[:, None] == np.arange(len(origs))[None, :]
    base = np.array([o.base or "" for o in origs], dtype=object)
    scene = np.array([SCENES.get(b, b) for b in base], dtype=object)
    kinds = np.array([o.kind for o in origs])
    category = np.full(dist.shape, "other photo", dtype=object)
    category[scene[source][:, None] == scene[None, :]] = "one scene, other shot"
    category[base[source][:, None] == base[None, :]] = "regions of one photo"
    category[:, kinds == "synthetic"] = "synthetic"
    category[same] = "same"
    return Pairs(dist, same, category, np.array([c.family for c in copies]))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}" if x < 0.9995 or x == 1 else f"{100 * x:.2f}"


def random_rate(t: int) -> float:
    """Chance that two independent random 64-bit codes with 32 ones each (what every pHash is:
    32 coefficients lie above the median) are within t: sum over k <= t/2 of C(32,k)^2 / C(64,32).
    Real photos are more alike than that; measured rates divided by it show by how much."""
    return sum(math.comb(32, k) ** 2 for k in range(t // 2 + 1)) / math.comb(64, 32)


def threshold_table(p: Pairs) -> list[str]:
    """Per threshold: recall, precision, false matches per query, false-match rate."""
    positive = p.dist[p.same]
    neg = ~p.same
    unrelated = np.isin(p.category, UNRELATED)
    head = ["t", "recall %", "precision %", "false matches / query", "false-match rate"]
    head += ["random weight-32 rate"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in THRESHOLDS:
        tp = int((positive <= t).sum())
        fp = int((p.dist[neg] <= t).sum())
        rate = float((p.dist[unrelated] <= t).mean())
        cells = [
            str(t),
            _pct(tp / len(positive)),
            _pct(tp / (tp + fp)) if tp + fp else "-",
            f"{fp / len(p.dist):.3f}",
            f"{rate:.1e}" if rate else "0",
            f"{random_rate(t):.1e}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def family_table(p: Pairs) -> list[str]:
    """Per threshold and family: recall % / precision % of that family's copies as queries."""
    lines = ["| t | " + " | ".join(FAMILIES) + " |", "|" + "---|" * (len(FAMILIES) + 1)]
    for t in THRESHOLDS:
        cells = [str(t)]
        for fam in FAMILIES:
            rows = p.families == fam
            within = p.dist[rows] <= t
            tp = int((within & p.same[rows]).sum())
            fp = int((within & ~p.same[rows]).sum())
            recall = tp / int(p.same[rows].sum())
            cells.append(f"{_pct(recall)} / {_pct(tp / (tp + fp)) if tp + fp else '-'}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def choice(p: Pairs) -> list[str]:
    """The default max-distance this corpus supports, by a stated rule, and what it costs."""
    positive = p.dist[p.same]
    unrelated = p.dist[np.isin(p.category, UNRELATED)]
    first = int(unrelated.min())
    chosen = first - 1 - (first - 1) % 2  # the largest even t below the first unrelated match
    # Real photos are alike more often than random codes: scale the model by the measured
    # ratio at the closest threshold with enough matches to measure it.
    steady = next(t for t in range(first, 65) if (unrelated <= t).sum() >= MEASURABLE)
    factor = float((unrelated <= steady).mean()) / random_rate(steady)
    rate = factor * random_rate(chosen)
    recall = {t: float((positive <= t).mean()) for t in (4, 6, chosen)}
    positive_family = p.families[np.nonzero(p.same)[0]]
    per_family = [
        f"{fam} {_pct(float((positive[positive_family == fam] <= chosen).mean()))}%"
        for fam in FAMILIES
    ]
    return [
        f"- Suggested default max-distance: **{chosen}**, the largest even distance below the "
        f"closest pair of unrelated images in this corpus ({first}). Recall there "
        f"{_pct(recall[chosen])}% against {_pct(recall[6])}% at AOTF's 6; per family: "
        f"{', '.join(per_family)}.",
        f"- Unrelated images within {steady}: {factor:.1f} x the random weight-32 rate; at that "
        f"ratio an unrelated image lies within {chosen} with chance {rate:.1e}, i.e. about "
        f"{rate * 1e6:.2g}, {rate * 1e7:.2g} and {rate * 1e8:.2g} false matches per query in "
        f"an index of 1M, 10M and 100M images. Results are sorted by distance and "
        f"{_pct(recall[4])}% of true copies lie within 4, so these mostly rank last.",
    ]


def transform_table(p: Pairs, copies: list[Copy]) -> list[str]:
    """Per transform: how far copies land from their original."""
    rows_of: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(copies):
        rows_of.setdefault((c.family, c.label), []).append(i)
    positive = p.dist[np.arange(len(copies)), [c.source for c in copies]]
    lines = [
        "| family | transform | copies | median | p90 | max | within 6 % | within 10 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (family, label), rows in rows_of.items():
        d = positive[rows]
        lines.append(
            f"| {family} | {label} | {len(d)} | {np.median(d):.0f} | {np.percentile(d, 90):.0f} "
            f"| {d.max()} | {_pct(float((d <= 6).mean()))} | {_pct(float((d <= 10).mean()))} |"
        )
    return lines


def negative_table(p: Pairs) -> list[str]:
    lines = [
        "| negative pairs | pairs | min distance | p0.1 | p1 | median | within 6 | within 10 "
        "| within 12 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cat in NEGATIVES:
        d = p.dist[p.category == cat]
        lines.append(
            f"| {cat} | {len(d)} | {d.min()} | {np.percentile(d, 0.1):.0f} "
            f"| {np.percentile(d, 1):.0f} | {np.median(d):.0f} | {int((d <= 6).sum())} "
            f"| {int((d <= 10).sum())} | {int((d <= 12).sum())} |"
        )
    return lines


def closest_negatives(p: Pairs, origs: list[Original], copies: list[Copy], n: int) -> list[str]:
    """The closest different-image pairs (distinct original pairs), to see what they are."""
    seen: set[tuple[int, int]] = set()
    out = []
    rows, cols = np.nonzero(~p.same)
    order = np.argsort(p.dist[rows, cols], kind="stable")
    for k in order.tolist():
        c, o = copies[rows[k]], int(cols[k])
        key = (min(c.source, o), max(c.source, o))
        if key in seen:
            continue
        seen.add(key)
        out.append(
            f"- {p.dist[rows[k], o]}: {c.family} {c.label} of `{origs[c.source].name}` "
            f"vs `{origs[o].name}` ({p.category[rows[k], o]})"
        )
        if len(out) == n:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--synthetic", type=int, default=200, help="unrelated synthetic photos")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    origs, copies = build(args.synthetic, log)
    t = time.perf_counter()
    copy_hashes = np.array([phash(c.data) for c in copies], dtype=np.uint64)
    log(f"# hashed {len(copies)} copies in {time.perf_counter() - t:.0f} s")
    p = pairs(origs, copies, copy_hashes)
    kinds = [o.kind for o in origs]
    weights = np.bitwise_count(copy_hashes)
    body = [
        "## search quality",
        "",
        f"Machine: {machine(('numpy', 'pillow', 'scipy'))}. Run {started}.",
        "",
        f"Command: `{' '.join(['.venv/bin/python -m bench.search_quality', *sys.argv[1:]])}`",
        "",
        f"Index: {len(origs)} originals ({kinds.count('photo')} real photos, "
        f"{kinds.count('region')} corner regions of them, {kinds.count('synthetic')} synthetic); "
        f"queries: {len(copies)} transformed copies of the photos and regions; "
        f"{int(p.same.sum())} same-image pairs, {int((~p.same).sum())} negative pairs. "
        "Precision counts every negative pair; the false-match rate leaves out regions of the "
        "same photo (it is the chance that one unrelated indexed image matches a query).",
        f"{int((weights == 32).sum())} of the {len(copy_hashes)} copies' hashes have exactly 32 "
        "ones (so distances are even: t and t + 1 give the same answers for even t).",
        "",
        *threshold_table(p),
        "",
        *choice(p),
        "",
        "Per family (that family's copies as queries): recall % / precision %",
        "",
        *family_table(p),
        "",
        "Distance from copy to original, per transform:",
        "",
        *transform_table(p, copies),
        "",
        "Distances of negative pairs:",
        "",
        *negative_table(p),
        "",
        "Closest negative pairs:",
        "",
        *closest_negatives(p, origs, copies, 8),
    ]
    text = "\n".join(body)
    print(text)
    if args.write_results:
        write_section(Path(__file__).resolve().parent / "RESULTS.md", "search-quality", text)


if __name__ == "__main__":
    main()
