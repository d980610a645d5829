"""Open untrusted image bytes with Pillow, safely, and define how every pixel mode becomes RGB.

Safety:
- Only raster formats of the web are tried (`ALLOWED_FORMATS`); Pillow's other plugins (EPS runs
  Ghostscript, PSD, ...) are never invoked.
- The declared width x height is checked against `max_pixels` right after the header is read and
  BEFORE any pixel is decoded, so a tiny file that declares a huge canvas costs nothing. Pillow's
  own DecompressionBombWarning/Error (its global `Image.MAX_IMAGE_PIXELS`, left untouched) is
  turned into the same error; a `max_pixels` above twice that global is therefore capped by it.
- A truncated file is an error: `ImageFile.LOAD_TRUNCATED_IMAGES` is never set here (a process
  that sets it to True globally makes truncation undetectable for Pillow, hence for us).
- Warnings are captured per call with `warnings.catch_warnings`, which is process-global: call
  these functions from one thread per process (the pipeline runs them in a process pool).

Pixels are kept as encoded: EXIF orientation is NOT applied, so width, height, the gray copy and
the pHash all describe the stored pixel grid (as imagehash and the seed did). An animated image
(GIF, APNG, WebP, multi-page TIFF) is represented by its first frame; `frames` says how many.

RGB rules (`to_rgb`), chosen so that the spec's (R+G+B)/3 applies to "the pixel's colour":
- RGB: as decoded. RGBX: padding dropped.
- RGBA, LA, PA: alpha is IGNORED: the colour channels as stored, not composited on any
  background (a fully transparent pixel keeps its stored colour).
- RGBa, La (premultiplied alpha, e.g. TIFF "associated alpha"): un-premultiplied by Pillow to
  RGBA/LA, then alpha ignored as above.
- P: the palette colour of each index (Pillow); palette transparency is ignored like alpha.
- L: R = G = B = L. 1 (bilevel): 0 -> 0, 1 -> 255, R = G = B.
- I;16, I;16L, I;16B, I;16N (16-bit samples): 8-bit value = v >> 8 (the high byte, i.e.
  floor(v / 256); what Pillow itself does for 16-bit RGB PNGs), R = G = B.
- I (32-bit integers; how Pillow presents some 16-bit sources): clipped to 0..65535, then >> 8.
- F (32-bit float, on Pillow's 0..255 scale): NaN -> 0, clipped to 0..255, truncated (floor).
- CMYK: Pillow's conversion. Adobe JPEGs store CMYK inverted; Pillow's JPEG reader already
  undoes that (raw mode "CMYK;I"), so they are not inverted twice. No ICC profile is applied.
- YCbCr, HSV: Pillow's conversion. LAB: littleCMS (ImageCms) LAB -> sRGB.
- Any other mode: `ImageError("unsupported")`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from sleuth.imaging.errors import ImageError
from sleuth.imaging.sniff import decodable_types, sniff_image_type

# Pillow format names tried by `open_image`: the raster formats with a magic number that Pillow
# decodes itself, those this build registers (AVIF is optional). Phone JPEGs with a
# multi-picture index (MPO) come through the JPEG opener; "PPM" opens PBM, PGM and PPM.
_WANTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "QOI", "PPM", "AVIF")
Image.init()
ALLOWED_FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)

# Modes whose gray value is a single channel (see `single_channel`).
SINGLE_CHANNEL_MODES = frozenset(
    {"L", "LA", "La", "1", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
)
_PILLOW_RGB_MODES = frozenset({"RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "HSV"})


@dataclass(frozen=True)
class DecodedImage:
    """A fully decoded first frame, in its original mode, with what the header said."""

    image: Image.Image
    format: str
    mode: str
    width: int
    height: int
    frames: int


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageError("corrupt", f"image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}",
        )


def _webp_truncated(data: bytes) -> bool:
    """WebP errors do not say 'truncated': compare the RIFF size with the bytes we have."""
    if len(data) < 12 or data[:4] != b"RIFF":
        return False
    return int.from_bytes(data[4:8], "little") + 8 > len(data)


def _classify(exc: BaseException, data: bytes, what: str) -> ImageError:
    """Map a Pillow failure to one stable reason."""
    if isinstance(exc, ImageError):
        return exc
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return ImageError("too_many_pixels", str(exc))
    text = str(exc)
    lowered = text.lower()
    if "truncated" in lowered or isinstance(exc, EOFError) or _webp_truncated(data):
        return ImageError("truncated", f"{what}: {text or type(exc).__name__}")
    if "not available" in lowered or "not supported" in lowered or "unsupported" in lowered:
        return ImageError("unsupported", f"{what}: {text}")
    return ImageError("corrupt", f"{what}: {type(exc).__name__}: {text}")


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Read the header only (no pixel decoded yet) and refuse what must not be decoded.

    The caller must `load()` the result under the same warning rules; `decode_image` does."""
    if max_pixels <= 0:
        raise ValueError("max_pixels must be positive")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            kind = sniff_image_type(data)
            if kind is not None:
                decodable = kind in decodable_types()
                raise ImageError(
                    "unsupported" if not decodable else "corrupt",
                    f"{kind} data that Pillow cannot open"
                    + ("" if decodable else " (no decoder for this type)"),
                ) from None
            raise ImageError("not_image", "bytes are not a known image format") from None
        except Exception as exc:
            raise _classify(exc, data, "cannot read the image header") from exc
    _check_pixels(img.width, img.height, max_pixels)
    return img


def decode_image(data: bytes, max_pixels: int) -> DecodedImage:
    """Decode the first frame of `data` at full resolution, in its original mode."""
    img = open_image(data, max_pixels)
    fmt = img.format or "unknown"
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)  # e.g. ICO "not the expected size"
        try:
            frames = int(getattr(img, "n_frames", 1))
            if frames > 1:
                img.seek(0)
            img.load()
        except Exception as exc:
            raise _classify(exc, data, f"cannot decode the {fmt} data") from exc
    _check_pixels(img.width, img.height, max_pixels)
    return DecodedImage(img, fmt, img.mode, img.width, img.height, max(frames, 1))


def single_channel(img: Image.Image) -> Image.Image | None:
    """For modes with R = G = B, the 8-bit channel (mode L) per the rules above; else None."""
    mode = img.mode
    if mode == "L":
        return img
    if mode in ("LA", "1"):
        return img.convert("L")
    if mode == "La":
        return img.convert("LA").convert("L")
    if mode.startswith("I;16"):
        values = np.asarray(img).astype(np.uint16, copy=False)
        return Image.fromarray((values >> 8).astype(np.uint8), "L")
    if mode == "I":
        values = np.clip(np.asarray(img), 0, 65535)
        return Image.fromarray((values >> 8).astype(np.uint8), "L")
    if mode == "F":
        values = np.nan_to_num(np.asarray(img), nan=0.0, posinf=255.0, neginf=0.0)
        return Image.fromarray(np.clip(values, 0.0, 255.0).astype(np.uint8), "L")
    return None


def to_rgb(img: Image.Image) -> Image.Image:
    """The RGB image of any supported mode, following the rules in the module docstring."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in _PILLOW_RGB_MODES:
        return img.convert("RGB")
    if mode == "RGBa":
        return img.convert("RGBA").convert("RGB")
    if mode == "LAB":
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        out = ImageCms.applyTransform(img, transform)
        if out is None:  # only when applying in place, which we do not ask for
            raise ImageError("unsupported", "LAB to RGB conversion failed")
        return out
    gray = single_channel(img)
    if gray is None:
        raise ImageError("unsupported", f"pixel mode {mode!r} has no RGB rule")
    return gray.convert("RGB")
