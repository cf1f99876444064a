"""Durations and sizes: strict parsing, exact values, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from argus_telemetry.config.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("10s", 10.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("1.5s", 1.5),
        (3, 3.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration_exact(text: object, seconds: float) -> None:
    """Each unit scales to the exact number of seconds; plain numbers are seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["10 s", "10", "s", "10sec", "-1s", "1e3s", "", " 5s", "5S", "1w", True, None, [1], -2, float("nan")]
)
def test_parse_duration_rejects(text: object) -> None:
    """Spaces, missing or unknown units, negatives, NaN, booleans and non-scalars are refused."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256MiB", 256 * 1024**2),
        ("1KiB", 1024),
        ("1MB", 1_000_000),
        ("4096B", 4096),
        ("1GiB", 1024**3),
        (12, 12),
        ("1.5KiB", 1536),
    ],
)
def test_parse_size_exact(text: object, size: int) -> None:
    """Binary and decimal units scale to exact bytes; plain integers are bytes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["256 MiB", "256mib", "1.3B", "-1KiB", "1TiB", "", 1.5, True, -1, "0x10B"])
def test_parse_size_rejects(text: object) -> None:
    """Spaces, wrong case, fractional bytes, negatives, floats and unknown units are refused."""
    with pytest.raises(ValueError, match=r"size|bytes"):
        parse_size(text)


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from([0.001, 1.0, 60.0, 3600.0, 86400.0]))
def test_duration_round_trip(count: int, factor: float) -> None:
    """format_duration gives a string parse_duration reads back to the same value."""
    seconds = count * factor
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-12, abs=1e-9)


@given(st.integers(min_value=0, max_value=2**50))
def test_size_round_trip(size: int) -> None:
    """format_size gives a string parse_size reads back to exactly the same byte count."""
    assert parse_size(format_size(size)) == size
