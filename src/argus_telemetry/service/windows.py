r"""The Windows service "PSG - Argus Telemetry": the SCM installer behind `argus service ...`
and the service process itself (`python -B -m argus_telemetry.service.windows ...`).

The MSI (packaging/windows/) registers the same service with the same command line; this
installer serves pip installs and repairs. Every SCM and certificate-store call sits behind
two small interfaces (`ServiceManager`, `CertStore`) with pywin32 implementations imported
only on Windows, so the installer's logic runs on Linux too. `--root DIR` stages files and
writes the registration it would make to `<DIR>\service.json` instead of calling the SCM.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, Protocol

from argus_telemetry import __version__, paths
from argus_telemetry.errors import ArgusError, ServiceError
from argus_telemetry.service._winsvc import (
    DESCRIPTION,
    DISPLAY_NAME,
    FAILURE_RESET_SECONDS,
    RESTART_DELAYS_MS,
    SERVICE_NAME,
    STOP_WAIT_HINT_MS,
    ServiceRunner,
    parse_service_args,
    service_command_line,
    service_config,
)
from argus_telemetry.service.base import Action, InstallOptions, Say, ServiceStatus, decide

log = logging.getLogger("argus_telemetry.service.windows")  # not __name__: it is "__main__" under -m

RECORD_NAME = "installed.json"
REGISTRATION_NAME = "service.json"  # --root only: what would have been registered
LOG_FILE = "service.log"
LOG_MAX_BYTES = 1 << 20
LOG_BACKUPS = 3


@dataclass(frozen=True)
class ServiceSpec:
    """A service registration: what CreateService/ChangeServiceConfig(2) are given."""

    name: str
    display_name: str
    description: str
    command_line: str
    auto_start: bool = True
    own_process: bool = True
    restart_delays_ms: tuple[int, ...] = RESTART_DELAYS_MS
    failure_reset_seconds: int = FAILURE_RESET_SECONDS


class ServiceManager(Protocol):
    """The SCM calls the installer needs."""

    def state(self, name: str) -> str | None:
        """ "RUNNING", "STOPPED", "START_PENDING"...; None when no such service exists."""
        ...

    def create(self, spec: ServiceSpec) -> None: ...

    def update(self, spec: ServiceSpec) -> None: ...

    def delete(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...


class CertStore(Protocol):
    """LocalMachine\\Root, by DER bytes and SHA-1 thumbprint (upper-case hex)."""

    def add_root(self, der: bytes) -> str: ...

    def remove_root(self, thumbprint: str) -> bool: ...


def read_ca(path: Path) -> bytes:
    """The DER bytes of one PEM or DER certificate file; ServiceError (exit 2) naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ServiceError(f"{path}: the CA certificate file does not exist", exit_code=2) from None
    except OSError as exc:
        raise ServiceError(f"{path}: cannot read the CA certificate ({exc.strerror})", exit_code=2) from None
    if b"-----BEGIN CERTIFICATE-----" in data:
        count = data.count(b"-----BEGIN CERTIFICATE-----")
        if count != 1:
            raise ServiceError(f"{path}: holds {count} certificates; give one root CA per file", exit_code=2)
        try:
            return ssl.PEM_cert_to_DER_cert(data.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise ServiceError(f"{path}: the PEM certificate is damaged", exit_code=2) from None
    if not data.startswith(b"\x30"):
        raise ServiceError(f"{path}: not a PEM or DER certificate", exit_code=2)
    return data


class WindowsInstaller:
    """`argus service install|uninstall|start|stop|status` through the SCM."""

    def __init__(
        self,
        say: Say,
        *,
        root: Path | None = None,
        scm: ServiceManager | None = None,
        certs: CertStore | None = None,
        program_dir: Path | None = None,
        python: PureWindowsPath | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._say = say
        self._root = root
        self._program_dir = program_dir or (root if root is not None else paths.WINDOWS_PROGRAM_DIR)
        self._python = python or PureWindowsPath(sys.executable)
        self._scm = scm
        self._certs = certs
        self._clock = clock
        self._sleep = sleep

    # -- Installer protocol ----------------------------------------------------------

    def install(self, options: InstallOptions) -> None:
        record = self._read_record()
        action = decide(record.get("version") if record else None, __version__)
        spec = self.spec()
        self._program_dir.mkdir(parents=True, exist_ok=True)
        (self._program_dir / "Logs").mkdir(exist_ok=True)
        if options.config_file is not None:
            self._place_config(options.config_file)
        thumbprint = record.get("ca_thumbprint", "") if record else ""
        if options.ca_cert is not None:
            der = read_ca(options.ca_cert)
            thumbprint = self._cert_store().add_root(der) if self._root is None else _sha1(der)
            self._say(f"root CA {thumbprint} added to LocalMachine\\Root")
        if self._root is not None:
            registration = self._program_dir / REGISTRATION_NAME
            registration.write_text(json.dumps(asdict(spec), indent=2) + "\n", encoding="utf-8")
            self._say(f"staged under {self._root}; service registration written to {registration}")
        else:
            scm = self._service_manager()
            if scm.state(spec.name) is None:
                scm.create(spec)
            else:
                if scm.state(spec.name) != "STOPPED":
                    scm.stop(spec.name)
                    self._wait_for(spec.name, "STOPPED", options.wait_seconds)
                scm.update(spec)
            scm.start(spec.name)
            self._wait_for(spec.name, "RUNNING", options.wait_seconds)
        self._write_record(thumbprint)
        verb = {Action.FRESH: "installed", Action.REPAIR: "repaired", Action.UPGRADE: "upgraded to"}[action]
        self._say(f"{SERVICE_NAME} {verb} {__version__}")

    def uninstall(self, *, purge: bool) -> None:
        record = self._read_record()
        if self._root is None:
            scm = self._service_manager()
            state = scm.state(SERVICE_NAME)
            if state is not None:
                if state != "STOPPED":
                    scm.stop(SERVICE_NAME)
                    self._wait_for(SERVICE_NAME, "STOPPED", 30.0)
                scm.delete(SERVICE_NAME)
            thumbprint = record.get("ca_thumbprint", "") if record else ""
            if thumbprint and self._cert_store().remove_root(thumbprint):
                self._say(f"root CA {thumbprint} removed from LocalMachine\\Root")
        for name in (RECORD_NAME, REGISTRATION_NAME):
            (self._program_dir / name).unlink(missing_ok=True)
        if purge:
            import shutil

            (self._program_dir / "config.toml").unlink(missing_ok=True)
            shutil.rmtree(self._program_dir / "Logs", ignore_errors=True)
        self._say(f"{SERVICE_NAME} removed" + (" with its config and data" if purge else ""))

    def start(self) -> None:
        self._require_live("start")
        self._service_manager().start(SERVICE_NAME)
        self._wait_for(SERVICE_NAME, "RUNNING", 30.0)

    def stop(self) -> None:
        self._require_live("stop")
        self._service_manager().stop(SERVICE_NAME)
        self._wait_for(SERVICE_NAME, "STOPPED", 30.0)

    def status(self) -> ServiceStatus:
        record = self._read_record()
        version = record.get("version") if record else None
        if self._root is not None:
            return ServiceStatus(installed_version=version, state={"staged": str(self._root)})
        state = self._service_manager().state(SERVICE_NAME)
        agent: dict[str, object] | None = None
        error = ""
        if state == "RUNNING":
            agent, error = _agent_status()
        return ServiceStatus(
            installed_version=version, state={"State": state or "not installed"}, agent=agent, agent_error=error
        )

    # -- parts -----------------------------------------------------------------------

    def spec(self) -> ServiceSpec:
        """The registration this installer makes (the MSI makes the same one)."""
        program = PureWindowsPath(str(self._program_dir)) if self._root is None else paths.WINDOWS_PROGRAM_DIR
        command = service_command_line(self._python, PureWindowsPath(program) / "config.toml", PureWindowsPath(program))
        return ServiceSpec(name=SERVICE_NAME, display_name=DISPLAY_NAME, description=DESCRIPTION, command_line=command)

    def _place_config(self, given: Path) -> None:
        from argus_telemetry.config.load import load_config

        load_config(given)  # refuse a bad config before touching anything
        target = self._program_dir / "config.toml"
        target.write_bytes(given.read_bytes())
        self._say(f"config {given} installed as {target}")

    def _wait_for(self, name: str, wanted: str, seconds: float) -> None:
        deadline = self._clock() + seconds
        state = self._service_manager().state(name)
        while state != wanted:
            if self._clock() >= deadline:
                raise ServiceError(f'service "{name}" is {state or "gone"}, not {wanted}, after {seconds:g} s')
            self._sleep(0.25)
            state = self._service_manager().state(name)

    def _require_live(self, action: str) -> None:
        if self._root is not None:
            raise ServiceError(f"--root stages files only; `argus service {action}` needs the real SCM", exit_code=2)

    def _service_manager(self) -> ServiceManager:
        if self._scm is None:
            self._scm = Win32ServiceManager()
        return self._scm

    def _cert_store(self) -> CertStore:
        if self._certs is None:
            self._certs = Win32CertStore()
        return self._certs

    def _read_record(self) -> dict[str, str] | None:
        # The same record file and rules as the systemd installer's; imported here so the
        # service process itself never loads the venv builder.
        from argus_telemetry.service.program import read_record

        return read_record(self._program_dir)

    def _write_record(self, thumbprint: str) -> None:
        record = {"version": __version__, "ca_thumbprint": thumbprint}
        path = self._program_dir / RECORD_NAME
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _sha1(der: bytes) -> str:
    import hashlib

    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


def _agent_status() -> tuple[dict[str, object] | None, str]:
    import asyncio

    from argus_telemetry.stream.client import status

    try:
        return asyncio.run(status(paths.WINDOWS_PIPE, timeout=3.0)), ""
    except ArgusError as exc:
        return None, str(exc)


# -- pywin32 implementations (Windows only) -------------------------------------------

_STATES = {
    1: "STOPPED",
    2: "START_PENDING",
    3: "STOP_PENDING",
    4: "RUNNING",
    5: "CONTINUE_PENDING",
    6: "PAUSE_PENDING",
    7: "PAUSED",
}
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062
SC_ACTION_RESTART = 1


class Win32ServiceManager:  # pragma: no cover - runs on Windows and under Wine (tests/wine)
    """ServiceManager through win32service."""

    def state(self, name: str) -> str | None:
        import pywintypes
        import win32service

        try:
            handle = self._open(name, win32service.SERVICE_QUERY_STATUS)
        except pywintypes.error as exc:
            if exc.winerror == ERROR_SERVICE_DOES_NOT_EXIST:
                return None
            raise ServiceError(f'cannot query service "{name}": {exc.strerror}') from None
        try:
            status = win32service.QueryServiceStatus(handle)
        finally:
            win32service.CloseServiceHandle(handle)
        return _STATES.get(status[1], str(status[1]))

    def create(self, spec: ServiceSpec) -> None:
        import win32service

        scm = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_ALL_ACCESS)
        try:
            handle = win32service.CreateService(
                scm,
                spec.name,
                spec.display_name,
                win32service.SERVICE_ALL_ACCESS,
                win32service.SERVICE_WIN32_OWN_PROCESS,
                win32service.SERVICE_AUTO_START if spec.auto_start else win32service.SERVICE_DEMAND_START,
                win32service.SERVICE_ERROR_NORMAL,
                spec.command_line,
                None,
                0,
                None,
                None,  # LocalSystem
                None,
            )
        finally:
            win32service.CloseServiceHandle(scm)
        try:
            self._configure(handle, spec)
        finally:
            win32service.CloseServiceHandle(handle)

    def update(self, spec: ServiceSpec) -> None:
        import win32service

        handle = self._open(spec.name, win32service.SERVICE_ALL_ACCESS)
        try:
            unchanged = win32service.SERVICE_NO_CHANGE
            win32service.ChangeServiceConfig(
                handle,
                win32service.SERVICE_WIN32_OWN_PROCESS,
                win32service.SERVICE_AUTO_START if spec.auto_start else win32service.SERVICE_DEMAND_START,
                unchanged,
                spec.command_line,
                None,
                0,
                None,
                None,
                None,
                spec.display_name,
            )
            self._configure(handle, spec)
        finally:
            win32service.CloseServiceHandle(handle)

    def delete(self, name: str) -> None:
        import win32service

        handle = self._open(name, win32service.SERVICE_ALL_ACCESS)
        try:
            win32service.DeleteService(handle)
        finally:
            win32service.CloseServiceHandle(handle)

    def start(self, name: str) -> None:
        import win32service

        handle = self._open(name, win32service.SERVICE_START)
        try:
            win32service.StartService(handle, None)
        finally:
            win32service.CloseServiceHandle(handle)

    def stop(self, name: str) -> None:
        import pywintypes
        import win32service

        handle = self._open(name, win32service.SERVICE_STOP)
        try:
            win32service.ControlService(handle, win32service.SERVICE_CONTROL_STOP)
        except pywintypes.error as exc:
            if exc.winerror != ERROR_SERVICE_NOT_ACTIVE:
                raise ServiceError(f'cannot stop service "{name}": {exc.strerror}') from None
        finally:
            win32service.CloseServiceHandle(handle)

    @staticmethod
    def _open(name: str, access: int) -> object:
        import win32service

        scm = win32service.OpenSCManager(None, None, win32service.SC_MANAGER_CONNECT)
        try:
            return win32service.OpenService(scm, name, access)
        finally:
            win32service.CloseServiceHandle(scm)

    @staticmethod
    def _configure(handle: object, spec: ServiceSpec) -> None:
        import win32service

        win32service.ChangeServiceConfig2(handle, win32service.SERVICE_CONFIG_DESCRIPTION, spec.description)
        win32service.ChangeServiceConfig2(
            handle,
            win32service.SERVICE_CONFIG_FAILURE_ACTIONS,
            {
                "ResetPeriod": spec.failure_reset_seconds,
                "RebootMsg": None,
                "Command": None,
                "Actions": [(SC_ACTION_RESTART, delay) for delay in spec.restart_delays_ms],
            },
        )


class Win32CertStore:  # pragma: no cover - runs on Windows and under Wine (tests/wine)
    """LocalMachine\\Root through CryptoAPI (win32crypt); under Wine this really writes
    HKLM\\Software\\Microsoft\\SystemCertificates\\Root\\Certificates\\<SHA1>."""

    def add_root(self, der: bytes) -> str:
        win32crypt = _win32crypt()
        store = self._open()
        try:
            context = store.CertAddEncodedCertificateToStore(
                win32crypt.X509_ASN_ENCODING, der, win32crypt.CERT_STORE_ADD_REPLACE_EXISTING
            )
            context.CertFreeCertificateContext()
        finally:
            store.CertCloseStore()
        return _sha1(der)

    def remove_root(self, thumbprint: str) -> bool:
        store = self._open()
        try:
            for context in store.CertEnumCertificatesInStore():
                if _sha1(bytes(context.CertEncoded)) == thumbprint.upper():
                    context.CertDeleteCertificateFromStore()
                    return True
            return False
        finally:
            store.CertCloseStore()

    @staticmethod
    def _open() -> Any:  # a PyCERTSTORE (pywin32 has no stubs)
        win32crypt = _win32crypt()
        return win32crypt.CertOpenStore(
            win32crypt.CERT_STORE_PROV_SYSTEM, 0, None, win32crypt.CERT_SYSTEM_STORE_LOCAL_MACHINE, "Root"
        )


def _win32crypt() -> Any:  # pragma: no cover - Windows only
    """The win32crypt module (one import site: pywin32 has no stubs)."""
    import win32crypt

    return win32crypt


# -- the service process -----------------------------------------------------------------


def _log_to_file(data_dir: Path) -> None:
    """The service has no console: events go to `<data_dir>\\Logs\\service.log` (rotated)."""
    from argus_telemetry.logs import EventFormatter

    folder = paths.spool_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        folder / LOG_FILE, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
    )
    handler.setFormatter(EventFormatter())
    root = logging.getLogger("argus_telemetry")
    root.handlers[:] = [handler]
    root.setLevel(os.environ.get("ARGUS_LOG_LEVEL", "INFO").upper())
    root.propagate = False


def _service_class(runner: ServiceRunner) -> type:  # pragma: no cover - Windows only
    import win32service
    import win32serviceutil

    class ArgusService(win32serviceutil.ServiceFramework):  # type: ignore[misc]  # pywin32 has no stubs
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def SvcStop(self) -> None:  # pywin32's method name
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING, waitHint=STOP_WAIT_HINT_MS)
            log.info("service stop requested")
            runner.request_stop()

        def SvcDoRun(self) -> None:  # pywin32's method name
            try:
                runner.run()
            except BaseException:
                log.exception("service failed")
                logging.shutdown()
                # Die without reporting SERVICE_STOPPED: the SCM counts a crash and
                # applies the recovery actions (restart).
                os._exit(1)

    return ArgusService


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - Windows only
    """The service process: parse the arguments the SCM passes, then hand the process to
    the service control dispatcher until the service stops."""
    import servicemanager

    from argus_telemetry.agent import Agent
    from argus_telemetry.config.load import load_config

    for stream in ("stdout", "stderr"):  # no console under the SCM: never crash on a stray print
        if getattr(sys, stream) is None:
            setattr(sys, stream, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 (lives as long as the process)
    args = parse_service_args(sys.argv[1:] if argv is None else argv)
    config, config_path = service_config(args, load_config)
    _log_to_file(Path(config.agent.data_dir) if config.agent.data_dir else paths.default_data_dir())
    log.info("service starting", extra={"version": __version__, "exe": sys.executable, "config": config_path})

    async def run_agent(stop: object) -> None:
        import asyncio

        assert isinstance(stop, asyncio.Event)
        await Agent(config, config_path=config_path).run(stop)

    runner = ServiceRunner(run_agent)
    servicemanager.Initialize()
    servicemanager.PrepareToHostSingle(_service_class(runner))
    servicemanager.StartServiceCtrlDispatcher()
    # The agent has flushed and closed the spool, and the pipe listener has woken and
    # joined its worker threads, so the interpreter exits normally (tests/wine checks it).
    log.info("service process exiting")
    return 0


if __name__ == "__main__":  # pragma: no cover - Windows only
    sys.exit(main())
