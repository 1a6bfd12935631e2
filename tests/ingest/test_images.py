"""Every image is decoded before it is kept; what fails says why."""

from __future__ import annotations

import hashlib
import io
import warnings

import pytest
from PIL import Image, ImageFile

from landmarks.ingest import IngestOptions, run_ingest
from landmarks.ingest.images import ImageRejected, check_image
from tests.ingest.conftest import encode
from tests.ingest.hostile import declare_size, photo
from tests.support.fault_server import Reply


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


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("side", [12_000, 30_000])  # Pillow's warning zone, then its error
def test_bomb_headers_are_too_large_not_an_exception(fmt: str, side: int) -> None:
    data = declare_size(
        encode(photo(), fmt, **({"lossless": True} if fmt == "WEBP" else {})), side, side
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        assert _reject(data) == "too_large"


def test_bomb_warning_raised_as_an_error_is_still_a_rejection() -> None:
    # `python -W error` turns Pillow's warning (89.5-179 MP) into an exception inside open().
    data = declare_size(encode(photo(), "PNG"), 10_000, 9_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageRejected) as info:
            check_image(data, min_size=32)
    assert info.value.code == "too_large" and "decompression bomb" in info.value.detail


def test_the_project_limit_holds_whatever_pillows_global_limit_is(monkeypatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's check switched off
    data = declare_size(encode(photo(), "PNG"), 30_000, 30_000)
    assert _reject(data) == "too_large"
    with pytest.raises(ImageRejected, match="48x40 pixels exceeds the limit of 1000"):
        check_image(encode(photo(), "PNG"), min_size=32, max_pixels=1000)


def test_a_side_no_jpeg_can_hold_is_too_large() -> None:
    data = declare_size(encode(photo(), "PNG"), 70_000, 40)
    with pytest.raises(ImageRejected, match="a side above 65500 cannot be a JPEG"):
        check_image(data, min_size=32)


class _Faulty(ImageFile.ImageFile):
    """A real Pillow plugin whose parser fails the way a buggy decoder might."""

    format = "FAULTY"
    raises: type[BaseException] = ZeroDivisionError

    def _open(self) -> None:
        raise self.raises("the plugin gave up")


@pytest.fixture
def faulty_plugin(monkeypatch) -> type[_Faulty]:
    # Registered for this test only: first in Pillow's list, for files starting FAULTY.
    monkeypatch.setitem(Image.OPEN, "FAULTY", (_Faulty, lambda prefix: prefix[:6] == b"FAULTY"))
    monkeypatch.setattr(Image, "ID", ["FAULTY", *Image.ID])
    return _Faulty


@pytest.mark.parametrize("raises", [ZeroDivisionError, MemoryError, RuntimeError, AssertionError])
def test_any_other_exception_is_a_decode_error_naming_its_class(faulty_plugin, raises) -> None:
    faulty_plugin.raises = raises
    with pytest.raises(ImageRejected) as info:
        check_image(b"FAULTY" + bytes(100), min_size=32)
    assert info.value.code == "decode_error"
    assert info.value.detail == f"{raises.__name__}: the plugin gave up"


@pytest.mark.parametrize("raises", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_not_swallowed(faulty_plugin, raises) -> None:
    faulty_plugin.raises = raises
    with pytest.raises(raises):
        check_image(b"FAULTY" + bytes(100), min_size=32)


def test_a_decode_error_costs_its_row_not_the_run(faulty_plugin, server, jpeg, tmp_path) -> None:
    faulty_plugin.raises = ZeroDivisionError
    good = server.route("/good.jpg", Reply.ok(jpeg(1)))
    odd = server.route("/odd.img", Reply.ok(b"FAULTY" + bytes(100)))
    metadata = tmp_path / "train.csv"
    metadata.write_text(f"id,url,landmark_id\ngood01,{good},1\nodd001,{odd},1\n")
    result = run_ingest(
        IngestOptions(str(metadata), str(tmp_path / "out"), min_size=32, progress=False)
    )
    assert result.counts == {"rows": 2, "ok": 1, "failed": 1, "duplicate": 0}
    assert result.summary["reasons"] == {"decode_error": 1}
