"""WindowsInstaller's logic on Linux: the SCM and the certificate store sit behind two
small interfaces; here they are an in-memory SCM state machine and store (the pywin32
implementations run under Wine in tests/wine)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PureWindowsPath

import pytest
import trustme

from argus_telemetry import __version__
from argus_telemetry.errors import ServiceError
from argus_telemetry.service.base import InstallOptions
from argus_telemetry.service.windows import ServiceSpec, WindowsInstaller, read_ca

PYTHON = PureWindowsPath(r"C:\Program Files\PSG\ArgusTelemetry\python\python.exe")


class MemoryScm:
    """Services by name; start/stop change state at once; every call is recorded."""

    def __init__(self) -> None:
        self.services: dict[str, ServiceSpec] = {}
        self.states: dict[str, str] = {}
        self.calls: list[str] = []

    def state(self, name: str) -> str | None:
        return self.states.get(name)

    def create(self, spec: ServiceSpec) -> None:
        self.calls.append("create")
        self.services[spec.name] = spec
        self.states[spec.name] = "STOPPED"

    def update(self, spec: ServiceSpec) -> None:
        self.calls.append("update")
        self.services[spec.name] = spec

    def delete(self, name: str) -> None:
        self.calls.append("delete")
        del self.services[name]
        del self.states[name]

    def start(self, name: str) -> None:
        self.calls.append("start")
        self.states[name] = "RUNNING"

    def stop(self, name: str) -> None:
        self.calls.append("stop")
        self.states[name] = "STOPPED"


class MemoryStore:
    def __init__(self) -> None:
        self.roots: dict[str, bytes] = {}

    def add_root(self, der: bytes) -> str:
        thumbprint = hashlib.sha1(der).hexdigest().upper()
        self.roots[thumbprint] = der
        return thumbprint

    def remove_root(self, thumbprint: str) -> bool:
        return self.roots.pop(thumbprint, None) is not None


def make(tmp_path: Path, scm: MemoryScm, store: MemoryStore, lines: list[str]) -> WindowsInstaller:
    return WindowsInstaller(lines.append, scm=scm, certs=store, program_dir=tmp_path / "prog", python=PYTHON)


@pytest.fixture
def ca_pem(tmp_path: Path) -> Path:
    path = tmp_path / "root.crt"
    path.write_bytes(trustme.CA().cert_pem.bytes())
    return path


def test_install_registers_the_contract_service_and_starts_it(tmp_path: Path) -> None:
    """A fresh install creates the service with the contract's names, auto start, own
    process, restart-on-failure, then starts it and records the version."""
    scm, store, lines = MemoryScm(), MemoryStore(), []
    make(tmp_path, scm, store, lines).install(InstallOptions())
    spec = scm.services["PSG - Argus Telemetry"]
    assert spec.display_name == "PSG - Argus Telemetry"
    assert spec.description == "Monitors and reports telemetry metrics from client systems"
    assert (spec.auto_start, spec.own_process) == (True, True)
    assert spec.restart_delays_ms == (5000, 5000, 60000)
    assert spec.failure_reset_seconds == 86400
    prog = tmp_path / "prog"
    assert spec.command_line == (
        f'"{PYTHON}" -B -m argus_telemetry.service.windows --config {PureWindowsPath(prog) / "config.toml"}'
        f" --data-dir {PureWindowsPath(prog)}"
    )
    assert scm.calls == ["create", "start"]
    assert scm.states["PSG - Argus Telemetry"] == "RUNNING"
    assert json.loads((prog / "installed.json").read_text()) == {"version": __version__, "ca_thumbprint": ""}
    assert (prog / "Logs").is_dir()
    assert lines[-1] == f"PSG - Argus Telemetry installed {__version__}"


def test_reinstall_stops_updates_and_restarts(tmp_path: Path) -> None:
    """Installing over a running service of the same version repairs it in place."""
    scm, store, lines = MemoryScm(), MemoryStore(), []
    installer = make(tmp_path, scm, store, lines)
    installer.install(InstallOptions())
    installer.install(InstallOptions())
    assert scm.calls == ["create", "start", "stop", "update", "start"]
    assert lines[-1] == f"PSG - Argus Telemetry repaired {__version__}"


def test_downgrade_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A newer recorded version refuses the install with exit 2; the SCM is not touched."""
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "installed.json").write_text('{"version": "99.0.0"}')
    scm, store, lines = MemoryScm(), MemoryStore(), []
    with pytest.raises(ServiceError) as caught:
        make(tmp_path, scm, store, lines).install(InstallOptions())
    assert caught.value.exit_code == 2
    assert "downgrades are refused" in str(caught.value)
    assert scm.calls == []


def test_ca_cert_added_on_install_and_removed_on_uninstall(tmp_path: Path, ca_pem: Path) -> None:
    """--ca-cert adds the root to LocalMachine\\Root; uninstall removes that same root."""
    scm, store, lines = MemoryScm(), MemoryStore(), []
    installer = make(tmp_path, scm, store, lines)
    installer.install(InstallOptions(ca_cert=ca_pem))
    der = read_ca(ca_pem)
    thumbprint = hashlib.sha1(der).hexdigest().upper()
    assert list(store.roots) == [thumbprint]
    assert f"root CA {thumbprint} added to LocalMachine\\Root" in lines
    installer.uninstall(purge=False)
    assert store.roots == {}
    assert scm.services == {}
    assert scm.calls[-2:] == ["stop", "delete"]


def test_uninstall_keeps_data_unless_purge(tmp_path: Path) -> None:
    """Without --purge the spool in Logs and config.toml stay; with it they go."""
    scm, store, lines = MemoryScm(), MemoryStore(), []
    installer = make(tmp_path, scm, store, lines)
    installer.install(InstallOptions())
    prog = tmp_path / "prog"
    (prog / "Logs" / "spool.db").write_bytes(b"x")
    (prog / "config.toml").write_text("")
    installer.uninstall(purge=False)
    assert sorted(p.name for p in prog.iterdir()) == ["Logs", "config.toml"]
    installer.install(InstallOptions())
    installer.uninstall(purge=True)
    assert sorted(p.name for p in prog.iterdir()) == []


def test_root_stages_the_registration_without_the_scm(tmp_path: Path, ca_pem: Path) -> None:
    """--root writes service.json with the registration the MSI also makes; no SCM calls."""
    scm, store, lines = MemoryScm(), MemoryStore(), []
    root = tmp_path / "stage"
    installer = WindowsInstaller(lines.append, root=root, scm=scm, certs=store, python=PYTHON)
    installer.install(InstallOptions(ca_cert=ca_pem))
    staged = json.loads((root / "service.json").read_text())
    assert staged["name"] == "PSG - Argus Telemetry"
    assert staged["command_line"] == (
        f'"{PYTHON}" -B -m argus_telemetry.service.windows'
        ' --config "C:\\Program Files\\PSG\\ArgusTelemetry\\config.toml"'
        ' --data-dir "C:\\Program Files\\PSG\\ArgusTelemetry"'
    )
    assert scm.calls == []
    assert store.roots == {}
    with pytest.raises(ServiceError) as caught:
        installer.start()
    assert str(caught.value) == "--root stages files only; `argus service start` needs the real SCM"


def test_wait_for_running_times_out_with_the_state(tmp_path: Path) -> None:
    """A service that never reaches RUNNING fails the install naming its state."""

    class StuckScm(MemoryScm):
        def start(self, name: str) -> None:
            self.states[name] = "START_PENDING"

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    installer = WindowsInstaller(
        [].append,
        scm=StuckScm(),
        certs=MemoryStore(),
        program_dir=tmp_path,
        python=PYTHON,
        clock=lambda: now[0],
        sleep=sleep,
    )
    with pytest.raises(ServiceError) as caught:
        installer.install(InstallOptions(wait_seconds=2.0))
    assert str(caught.value) == 'service "PSG - Argus Telemetry" is START_PENDING, not RUNNING, after 2 s'


def test_read_ca_rejects_two_certificates(tmp_path: Path) -> None:
    """A file with two PEM certificates is refused with exit 2, naming the file."""
    ca = trustme.CA()
    path = tmp_path / "two.crt"
    path.write_bytes(ca.cert_pem.bytes() + ca.cert_pem.bytes())
    with pytest.raises(ServiceError) as caught:
        read_ca(path)
    assert (str(caught.value), caught.value.exit_code) == (
        f"{path}: holds 2 certificates; give one root CA per file",
        2,
    )
