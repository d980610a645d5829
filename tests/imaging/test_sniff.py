"""Magic-byte sniffing on real encoder output, and refusal of look-alikes."""

from __future__ import annotations

import pytest
from PIL import features

from sleuth.imaging.sniff import SNIFF_BYTES, decodable_types, sniff_image_type
from tests.imaging import samples

PHOTO = samples.photo((40, 30))


@pytest.mark.parametrize(
    "kind,fmt,options",
    [
        ("jpeg", "JPEG", {}),
        ("png", "PNG", {}),
        ("gif", "GIF", {}),
        ("webp", "WEBP", {}),
        ("webp", "WEBP", {"lossless": True}),
        ("bmp", "BMP", {}),
        ("tiff", "TIFF", {}),
        ("ico", "ICO", {}),
    ],
)
def test_encoder_output(kind: str, fmt: str, options: dict) -> None:
    data = samples.encode(PHOTO, fmt, **options)
    assert sniff_image_type(data[:SNIFF_BYTES]) == kind
    assert kind in decodable_types()


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF encoder")
def test_avif() -> None:
    data = samples.encode(PHOTO, "AVIF")
    assert sniff_image_type(data) == "avif"
    assert "avif" in decodable_types()


def test_big_endian_tiff_and_bigtiff() -> None:
    assert sniff_image_type(b"MM\x00*\x00\x00\x00\x08") == "tiff"
    assert sniff_image_type(b"II+\x00\x08\x00\x00\x00") == "tiff"


def test_isobmff_brands() -> None:
    assert sniff_image_type(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "heic"
    assert sniff_image_type(b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf") == "avif"
    assert sniff_image_type(b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2") is None  # MP4
    assert "heic" not in decodable_types()


def test_jpeg_xl() -> None:
    assert sniff_image_type(b"\xff\x0a\xfa\x7f") == "jxl"
    assert sniff_image_type(b"\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00") == "jxl"


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"<!DOCTYPE html><html>",
        b'{"error": 404}',
        b"BM is also how this sentence starts",
        b"\xff\xd8",  # too short to be sure
        b"GIF90a",
        b"RIFF\x00\x00\x00\x00WAVEfmt ",
        b"%PDF-1.7",
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b"\x00\x00\x01\x00\x00\x00",  # ICO with zero images
    ],
)
def test_not_images(head: bytes) -> None:
    assert sniff_image_type(head) is None
