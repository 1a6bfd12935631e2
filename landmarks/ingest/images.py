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
- A JPEG whose EXIF orientation says it is rotated or mirrored is turned upright and
  re-encoded the same way: the decoders downstream ignore EXIF, and would train on it
  sideways.
- `sha256` is the hash of the stored bytes, so duplicates are found on what is kept and
  the manifest can verify the files on disk.

Whatever the bytes, `check_image` returns or raises `ImageRejected`: one hostile download
must cost its own row, never the run (tests/ingest/test_image_fuzz.py holds it to that).
"""

from __future__ import annotations

import hashlib
import io
import logging
import struct
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# Formats a crawler meets on landmark photo hosts; GIF and others are rejected because
# animation and 1-bit palettes make poor training images.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# Modes that stay as stored JPEG bytes; the decoders downstream handle both directly.
_JPEG_KEEP_MODES = frozenset({"RGB", "L"})
# Modes that convert to RGB without losing meaning; 16-bit and float images would need
# a tone mapping we do not want to guess.
_CONVERTIBLE_MODES = frozenset({"RGB", "L", "LA", "RGBA", "P", "PA", "CMYK", "YCbCr", "1"})
# The project's own decoding limit, checked on the size the header declares before any
# pixel is decoded. 50 MP holds the largest photos phones take (8160x6120 = 49.9 MP).
# Pillow holds RGB in 4 bytes a pixel: checking a 49 MP JPEG peaks near 190 MB, a 49 MP
# PNG with alpha near 380 MB while it is flattened, per worker. Larger files are
# panoramas, scans or decompression bombs, none of which a classifier trained at a few
# hundred pixels needs. It is below Pillow's own bomb warning (89.5 MP), so this limit
# is the one that applies, whatever Pillow's global MAX_IMAGE_PIXELS is set to.
MAX_PIXELS = 50_000_000
# The JPEG format stores at most 65,535 pixels a side and libjpeg writes 65,500; a wider
# PNG or WebP under MAX_PIXELS could be decoded but never stored.
JPEG_MAX_SIDE = 65_500
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


def check_image(data: bytes, *, min_size: int, max_pixels: int = MAX_PIXELS) -> CheckedImage:
    """Decode `data` completely and return what to store.

    Args:
        data: The bytes as fetched.
        min_size: Smallest accepted width and height, in pixels.
        max_pixels: Largest accepted width x height, checked before decoding.

    Raises:
        ImageRejected: with code `not_an_image`, `unsupported_format`, `too_large`,
            `too_small`, `unsupported_mode`, `truncated_image`, `corrupt_image`, or
            `decode_error` (naming the exception class) for any other failure to decode.
            Nothing else, whatever the bytes.
    """
    try:
        return _check(data, min_size=min_size, max_pixels=max_pixels)
    except ImageRejected:
        raise
    except Exception as err:
        # Pillow's plugins raise more classes than they document on hostile bytes
        # (IndexError, ZeroDivisionError, MemoryError, ...). Any of them is this image's
        # failure, not the run's; the class name in the reason makes a new one visible in
        # summary.json. KeyboardInterrupt and SystemExit are not Exceptions: they go on.
        log.debug("decoding failed with %s", type(err).__name__, exc_info=True)
        raise ImageRejected("decode_error", f"{type(err).__name__}: {_short(err)}") from None


# What Pillow raises for a file it identified but cannot parse or decode.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)


def _decode_failure(err: Exception, stage: str) -> ImageRejected:
    message = _short(err)
    code = "truncated_image" if "truncated" in message.lower() else "corrupt_image"
    return ImageRejected(code, f"{stage}: {message}" if stage else message)


def _check(data: bytes, *, min_size: int, max_pixels: int) -> CheckedImage:
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        claimed = _claimed_format(data)
        if claimed:
            raise ImageRejected("corrupt_image", f"{claimed} headers do not parse") from None
        raise ImageRejected("not_an_image", _describe(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own check (above 2 x its MAX_IMAGE_PIXELS, or above it when warnings
        # are errors) fires inside open(), before ours can.
        raise ImageRejected("too_large", _short(err)) from None
    except _DECODE_ERRORS as err:
        raise _decode_failure(err, "header does not parse") from None
    with image:
        fmt = image.format or "unknown"
        if fmt not in ACCEPTED_FORMATS:
            raise ImageRejected(
                "unsupported_format",
                f"{fmt} (accepted: {', '.join(sorted(ACCEPTED_FORMATS))})",
            )
        width, height = image.size
        if width * height > max_pixels:
            raise ImageRejected(
                "too_large", f"{width}x{height} pixels exceeds the limit of {max_pixels}"
            )
        if max(width, height) > JPEG_MAX_SIDE:
            raise ImageRejected(
                "too_large", f"{width}x{height}: a side above {JPEG_MAX_SIDE} cannot be a JPEG"
            )
        if min(width, height) < min_size:
            raise ImageRejected("too_small", f"{width}x{height}, minimum side is {min_size}")
        if image.mode not in _CONVERTIBLE_MODES:
            raise ImageRejected("unsupported_mode", f"pixel mode {image.mode}")
        try:
            image.load()
        except _DECODE_ERRORS as err:
            raise _decode_failure(err, "") from None

        transpose = _orientation_fix(image)
        converted = transpose is not None or not (fmt == "JPEG" and image.mode in _JPEG_KEEP_MODES)
        if not converted:
            stored = data
        else:
            upright = image if transpose is None else image.transpose(transpose)
            width, height = upright.size
            stored = _to_rgb_jpeg(upright)
    return CheckedImage(
        data=stored,
        width=width,
        height=height,
        source_format=fmt,
        converted=converted,
        sha256=hashlib.sha256(stored).hexdigest(),
    )


_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orientation_fix(image: Image.Image) -> Image.Transpose | None:
    """The transposition that makes the image upright, None if it is already."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # broken EXIF is only metadata: the pixels decoded, keep them as they are
        return None
    return _TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split()) or "no message"
    return text if len(text) <= 200 else text[:197] + "..."


def _to_rgb_jpeg(image: Image.Image) -> bytes:
    # No copy where the mode is already right: at the pixel limit each one is 200 MB.
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba)  # an RGBA mask pastes through its alpha channel
    else:
        rgb = image if image.mode == "RGB" else image.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()
