"""IngestOptions refuses settings that would hang, spin or accept nothing, naming the field."""

import pytest

from landmarks.errors import InputError
from landmarks.ingest import IngestOptions


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("workers", 0),
        ("timeout", 0),
        ("retries", -1),
        ("backoff", -0.5),
        ("max_retry_wait", 0),
        ("flush_seconds", -1),
        ("min_size", 0),
        ("max_pixels", 0),
        ("max_bytes", 0),
        ("limit", 0),
    ],
)
def test_bad_option_is_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(InputError, match=f"field '{field}': must be"):
        IngestOptions(metadata="m.csv", out="out", **{field: value})


def test_defaults_are_accepted() -> None:
    assert IngestOptions(metadata="m.csv", out="out").workers >= 1
