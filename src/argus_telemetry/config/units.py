"""Pure parsers for durations ("500ms", "10s", "7d") and sizes ("256MiB").

Each returns a plain number or raises ValueError with a sentence that quotes the bad
text and shows an example of a good one.
"""

from __future__ import annotations

import math
import re

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE_UNITS = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)(B|KB|MB|GB|KiB|MiB|GiB)")


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string like "500ms", "10s", "5m", "7d".

    Booleans, negatives, NaN/infinity, spaces and unknown units are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is not a duration (e.g. "10s")')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.fullmatch(value)
        if match is None:
            raise ValueError(f'"{value}" is not a duration (e.g. "500ms", "10s", "5m", "7d")')
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f'{value!r} is not a duration (e.g. "10s")')
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration: it must be finite and not negative")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from a whole number of bytes or a string like "256MiB", "1MB", "512B".

    Booleans, negatives, fractions of a byte and unknown units are refused.
    """
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is not a size (e.g. "256MiB")')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match is None:
            raise ValueError(f'"{value}" is not a size (e.g. "256MiB", "1MB", "4096B")')
        exact = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
        if exact != int(exact):
            raise ValueError(f'"{value}" is not a whole number of bytes')
        size = int(exact)
    else:
        raise ValueError(f'{value!r} is not a size (e.g. "256MiB")')
    if size < 0:
        raise ValueError(f"{value!r} is not a size: it must not be negative")
    return size


def format_duration(seconds: float) -> str:
    """The shortest exact string parse_duration reads back to `seconds`."""
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        count = seconds / factor
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    millis = seconds * 1000
    if millis == int(millis):
        return f"{int(millis)}ms"
    return f"{seconds!r}s"


def format_size(size: int) -> str:
    """The shortest exact string parse_size reads back to `size`."""
    for unit in ("GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
