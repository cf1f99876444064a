"""The named pipe's security descriptor, built on every platform (the pipe itself needs Windows)."""

from __future__ import annotations

import pytest

from argus_telemetry.stream._windows import CLIENT_RIGHTS, FILE_CREATE_PIPE_INSTANCE, pipe_sddl


def test_sddl_grants_system_admins_service_full_and_interactive_read_write_data() -> None:
    """Protected DACL: SY, BA and the service SID full; IU 0x12008b (read + write data)."""
    assert pipe_sddl("S-1-5-80-123") == "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;S-1-5-80-123)(A;;0x12008b;;;IU)"


def test_localsystem_is_not_listed_twice() -> None:
    """Running as LocalSystem gives the same DACL without a duplicate ACE."""
    assert pipe_sddl("S-1-5-18") == "D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x12008b;;;IU)"


def test_interactive_users_cannot_create_pipe_instances() -> None:
    """FILE_CREATE_PIPE_INSTANCE (squatting another instance) is not among their rights."""
    assert CLIENT_RIGHTS & FILE_CREATE_PIPE_INSTANCE == 0


@pytest.mark.parametrize("sid", ["", "S-1-5-18)(A;;GA;;;WD", "x;y"])
def test_a_malformed_sid_is_refused(sid: str) -> None:
    """A SID that could inject ACEs into the SDDL string is rejected."""
    with pytest.raises(ValueError, match="not a SID"):
        pipe_sddl(sid)
