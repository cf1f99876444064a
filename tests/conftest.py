"""Shared fixtures. Real servers and harnesses live in tests/support/ (one module each)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """An environment for `argus` subprocesses with no ARGUS_* settings leaking in."""
    for key in list(os.environ):
        if key.startswith("ARGUS_"):
            monkeypatch.delenv(key)
    yield dict(os.environ)
