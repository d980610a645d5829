"""Recognise an image type from the first bytes of a body, before it is decoded or even complete.

A fetch that expects an image (`sleuth.net`, `expect="image"`) calls `sniff_image_type` on the
head of a response so that an HTML error page, a JSON body or a video served under an image URL
is refused early, whatever its Content-Type says. Only raster types are recognised; SVG (text,
needs a renderer) is not an image here.
`decodable_types()` lists the types `sleuth.imaging.decode` can turn into pixels; the others (HEIC,
JPEG XL, Netpbm's PAM, AVIF where Pillow lacks it) are recognised so that the error says
`unsupported` rather than `not_image`.
"""

from __future__ import annotations

import struct

from PIL import features

# How many leading bytes `sniff_image_type` needs to recognise every type it knows.
SNIFF_BYTES = 32

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_GENERIC_HEIF = {b"mif1", b"msf1", b"mif2"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Sizes of the BMP information headers (BITMAPCOREHEADER ... BITMAPV5HEADER).
_BMP_DIB_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
# Netpbm magic numbers (plain and raw forms) and the type each names.
_NETPBM = {
    b"P1": "pbm",
    b"P4": "pbm",
    b"P2": "pgm",
    b"P5": "pgm",
    b"P3": "ppm",
    b"P6": "ppm",
    b"P7": "pam",
    b"Pf": "pfm",  # grayscale float map, which Pillow's Netpbm plugin also reads
}


def _isobmff_type(head: bytes) -> str | None:
    """AVIF or HEIC from an ISO-BMFF `ftyp` box (major brand, then compatible brands)."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    (box_size,) = struct.unpack(">I", head[:4])
    brands = [head[8:12]]
    end = min(box_size, len(head)) if box_size >= 16 else 12
    brands += [head[i : i + 4] for i in range(16, end - 3, 4)]
    if any(b in _AVIF_BRANDS for b in brands):
        return "avif"
    if any(b in _HEIF_BRANDS or b in _GENERIC_HEIF for b in brands):
        return "heic"
    return None


def sniff_image_type(head: bytes) -> str | None:
    """The image type of a body from its first bytes (`SNIFF_BYTES` suffice), or None.

    Returns one of jpeg, png, gif, webp, bmp, tiff, ico, qoi, pbm, pgm, ppm, pfm, pam, avif, heic,
    jxl."""
    head = bytes(head[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib_size,) = struct.unpack("<I", head[14:18])
        if dib_size in _BMP_DIB_SIZES:
            return "bmp"
    if head[:4] in (b"\x00\x00\x01\x00", b"\x00\x00\x02\x00") and len(head) >= 6:
        (count,) = struct.unpack("<H", head[4:6])
        # a directory entry: width, height, colours, reserved (0), ...
        if 0 < count <= 256 and (len(head) < 10 or head[9] == 0):
            return "ico"
    if head[:4] == b"qoif" and len(head) >= 14:
        return "qoi"
    if head[:2] in _NETPBM and len(head) >= 3 and head[2:3].isspace():
        return _NETPBM[head[:2]]
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "jxl"
    return _isobmff_type(head)


def decodable_types() -> frozenset[str]:
    """The sniffed types this installation can decode (AVIF depends on Pillow's build)."""
    types = {"jpeg", "png", "gif", "webp", "bmp", "tiff", "ico", "qoi", "pbm", "pgm", "ppm", "pfm"}
    if features.check("avif"):
        types.add("avif")
    return frozenset(types)
