"""Fuzzing the image validator: whatever the bytes, it keeps an image or says why not.

Mutated real JPEG, PNG, GIF and WebP files (bit flips, overwritten runs, truncation,
spliced headers, huge declared sizes) and raw noise go through `check_image`. It must
return an image that downstream decoders read as stored, or raise `ImageRejected`:
any other exception would end a whole ingest run.

Runs are derandomized (the same examples on every machine, no example database), and
bounded so the file takes a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import struct
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from landmarks.ingest.images import ImageRejected, check_image
from tests.ingest.hostile import declare_size, encode, photo, with_orientation

MIN_SIZE = 16
# Low enough that a mutated header declaring a plausible size is not decoded for
# seconds; the default limit is exercised by the corpus tests.
MAX_PIXELS = 250_000


def _seeds() -> list[bytes]:
    rgb = photo((48, 40))
    frames = [photo(seed=1), photo(seed=2).rotate(90)]
    return [
        encode(rgb, "JPEG", quality=90),
        encode(rgb, "JPEG", quality=75, progressive=True),
        encode(rgb.convert("L"), "JPEG"),
        encode(rgb.convert("CMYK"), "JPEG"),
        with_orientation(rgb, 8),
        encode(rgb, "PNG"),
        encode(rgb.convert("RGBA"), "PNG"),
        encode(rgb.convert("P", colors=16), "PNG", transparency=0),
        encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        encode(rgb, "GIF"),
        encode(rgb, "WEBP", quality=80),
        encode(rgb, "WEBP", lossless=True),
        encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
    ]


SEEDS = _seeds()
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    ops = draw(st.lists(st.integers(0, 5), min_size=1, max_size=4))
    for op in ops:
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == 0 and data:  # flip one bit
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:  # overwrite a short run
            run = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(run)] = run
        elif op == 2:  # cut the download short
            del data[at:]
        elif op == 3:  # the start of another file on this one's body
            other = draw(st.sampled_from(SEEDS))
            cut = draw(st.integers(1, min(len(other), 128)))
            data[:cut] = other[:cut]
        elif op == 4:  # a declared size from tiny to bomb
            side = st.one_of(st.integers(1, 2_000), st.integers(2_000, 100_000))
            width, height = draw(side), draw(side)
            # A header already mangled past recognition stays as it is.
            with contextlib.suppress(ValueError, struct.error, OverflowError, IndexError):
                data = bytearray(declare_size(bytes(data), width, height))
        else:  # a chunk repeated, as a misbehaving proxy might
            length = draw(st.integers(1, 64))
            data[at:at] = data[at : at + length]
    return bytes(data)


def _check_outcome(data: bytes) -> None:
    try:
        checked = check_image(data, min_size=MIN_SIZE, max_pixels=MAX_PIXELS)
    except ImageRejected as err:
        assert err.code and err.detail
        return
    # What is kept must be what the trainer can read: a JPEG in RGB or grayscale.
    stored = Image.open(io.BytesIO(checked.data))
    stored.load()
    assert stored.format == "JPEG" and stored.mode in ("RGB", "L")
    assert stored.size == (checked.width, checked.height)
    assert min(stored.size) >= MIN_SIZE
    assert checked.width * checked.height <= MAX_PIXELS


@pytest.fixture(autouse=True)
def _quiet_bomb_warnings():
    # Pillow warns on headers between its two bomb limits; the validator rejects those
    # itself, and hundreds of identical warnings would bury the test report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


@FUZZ
@given(mutated_images())
def test_mutated_images_are_kept_or_rejected_never_raised(data: bytes) -> None:
    _check_outcome(data)


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=512),
        st.tuples(st.sampled_from([s[:16] for s in SEEDS]), st.binary(max_size=512)).map(
            lambda parts: parts[0] + parts[1]
        ),
    )
)
def test_noise_with_or_without_an_image_magic_is_rejected_never_raised(data: bytes) -> None:
    _check_outcome(data)


def test_the_seeds_themselves_are_kept_except_the_gif() -> None:
    kept = []
    for data in SEEDS:
        try:
            kept.append(check_image(data, min_size=MIN_SIZE).source_format)
        except ImageRejected as err:
            assert err.code == "unsupported_format" and data.startswith(b"GIF")
    assert sorted(set(kept)) == ["JPEG", "PNG", "WEBP"]
