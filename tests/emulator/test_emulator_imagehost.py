"""The picsum-shaped image host over HTTP: sizes, determinism, errors, headers, hostile cases."""

from __future__ import annotations

import io
import socket
import struct
import time
import zlib

import httpx
import pytest
from flask import Flask
from PIL import Image, UnidentifiedImageError

from sleuth.emulator import EmulatorServer, create_imagehost_app, photo_jpeg
from sleuth.emulator.imagehost import (
    ImageHost,
    ImageRequest,
    InvalidImageRequest,
    imagehost_blueprint,
    parse_image_path,
    size_image_id,
)
from tests.patience import PATIENCE


def _image(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


@pytest.mark.parametrize(
    ("path", "size"),
    [
        ("/200/300", (200, 300)),
        ("/64", (64, 64)),
        ("/id/7/120/80", (120, 80)),
        ("/id/7/33", (33, 33)),
    ],
)
def test_images_have_the_requested_size(
    client: httpx.Client, path: str, size: tuple[int, int]
) -> None:
    image = _image(client.get(path))
    assert (image.format, image.size) == ("JPEG", size)


def test_image_headers_are_like_picsum(client: httpx.Client) -> None:
    response = client.get("/200/300")
    headers = response.headers
    assert headers["content-type"] == "image/jpeg"
    assert int(headers["content-length"]) == len(response.content)
    assert headers["cache-control"].startswith("public, max-age=")
    assert headers["picsum-id"] == str(size_image_id(200, 300))
    assert headers["etag"].startswith('"') and headers["etag"].endswith('"')
    assert "filename=" in headers["content-disposition"]


def test_same_url_same_bytes_and_etag_revalidation(client: httpx.Client) -> None:
    first, second = client.get("/150/100"), client.get("/150/100")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    revalidated = client.get("/150/100", headers={"If-None-Match": first.headers["etag"]})
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    head = client.head("/150/100")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == first.headers["content-length"]


def test_bytes_survive_a_server_restart_and_depend_on_the_seed() -> None:
    def fetch(seed: int) -> bytes:
        with EmulatorServer(create_imagehost_app(seed=seed)) as url:
            return httpx.get(url + "/id/3/90/60", timeout=PATIENCE).content

    assert fetch(0) == fetch(0)
    assert fetch(1) != fetch(0)


def test_distinct_urls_give_distinct_bytes(client: httpx.Client) -> None:
    paths = ["/100/100", "/100", "/id/1/100/100", "/id/2/100/100", "/100/101", "/101/100"]
    bodies = [client.get(path).content for path in paths]
    assert bodies[0] == bodies[1]  # /100 is the square /100/100, as on picsum
    assert len(set(bodies[1:])) == len(paths) - 1


def test_jpg_extension_is_the_same_image_and_webp_is_webp(client: httpx.Client) -> None:
    assert client.get("/80/60.jpg").content == client.get("/80/60").content
    webp = client.get("/id/4/80/60.webp")
    assert webp.headers["content-type"] == "image/webp"
    assert _image(webp).format == "WEBP"


def test_a_photo_weighs_like_a_camera_photo(client: httpx.Client) -> None:
    assert 150_000 <= len(client.get("/id/42/1024/768").content) <= 250_000


@pytest.mark.parametrize(
    "path", ["/9000000/900000", "/5001/10", "/10/5001", "/0/10", "/id/3/6000", "/" + "9" * 5000]
)
def test_oversized_requests_are_refused_like_picsum(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.text) == (400, "Invalid size\n")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert "no-store" in response.headers["cache-control"]


def test_5000_is_the_largest_allowed_size() -> None:
    expected = ImageRequest(size_image_id(5000, 5000), 5000, 5000, "jpeg")
    assert parse_image_path("/5000/5000") == expected


def test_errors_as_json_when_asked(client: httpx.Client) -> None:
    response = client.get("/9000/9000", headers={"Accept": "application/json"})
    assert (response.status_code, response.json()) == (400, {"error": "Invalid size"})


@pytest.mark.parametrize(
    ("path", "status", "text"),
    [
        ("/200/300.png", 400, "Invalid file extension\n"),
        ("/id/abc/200/300", 404, "Image does not exist\n"),
        ("/nothing/here", 404, "page not found\n"),
        ("/error/100", 404, "page not found\n"),
        ("/error/99", 404, "page not found\n"),
        ("/error/600", 404, "page not found\n"),
        ("/error/abc", 404, "page not found\n"),
        ("/error/²", 404, "page not found\n"),
        ("/id/²/10/10", 404, "Image does not exist\n"),
        ("/id/" + "1" * 5000 + "/10/10", 404, "Image does not exist\n"),
        ("/error/404", 404, "404 Not Found\n"),
        ("/error/500", 500, "500 Internal Server Error\n"),
        ("/error/503", 503, "503 Service Unavailable\n"),
        ("/error/418", 418, "418 I'm a Teapot\n"),
        ("/error/299", 299, "299 Unknown Status\n"),
    ],
)
def test_error_paths(client: httpx.Client, path: str, status: int, text: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.text) == (status, text)


def test_error_204_has_no_body(client: httpx.Client) -> None:
    response = client.get("/error/204")
    assert (response.status_code, response.content) == (204, b"")
    assert client.get("/10/10").status_code == 200  # the connection is still in order


def test_parse_image_path_order_of_checks() -> None:
    with pytest.raises(InvalidImageRequest) as caught:
        parse_image_path("/id/99999999999999999999999/10/10")
    assert caught.value.status == 404
    with pytest.raises(InvalidImageRequest) as caught:
        parse_image_path("/id/abc/100000/10")
    assert caught.value.status == 404  # picsum looks the image up before checking the size


# --- hostile endpoints ---------------------------------------------------------------------


def test_slow_drips_a_few_bytes_per_second(client: httpx.Client) -> None:
    started = time.monotonic()
    received = 0
    with client.stream("GET", "/hostile/slow/60/40") as response:
        for chunk in response.iter_raw():
            received += len(chunk)
            if time.monotonic() - started > 1.0:
                break
    elapsed = time.monotonic() - started
    assert received > 0
    # 4 bytes every quarter of a second (16 B/s) at most: a busy machine only sends fewer.
    assert received <= 4 + 16 * elapsed


def test_slow_rate_can_be_raised(client: httpx.Client) -> None:
    response = client.get("/hostile/slow/20/20?bps=1000000")
    assert response.content == client.get("/20/20").content


def test_truncated_jpeg_cannot_be_fully_decoded(client: httpx.Client) -> None:
    full = client.get("/300/200").content
    response = client.get("/hostile/truncated/300/200")
    assert response.content == full[: len(full) // 2]
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (300, 200)
    with pytest.raises(OSError, match="truncated"):
        image.load()


def test_html_labelled_as_jpeg(client: httpx.Client) -> None:
    response = client.get("/hostile/html-as-jpeg")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content.startswith(b"<!DOCTYPE html>")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(response.content))


def test_redirect_loop(client: httpx.Client) -> None:
    first = client.get("/hostile/redirect-loop")
    second = client.get(first.headers["location"])
    assert (first.status_code, second.status_code) == (302, 302)
    assert second.headers["location"] == "/hostile/redirect-loop"
    with pytest.raises(httpx.TooManyRedirects):
        client.get("/hostile/redirect-loop", follow_redirects=True)


def test_redirect_chain_ends_in_an_image(client: httpx.Client) -> None:
    response = client.get("/hostile/redirect/3", follow_redirects=True)
    assert len(response.history) == 3
    assert _image(response).size == (640, 480)
    assert client.get("/hostile/redirect/101").status_code == 400


def test_bomb_is_tiny_declares_60000_squared_and_inflates_a_thousandfold(
    client: httpx.Client,
) -> None:
    data = client.get("/hostile/bomb").content
    assert len(data) < 8192
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (60_000, 60_000)
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    inflated = zlib.decompress(data[41 : 41 + idat_length])
    assert len(inflated) >= 1000 * idat_length
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))  # Pillow's default pixel limit


def test_bomb_with_an_explicit_pixel_limit(client: httpx.Client, monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(client.get("/hostile/bomb").content))


def test_not_image_is_a_pdf(client: httpx.Client) -> None:
    response = client.get("/hostile/not-image")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content.startswith(b"%PDF-1.4") and response.content.rstrip().endswith(b"%%EOF")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize(
    ("name", "fmt", "mode"),
    [
        ("alpha.png", "PNG", "RGBA"),
        ("palette.gif", "GIF", "P"),
        ("cmyk.jpg", "JPEG", "CMYK"),
        ("gray16.png", "PNG", "I;16"),
        ("bilevel.png", "PNG", "1"),
        ("image.webp", "WEBP", "RGB"),
    ],
)
def test_exotic_formats_and_modes(client: httpx.Client, name: str, fmt: str, mode: str) -> None:
    image = _image(client.get(f"/hostile/{name}"))
    assert (image.format, image.mode) == (fmt, mode)


def test_alpha_varies_and_gray16_uses_sixteen_bits(client: httpx.Client) -> None:
    alpha = _image(client.get("/hostile/alpha.png")).getchannel("A")
    low, high = alpha.getextrema()
    assert high - low > 200
    gray = _image(client.get("/hostile/gray16.png"))
    assert gray.getextrema()[1] > 255


def test_animated_gif_has_distinct_frames(client: httpx.Client) -> None:
    image = _image(client.get("/hostile/animated.gif"))
    assert image.n_frames >= 3
    frames = []
    for index in range(image.n_frames):
        image.seek(index)
        frames.append(image.convert("RGB").tobytes())
    assert len(set(frames)) == image.n_frames


def test_huge_body_is_streamed_with_a_jpeg_header(client: httpx.Client) -> None:
    with client.stream("GET", "/hostile/huge-body") as response:
        assert response.headers["content-length"] == str(100 * 1024 * 1024)
        first = b""
        for chunk in response.iter_bytes():
            first += chunk
            if len(first) > 2_000_000:
                break
    assert first.startswith(b"\xff\xd8\xff")
    with client.stream("GET", "/hostile/huge-body?length=0") as response:
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
    assert client.get("/10/10").status_code == 200


def test_huge_body_size_is_a_parameter() -> None:
    app = create_imagehost_app(huge_body_bytes=300_000)
    with EmulatorServer(app) as url:
        response = httpx.get(url + "/hostile/huge-body", timeout=PATIENCE)
    assert len(response.content) == 300_000


def test_no_length_is_a_whole_chunked_jpeg(client: httpx.Client) -> None:
    response = client.get("/hostile/no-length")
    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    assert _image(response).size == (640, 480)


def test_reset_closes_the_connection_mid_body(client: httpx.Client, imagehost_url: str) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        client.get("/hostile/reset")
    host, port = imagehost_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=PATIENCE) as sock:
        sock.sendall(b"GET /hostile/reset HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        with pytest.raises(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    declared = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    assert 0 < len(body) < declared
    assert client.get("/10/10").status_code == 200


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="seed"):
        create_imagehost_app(seed=-1)
    with pytest.raises(ValueError, match="quality"):
        create_imagehost_app(quality=101)
    with pytest.raises(ValueError, match="slow_bytes_per_second"):
        create_imagehost_app(slow_bytes_per_second=0)


def test_the_blueprint_works_under_a_prefix_beside_other_emulators() -> None:
    app = Flask(__name__)
    app.register_blueprint(imagehost_blueprint(ImageHost(seed=0)), url_prefix="/picsum")
    with EmulatorServer(app) as url, httpx.Client(base_url=url, timeout=PATIENCE) as http:
        assert http.get("/picsum/24/16").content == photo_jpeg(0, size_image_id(24, 16), 24, 16)
        redirected = http.get("/picsum/hostile/redirect/2", follow_redirects=True)
        assert [str(r.url.path) for r in redirected.history] == [
            "/picsum/hostile/redirect/2",
            "/picsum/hostile/redirect/1",
        ]
        assert _image(redirected).size == (640, 480)
        assert http.get("/picsum/error/503").status_code == 503
        assert http.get("/24/16").status_code == 404
