"""Fixtures for the ingest tests: a real fault-injecting HTTP server and tiny images."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.support.fault_server import FaultServer, make_jpeg


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.fixture
def jpeg() -> Callable[..., bytes]:
    """Distinct 40x40 JPEGs by seed (above the tests' min_size of 32)."""

    def make(seed: int = 0, size: int = 40) -> bytes:
        return make_jpeg(seed, size)

    return make


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., str]:
    """Write rows (header first) as a CSV under tmp_path; returns its path."""

    def write(rows: list[str] | str, name: str = "train.csv") -> str:
        path = tmp_path / name
        text = rows if isinstance(rows, str) else "\n".join(rows) + "\n"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write
