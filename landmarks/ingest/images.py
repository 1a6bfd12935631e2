"""Decide whether fetched bytes are an image worth keeping, and in what form.

Every image is fully decoded before it is kept: a header that parses is not enough,
because truncated downloads and HTML error pages served with status 200 are the common
failures of crawled datasets.

What is kept:

- A JPEG in RGB or grayscale is stored byte for byte (no generation loss, and its
  hash stays the hash of what the server sent).
- Anything else that decodes (PNG, WebP, CMYK or palette JPEGs, images with alpha) is
  converted to an RGB JPEG at quality 95, so every stored file decodes the same way
  downstream (`tf.io.decode_jpeg(channels=3)`). Transparent pixels become white.
- `sha256` is the hash of the stored bytes, so duplicates are found on what is kept and
  the manifest can verify the files on disk.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Formats a crawler meets on landmark photo hosts; GIF and others are rejected because
# animation and 1-bit palettes make poor training images.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# Modes that stay as stored JPEG bytes; the decoders downstream handle both directly.
_JPEG_KEEP_MODES = frozenset({"RGB", "L"})
# Modes that convert to RGB without losing meaning; 16-bit and float images would need
# a tone mapping we do not want to guess.
_CONVERTIBLE_MODES = frozenset({"RGB", "L", "LA", "RGBA", "P", "PA", "CMYK", "YCbCr", "1"})
# Larger images are almost certainly not photos (or decompression bombs); 50 MP is
# above any camera photo on Wikimedia Commons' landmark categories.
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 95


class ImageRejected(Exception):
    """The bytes are not a usable image; `code` is the manifest reason code."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True)
class CheckedImage:
    """An image that passed every check, in the form it is stored."""

    data: bytes
    width: int
    height: int
    source_format: str
    converted: bool
    sha256: str


_MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF8": "GIF",
}


def _claimed_format(data: bytes) -> str | None:
    """The format the first bytes announce, for files whose headers then fail to parse."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def _describe(data: bytes) -> str:
    head = data[:64].lstrip().lower()
    if not data:
        return "empty body"
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML or XML document, not an image"
    if head.startswith((b"{", b"[")):
        return "JSON or text, not an image"
    return f"unrecognised content ({len(data)} bytes, starts with {data[:8]!r})"


def check_image(data: bytes, *, min_size: int) -> CheckedImage:
    """Decode `data` completely and return what to store.

    Args:
        data: The bytes as fetched.
        min_size: Smallest accepted width and height, in pixels.

    Raises:
        ImageRejected: with code `not_an_image`, `unsupported_format`, `too_large`,
            `too_small`, `unsupported_mode`, `truncated_image` or `corrupt_image`.
    """
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        claimed = _claimed_format(data)
        if claimed:
            raise ImageRejected("corrupt_image", f"{claimed} headers do not parse") from None
        raise ImageRejected("not_an_image", _describe(data)) from None
    except (OSError, ValueError, SyntaxError) as err:
        code = "truncated_image" if "truncated" in str(err).lower() else "corrupt_image"
        raise ImageRejected(code, f"header does not parse: {err}") from None
    with image:
        fmt = image.format or "unknown"
        if fmt not in ACCEPTED_FORMATS:
            raise ImageRejected(
                "unsupported_format",
                f"{fmt} (accepted: {', '.join(sorted(ACCEPTED_FORMATS))})",
            )
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageRejected("too_large", f"{width}x{height} pixels exceeds {MAX_PIXELS}")
        if min(width, height) < min_size:
            raise ImageRejected("too_small", f"{width}x{height}, minimum side is {min_size}")
        if image.mode not in _CONVERTIBLE_MODES:
            raise ImageRejected("unsupported_mode", f"pixel mode {image.mode}")
        try:
            with warnings.catch_warnings():
                # Pillow only warns on bombs below twice its own limit; ours is stricter.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image.load()
        except OSError as err:
            message = str(err)
            code = "truncated_image" if "truncated" in message.lower() else "corrupt_image"
            raise ImageRejected(code, message) from None
        except (ValueError, SyntaxError, Image.DecompressionBombWarning) as err:
            raise ImageRejected("corrupt_image", str(err)) from None

        converted = not (fmt == "JPEG" and image.mode in _JPEG_KEEP_MODES)
        stored = _to_rgb_jpeg(image) if converted else data
    return CheckedImage(
        data=stored,
        width=width,
        height=height,
        source_format=fmt,
        converted=converted,
        sha256=hashlib.sha256(stored).hexdigest(),
    )


def _to_rgb_jpeg(image: Image.Image) -> bytes:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba.getchannel("A"))
    else:
        rgb = image.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
