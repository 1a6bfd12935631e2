"""Hostile and awkward image files, made by the tests themselves (nothing is downloaded).

`declare_size` rewrites the size a PNG, JPEG or WebP header declares without touching
the pixel data, which is how a decompression bomb costs a few hundred bytes on the wire.
`corpus()` is the set the full-ingest test serves: each entry says what the manifest must
record for it.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers that carry the image size (all SOFn but DHT, JPG, DAC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE})


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def photo(size: tuple[int, int] = (48, 40), seed: int = 0) -> Image.Image:
    """A small RGB image with structure (a gradient and a seed-dependent square)."""
    image = Image.radial_gradient("L").resize(size).convert("RGB")
    square = Image.new("RGB", (size[0] // 3, size[1] // 3), (seed * 37 % 256, 90, 200))
    image.paste(square, (seed % 5, seed % 7))
    return image


def declare_size(data: bytes, width: int, height: int) -> bytes:
    """`data` with a header declaring `width` x `height`; raises ValueError if it has none."""
    if data.startswith(_PNG_MAGIC) and data[12:16] == b"IHDR":
        ihdr = struct.pack(">II", width, height) + data[24:29]
        crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        return data[:16] + ihdr + crc + data[33:]
    if data.startswith(b"\xff\xd8"):
        return _jpeg_declare_size(data, width, height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_declare_size(data, width, height)
    raise ValueError("not a PNG, JPEG or WebP header")


def _jpeg_declare_size(data: bytes, width: int, height: int) -> bytes:
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            # length(2) precision(1) height(2) width(2)
            size = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
            return data[: pos + 5] + size + data[pos + 9 :]
        pos += 2 + length
    raise ValueError("no start-of-frame marker")


def _webp_declare_size(data: bytes, width: int, height: int) -> bytes:
    chunk = data[12:16]
    if chunk == b"VP8X":  # 24-bit canvas width-1 and height-1
        size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        return data[:24] + size + data[30:]
    if chunk == b"VP8L":  # 14-bit width-1 and height-1 after the 0x2F signature
        bits = struct.unpack("<I", data[21:25])[0] & ~0x0FFFFFFF
        bits |= ((width - 1) & 0x3FFF) | (((height - 1) & 0x3FFF) << 14)
        return data[:21] + struct.pack("<I", bits) + data[25:]
    if chunk == b"VP8 ":  # 14-bit sizes after the 9d 01 2a start code
        size = struct.pack("<HH", width & 0x3FFF, height & 0x3FFF)
        return data[:26] + size + data[30:]
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


@dataclass(frozen=True)
class Case:
    """One file of the corpus and what ingest must make of it.

    Attributes:
        name: Also the image id's suffix in the tests.
        data: The bytes served.
        reason: The manifest's reason code, or "" if the image must be kept.
    """

    name: str
    data: bytes
    reason: str = ""


def corpus() -> list[Case]:
    """Broken, hostile and merely unusual files, each with its expected outcome."""
    rgb = photo()
    jpeg = encode(rgb, "JPEG", quality=90)
    png = encode(rgb, "PNG")
    webp = encode(rgb, "WEBP", quality=80)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    frames = [photo(seed=1), photo(seed=2).rotate(90)]
    return [
        # Pillow's own bomb check raises inside Image.open (above 179 MP).
        Case("png_bomb", declare_size(png, 30_000, 30_000), "too_large"),
        Case("jpeg_bomb", declare_size(jpeg, 60_000, 60_000), "too_large"),
        Case(
            "webp_bomb",
            declare_size(encode(rgb, "WEBP", lossless=True), 16_000, 16_000),
            "too_large",
        ),
        # Between Pillow's warning (89.5 MP) and its error: only a warning from Pillow.
        Case("png_90mp", declare_size(png, 10_000, 9_000), "too_large"),
        # Under every Pillow limit, over the project's.
        Case("png_60mp", declare_size(png, 8_000, 7_500), "too_large"),
        # Few pixels, but wider than any JPEG can be.
        Case("png_too_wide", declare_size(png, 70_000, 40), "too_large"),
        Case("truncated_jpeg", jpeg[: len(jpeg) // 2], "truncated_image"),
        Case("truncated_png", png[: len(png) - 40], "truncated_image"),
        Case("zero_bytes", b"", "not_an_image"),
        Case(
            "html",
            b"<!DOCTYPE html><html><body>429 Too Many Requests</body></html>",
            "not_an_image",
        ),
        # Pillow reads the JPEG bytes as PNG chunk lengths and runs off the end.
        Case("png_magic_jpeg_body", _PNG_MAGIC + jpeg[2:], "truncated_image"),
        Case("jpeg_magic_garbage", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "corrupt_image"),
        Case(
            "gif_animated",
            encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
            "unsupported_format",
        ),
        Case("png_16bit", encode(Image.new("I;16", (48, 40), 40_000), "PNG"), "unsupported_mode"),
        Case("cmyk_jpeg", encode(rgb.convert("CMYK"), "JPEG")),
        Case("png_palette_transparent", encode(palette, "PNG", transparency=0)),
        Case("png_animated", encode(frames[0], "PNG", save_all=True, append_images=frames[1:])),
        Case("webp_animated", encode(frames[0], "WEBP", save_all=True, append_images=frames[1:])),
        Case("jpeg_exif_rotated", with_orientation(photo((48, 40), seed=3), 6)),
        Case("webp", webp),
        Case("jpeg", jpeg),
    ]
