"""End to end under Wine on a fresh prefix: install 1.0.0 → the service runs and streams on
\\\\.\\pipe\\TelemetryPipe to the agent's StreamClient run by Windows Python, whose handle has
exactly FILE_GENERIC_READ | FILE_WRITE_DATA; `net stop` ends the service process on its own;
the spool fills Logs; upgrade to 1.1.0 keeps the spool (seq continues) and leaves one
product; installing 1.0.0 again is refused; uninstall removes the service and the program
files but python.exe (Wine's timing, see below). What Wine cannot prove is listed in
docs/windows.md."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.wine.conftest import BuiltMsis
from tests.wine.wine import PROGRAM, WinePrefix

SERVICE = "PSG - Argus Telemetry"
UNINSTALL_KEY = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall"
SERVICE_KEY = r"HKLM\System\CurrentControlSet\Services\PSG - Argus Telemetry"
SERVICE_MODULE = "argus_telemetry.service.windows"  # in the service process's command line
STOP_EXIT_SECONDS = 10.0  # the SCM's wait hint for a stop (STOP_WAIT_HINT_MS)


def read_stream(prefix: WinePrefix, name: str, snapshots: int = 3) -> dict[str, object]:
    """Run tests/wine/pipe_client.py with the installed python.exe; its result file."""
    client = prefix.drive_c(r"C:\argus-test\pipe_client.py")
    client.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(__file__.replace("test_wine_e2e.py", "pipe_client.py"), client)
    status = prefix.python([r"C:\argus-test\pipe_client.py", rf"C:\argus-test\{name}.json", str(snapshots)], timeout=90)
    result: dict[str, object] = json.loads(prefix.drive_c(rf"C:\argus-test\{name}.json").read_text())
    assert status == 0, result
    return result


def uninstall_entries(prefix: WinePrefix) -> list[str]:
    return [
        line.split("REG_SZ", 1)[1].strip()
        for line in prefix.reg_query(UNINSTALL_KEY).splitlines()
        if line.strip().startswith("DisplayVersion")
    ]


@pytest.mark.wine
@pytest.mark.timeout(400)
def test_install_stream_upgrade_downgrade_uninstall(msis: BuiltMsis, wine_prefix: WinePrefix) -> None:
    """The whole life of the MSI under Wine's msiexec and SCM, with exact checks at each step."""
    prefix = wine_prefix
    program = prefix.drive_c(PROGRAM + "\\")

    # install 1.0.0; certutil is a stub under wine: check the command line it was given
    status, log, output = prefix.msiexec(
        "/i", "Z:" + str(msis.old).replace("/", "\\"), log_name="install.log", debug="trace+msi"
    )
    assert status == 0, log[-3000:]
    assert "InstallRootCert. Return value 1." in log
    assert "Property(S): CERTUTIL = C:\\windows\\system32\\certutil.exe" in log
    # wine's msi trace shows the resolved command; wine's certutil stub shows it was launched
    assert (
        'HANDLE_CustomType50 exe L"C:\\\\windows\\\\system32\\\\certutil.exe"'
        ' arg L"-f -addstore Root \\"C:\\\\Program Files\\\\PSG\\\\ArgusTelemetry\\\\r3.crt\\""'
    ) in output
    assert (
        'fixme:certutil:wmain stub: L"C:\\\\windows\\\\system32\\\\certutil.exe" L"-f" L"-addstore" L"Root"'
        ' L"C:\\\\Program Files\\\\PSG\\\\ArgusTelemetry\\\\r3.crt"'
    ) in output
    assert prefix.wait_for_state(SERVICE, "RUNNING") == "RUNNING"
    service = prefix.reg_query(SERVICE_KEY)
    assert "DisplayName    REG_SZ    PSG - Argus Telemetry" in service
    assert "Description    REG_SZ    Monitors and reports telemetry metrics from client systems" in service
    assert "Start    REG_DWORD    0x2" in service
    assert "Type    REG_DWORD    0x10" in service
    assert "ObjectName    REG_SZ    LocalSystem" in service
    assert sorted(p.name for p in program.iterdir()) == ["Logs", "argus.cmd", "python", "r3.crt"]

    first = read_stream(prefix, "first")
    hello = first["hello"]
    assert isinstance(hello, dict)
    assert (hello["type"], hello["protocol"]) == ("hello", 1)
    seqs = first["seqs"]
    assert isinstance(seqs, list)
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert (program / "Logs" / "spool.db").stat().st_size > 0
    # the client asked for exactly FILE_GENERIC_READ | FILE_WRITE_DATA (what IU is granted),
    # and with it could read the stream and send `status`
    assert first["access"] == 0x12008B
    types = first["types"]
    assert isinstance(types, list)
    assert types[-1] == "status"
    assert first["status_type"] == "dict"

    # a service stop ends the process promptly, on its own (no os._exit): the pipe
    # listener wakes and joins its worker threads, so the interpreter exits normally
    assert len(prefix.processes(SERVICE_MODULE)) == 1
    status, output = prefix.run(["net", "stop", SERVICE])
    assert status == 0, output
    assert prefix.service_state(SERVICE) == "STOPPED"
    left, waited = prefix.wait_for_no_process(SERVICE_MODULE, STOP_EXIT_SECONDS)
    assert left == [], f"the service process is still running {waited:.1f} s after net stop"
    status, output = prefix.run(["net", "start", SERVICE])
    assert status == 0, output
    assert prefix.wait_for_state(SERVICE, "RUNNING") == "RUNNING"

    # upgrade to 1.1.0: one product, still running, the spool kept (seq goes on from it)
    status, log, _ = prefix.msiexec("/i", "Z:" + str(msis.new).replace("/", "\\"), log_name="upgrade.log")
    assert status == 0, log[-3000:]
    assert prefix.wait_for_state(SERVICE, "RUNNING") == "RUNNING"
    assert uninstall_entries(prefix) == ["1.1.0"]
    after = read_stream(prefix, "after-upgrade")
    after_seqs = after["seqs"]
    assert isinstance(after_seqs, list)
    assert after_seqs[0] > seqs[-1]
    assert after_seqs == list(range(after_seqs[0], after_seqs[0] + 3))

    # downgrade refused with 1603 (seen as 1603 & 0xFF = 67), 1.1.0 untouched
    status, log, _ = prefix.msiexec("/i", "Z:" + str(msis.old).replace("/", "\\"), log_name="downgrade.log")
    assert status == 1603 & 0xFF
    assert "LaunchConditions. Return value 0." in log
    assert uninstall_entries(prefix) == ["1.1.0"]
    assert prefix.service_state(SERVICE) == "RUNNING"

    # uninstall: service gone, program files gone, the spool (data) kept in Logs
    status, log, output = prefix.msiexec(
        "/x", "Z:" + str(msis.new).replace("/", "\\"), log_name="uninstall.log", debug="trace+msi"
    )
    assert status == 0, log[-3000:]
    certutil = 'fixme:certutil:wmain stub: L"C:\\\\windows\\\\system32\\\\certutil.exe"'
    assert f'{certutil} L"-delstore" L"Root" L"{msis.ca_thumbprint}"' in output
    assert prefix.wait_for_state(SERVICE, None) is None
    assert uninstall_entries(prefix) == []
    left, waited = prefix.wait_for_no_process(SERVICE_MODULE, STOP_EXIT_SECONDS)
    assert left == [], f"the service process is still running {waited:.1f} s after uninstall"
    # Wine behaviour, not ours (docs/windows.md, "What Wine cannot prove"): Wine's
    # StopServices returns as soon as the service reports SERVICE_STOPPED, and RemoveFiles
    # follows about 70 ms later and deletes python.exe first. The process can only exit
    # after reporting SERVICE_STOPPED (else the SCM counts a crash and restarts it), and
    # interpreter shutdown takes 50-100 ms under Wine, so the exe is still mapped and Wine
    # refuses to delete it; msiexec does not retry. Measured with WINEDEBUG=+timestamp,
    # trace+msi and a /proc poll: the process vanished ~40 ms after RemoveFiles had run.
    # The old os._exit(0) lost the same race. On a machine where the process wins the
    # race python.exe goes too; either way every other program file is gone.
    names = sorted(p.relative_to(program).as_posix() for p in program.rglob("*"))
    leftovers = [name for name in names if name != "Logs" and not name.startswith("Logs/")]
    assert leftovers in ([], ["python", "python/python.exe"]), leftovers
    assert "spool.db" in {p.name for p in (program / "Logs").iterdir()}
