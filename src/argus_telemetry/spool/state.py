"""The sidecar state file next to the spool: the seq reservation and the row count, so
that a lost or corrupt database never reuses a seq and its lost rows can be counted."""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_NAME = "spool.state"
SEQ_RESERVE = 1000  # seqs reserved ahead in the sidecar, so a lost database never reuses one


def read_state(directory: Path) -> dict[str, int]:
    """The integer fields of `<directory>/spool.state`; {} when missing or unreadable."""
    try:
        data = json.loads((directory / STATE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}


def write_state(directory: Path, *, reserved_seq: int, rows: int) -> None:
    """Persist the reservation and row count (tmp file, fsync, rename); raises OSError."""
    body = json.dumps({"reserved_seq": reserved_seq, "rows": rows}).encode()
    target = directory / STATE_NAME
    temporary = target.with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target)
