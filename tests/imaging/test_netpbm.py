"""Netpbm and QOI files, as Pillow writes them, are images: sniffed, decoded, grayscaled and
hashed like any other; PAM, which Pillow cannot decode, is `unsupported`, not `not_image`."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from sleuth.imaging.decode import decode_image
from sleuth.imaging.errors import ImageError
from sleuth.imaging.process import process_image
from sleuth.imaging.sniff import SNIFF_BYTES, decodable_types, sniff_image_type
from tests.imaging import samples

MAX = 64_000_000


def pillow_file(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


PHOTO = samples.photo((40, 30))


@pytest.mark.parametrize(
    "kind,mode,fmt,options",
    [
        ("ppm", "RGB", "PPM", {}),
        ("pgm", "L", "PPM", {}),
        ("pbm", "1", "PPM", {}),
        ("ppm", "RGB", "PPM", {"bitmap_format": "plain"}),
        ("pgm", "L", "PPM", {"bitmap_format": "plain"}),
        ("qoi", "RGB", "QOI", {}),
    ],
)
def test_pillow_written_files_are_images(kind: str, mode: str, fmt: str, options: dict) -> None:
    source = PHOTO.convert(mode)
    data = pillow_file(source, fmt, **options)
    assert sniff_image_type(data[:SNIFF_BYTES]) == kind
    assert kind in decodable_types()
    decoded = decode_image(data, MAX)
    assert (decoded.width, decoded.height) == PHOTO.size
    assert np.array_equal(
        np.asarray(decoded.image.convert("RGB")), np.asarray(source.convert("RGB"))
    )
    processed = process_image(data, MAX)
    assert (processed.width, processed.height) == PHOTO.size


def test_pgm_gray_is_its_single_channel() -> None:
    gray = PHOTO.convert("L")
    processed = process_image(pillow_file(gray, "PPM"), MAX)
    expected = process_image(pillow_file(gray, "PNG"), MAX)
    assert (processed.gray, processed.phash) == (expected.gray, expected.phash)


def test_pam_is_recognised_but_unsupported() -> None:
    pam = b"P7\nWIDTH 2\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + bytes(6)
    assert sniff_image_type(pam) == "pam"
    with pytest.raises(ImageError) as info:
        decode_image(pam, MAX)
    assert info.value.reason == "unsupported"


def test_text_starting_like_netpbm_is_not_an_image() -> None:
    assert sniff_image_type(b"P1ease read me") is None
    assert sniff_image_type(b"qoif") is None
