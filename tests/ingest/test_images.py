"""Every image is decoded before it is kept; what fails says why."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from landmarks.ingest.images import ImageRejected, check_image
from tests.ingest.conftest import encode


def _reject(data: bytes, min_size: int = 32) -> str:
    with pytest.raises(ImageRejected) as info:
        check_image(data, min_size=min_size)
    return info.value.code


def test_rgb_jpeg_is_kept_byte_for_byte(jpeg) -> None:
    data = jpeg(1)
    checked = check_image(data, min_size=32)
    assert checked.data == data and not checked.converted
    assert (checked.width, checked.height) == (40, 40)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


def test_grayscale_jpeg_is_kept_as_is() -> None:
    data = encode(Image.new("L", (40, 40), 128), "JPEG")
    assert check_image(data, min_size=32).data == data


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("RGBA", (40, 36), (255, 0, 0, 0)), "PNG"),
        (Image.new("P", (40, 36)), "PNG"),
        (Image.new("RGB", (40, 36), "blue"), "WEBP"),
        (Image.new("CMYK", (40, 36), (0, 255, 0, 0)), "JPEG"),
    ],
)
def test_other_images_become_rgb_jpegs(image: Image.Image, fmt: str) -> None:
    checked = check_image(encode(image, fmt), min_size=32)
    assert checked.converted and checked.source_format == fmt
    stored = Image.open(io.BytesIO(checked.data))
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (40, 36))
    assert checked.sha256 == hashlib.sha256(checked.data).hexdigest()


def test_transparent_pixels_become_white() -> None:
    checked = check_image(encode(Image.new("RGBA", (40, 40), (0, 0, 0, 0)), "PNG"), min_size=8)
    assert min(Image.open(io.BytesIO(checked.data)).getpixel((20, 20))) > 250


def test_html_and_text_are_not_images() -> None:
    assert _reject(b"<!DOCTYPE html><html><body>Rate limited</body></html>") == "not_an_image"
    assert _reject(b"") == "not_an_image"
    assert _reject(b'{"error": "not found"}') == "not_an_image"


def test_truncated_jpeg_is_rejected(jpeg) -> None:
    data = jpeg(2)
    assert _reject(data[: len(data) // 2]) == "truncated_image"


def test_jpeg_with_broken_headers_is_corrupt_not_a_non_image(jpeg) -> None:
    data = bytearray(jpeg(3))
    data[20:400] = b"\x00" * 380  # quantisation and Huffman tables gone
    assert _reject(bytes(data)) == "corrupt_image"


def test_small_images_are_rejected(jpeg) -> None:
    assert _reject(jpeg(4, size=20)) == "too_small"
    assert check_image(jpeg(4, size=20), min_size=20).width == 20


def test_unsupported_formats_and_modes_are_rejected() -> None:
    assert _reject(encode(Image.new("RGB", (40, 40)), "GIF")) == "unsupported_format"
    assert _reject(encode(Image.new("RGB", (40, 40)), "BMP")) == "unsupported_format"
    assert _reject(encode(Image.new("I;16", (40, 40)), "PNG")) == "unsupported_mode"


def test_huge_images_are_refused_before_decoding() -> None:
    # A 1-bit PNG of 8000x8000 is tiny on the wire and 64 MP once decoded.
    assert _reject(encode(Image.new("1", (8000, 8000)), "PNG")) == "too_large"
