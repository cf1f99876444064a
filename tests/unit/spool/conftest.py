"""Fixtures of the spool tests: a FakeClock and a temp `Logs` folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.fake_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logs_dir(tmp_path: Path) -> Path:
    return tmp_path / "Logs"
