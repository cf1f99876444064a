"""The Linux service: files under / (or `--root DIR`), systemctl calls, waiting for the agent.

Files it owns: /opt/argus-telemetry (venv + installed.json), the unit in
/etc/systemd/system, /usr/lib/sysusers.d/argus-telemetry.conf, the CA in
/usr/local/share/ca-certificates; it creates but never overwrites
/etc/argus-telemetry/config.toml, and creates /var/lib/argus-telemetry/Logs.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from argus_telemetry import __version__, paths
from argus_telemetry.errors import ArgusError, ServiceError
from argus_telemetry.service import program, trust, unit
from argus_telemetry.service.base import Action, InstallOptions, Say, ServiceStatus, decide

if TYPE_CHECKING:
    from argus_telemetry.config.model import Config

PROGRAM_DIR = Path("/opt/argus-telemetry")
UNIT_FILE = Path("/etc/systemd/system") / unit.UNIT_NAME
SYSUSERS_FILE = Path("/usr/lib/sysusers.d/argus-telemetry.conf")
JOURNAL_LINES = 20
SHOW = ("LoadState", "ActiveState", "SubState", "UnitFileState", "Result", "MainPID", "NRestarts", "ExecMainStatus")


class SystemdInstaller:
    """`argus service …` on Linux. With `root`, files are staged there and systemctl,
    user creation, chown and update-ca-certificates are skipped."""

    def __init__(self, say: Say, *, root: Path | None = None, version: str = __version__) -> None:
        self._say = say
        self._root = root
        self._version = version

    # -- paths ---------------------------------------------------------------------

    def _at(self, path: Path) -> Path:
        return self._root / path.relative_to("/") if self._root else path

    @property
    def _live(self) -> bool:
        return self._root is None

    # -- Installer -----------------------------------------------------------------

    def install(self, options: InstallOptions) -> None:
        """Check everything first (root, systemd, CA, config, version); then change."""
        self._preflight()
        pem = trust.validate_ca(options.ca_cert) if options.ca_cert else None
        given_config = _read_config(options.config_file) if options.config_file else None
        record = program.read_record(self._at(PROGRAM_DIR))
        action = decide(record["version"] if record else None, self._version)

        if action is Action.UPGRADE and self._live:
            self._say(f"upgrading {record['version'] if record else '?'} to {self._version}: stopping the agent")
            self._systemctl("stop", unit.UNIT_NAME)
        self._ensure_user()
        changed = self._place_program(action)
        changed |= self._write_if_changed(self._at(UNIT_FILE), self._render_unit(), 0o644)
        changed |= self._place_config(given_config)
        changed |= self._make_data_dirs()
        if pem is not None:
            trust.install_ca(self._root or Path("/"), pem, update=self._live)
            self._say(f"root CA installed: {self._at(trust.CA_DIR / trust.CA_NAME)}")
            changed = True
        if not self._live:
            self._say(f"staged argus-telemetry {self._version} under {self._root} (systemctl skipped)")
            return
        self._systemctl("daemon-reload")
        self._systemctl("enable", unit.UNIT_NAME)
        if action is Action.REPAIR and not changed and self._state()["ActiveState"] == "active":
            self._say(f"argus-telemetry {self._version} is already installed and running; nothing changed")
        elif action is Action.REPAIR and changed:
            self._say(f"argus-telemetry {self._version} repaired; restarting")
            self._systemctl("restart", unit.UNIT_NAME)
        else:
            self._systemctl("start", unit.UNIT_NAME)
        self._wait_until_answering(options.wait_seconds)

    def uninstall(self, *, purge: bool) -> None:
        self._preflight()
        if self._live:
            self._systemctl("disable", "--now", unit.UNIT_NAME, check=False)
            self._delete_pushgateway_group()
        for path in (self._at(UNIT_FILE), self._at(SYSUSERS_FILE)):
            path.unlink(missing_ok=True)
        if self._live:
            self._systemctl("daemon-reload")
            self._systemctl("reset-failed", unit.UNIT_NAME, check=False)
        shutil.rmtree(self._at(PROGRAM_DIR), ignore_errors=True)
        if trust.remove_ca(self._root or Path("/"), update=self._live):
            self._say("root CA removed from the trust store")
        if purge:
            shutil.rmtree(self._at(paths.SERVICE_CONFIG.parent), ignore_errors=True)
            shutil.rmtree(self._at(paths.SERVICE_DATA_DIR), ignore_errors=True)
            shutil.rmtree(self._at(Path("/var/lib/private") / unit.STATE_DIRECTORY), ignore_errors=True)
            if self._live and shutil.which("userdel"):
                subprocess.run(["userdel", unit.SERVICE_USER], capture_output=True, check=False)
            self._say("argus-telemetry removed, with its config, data and user")
        else:
            self._say(f"argus-telemetry removed; kept {paths.SERVICE_CONFIG} and {paths.SERVICE_DATA_DIR}")

    def start(self) -> None:
        self._require_live("start")
        self._preflight()
        self._systemctl("start", unit.UNIT_NAME)
        self._wait_until_answering(30.0)

    def stop(self) -> None:
        self._require_live("stop")
        self._preflight()
        self._systemctl("stop", unit.UNIT_NAME)
        self._say(f"{unit.UNIT_NAME} stopped")

    def status(self) -> ServiceStatus:
        record = program.read_record(self._at(PROGRAM_DIR))
        version = record["version"] if record else None
        if not self._live:
            return ServiceStatus(installed_version=version)
        self._check_systemd()
        state = self._state()
        try:
            agent = asyncio.run(_agent_status(str(paths.SERVICE_SOCKET)))
        except ArgusError as exc:
            return ServiceStatus(installed_version=version, state=state, agent_error=str(exc))
        return ServiceStatus(installed_version=version, state=state, agent=agent)

    # -- steps ---------------------------------------------------------------------

    def _preflight(self) -> None:
        if not self._live:
            return
        if os.geteuid() != 0:
            raise ServiceError("the service installer must run as root (try: sudo argus service ...)")
        self._check_systemd()

    def _check_systemd(self) -> None:
        # sd_booted(3): this directory exists only when systemd is the running init.
        if not Path("/run/systemd/system").is_dir():
            raise ServiceError(
                "systemd is not running on this machine (no /run/systemd/system); "
                "use --root DIR to stage the files instead"
            )

    def _require_live(self, action: str) -> None:
        if not self._live:
            raise ServiceError(f"--root only stages files; `{action}` needs the live system", exit_code=2)

    def _ensure_user(self) -> None:
        self._write_if_changed(self._at(SYSUSERS_FILE), unit.render_sysusers(), 0o644)
        if not self._live:
            return
        done = subprocess.run(["systemd-sysusers", str(SYSUSERS_FILE)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"cannot create the user {unit.SERVICE_USER}: {done.stderr.strip()}")

    def _place_program(self, action: Action) -> bool:
        program_dir = self._at(PROGRAM_DIR)
        if action is Action.REPAIR and program.venv_python(program_dir).exists():
            return False
        self._say(f"installing argus-telemetry {self._version} into {PROGRAM_DIR}/venv")
        program.build_program(program_dir, final_dir=PROGRAM_DIR, version=self._version)
        program.write_record(program_dir, self._version)
        return True

    def _render_unit(self) -> str:
        return unit.render_unit(
            python=program.venv_python(PROGRAM_DIR),
            config=paths.SERVICE_CONFIG,
            interpreter_prefix=program.base_prefix(),
        )

    def _place_config(self, given: str | None) -> bool:
        target = self._at(paths.SERVICE_CONFIG)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if given is None:
            if target.exists():
                return False
            text = unit.default_config()
        else:
            text = given
            if target.exists() and target.read_text(encoding="utf-8") != text:
                backup = target.with_name(target.name + ".bak")
                shutil.copy2(target, backup)
                self._say(f"previous config kept as {backup}")
        changed = self._write_if_changed(target, text, 0o640)
        if changed:
            self._say(f"config written: {paths.SERVICE_CONFIG}")
        if self._live:
            shutil.chown(target, "root", unit.SERVICE_USER)
        return changed

    def _make_data_dirs(self) -> bool:
        data = self._at(paths.SERVICE_DATA_DIR)
        logs = paths.spool_dir(data)
        created = not logs.is_dir()
        for directory in (data, logs):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.chmod(0o700)
            if self._live:
                shutil.chown(directory, unit.SERVICE_USER, unit.SERVICE_USER)
        return created

    def _write_if_changed(self, path: Path, text: str, mode: int) -> bool:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(mode)
        tmp.replace(path)
        return True

    # -- systemctl -----------------------------------------------------------------

    def _systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["systemctl", "--no-ask-password", *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            why = (done.stderr or done.stdout).strip()
            raise ServiceError(f"systemctl {' '.join(args)} failed: {why}{self._journal_tail()}")
        return done

    def _state(self) -> dict[str, str]:
        done = self._systemctl("show", unit.UNIT_NAME, "-p", ",".join(SHOW))
        pairs = (line.partition("=") for line in done.stdout.splitlines())
        return {key: value for key, sep, value in pairs if sep}

    def _journal_tail(self) -> str:
        # journald stores a service's output asynchronously: flush it first so the
        # failing agent's last lines are in the message, not still in flight.
        subprocess.run(["journalctl", "--sync"], capture_output=True, check=False, timeout=10)
        done = subprocess.run(
            ["journalctl", "-u", unit.UNIT_NAME, "-n", str(JOURNAL_LINES), "--no-pager", "-o", "cat"],
            capture_output=True,
            text=True,
            check=False,
        )
        lines = done.stdout.strip()
        return f"\nlast lines of the journal (journalctl -u {unit.UNIT_NAME}):\n{lines}" if lines else ""

    def _wait_until_answering(self, wait_seconds: float) -> None:
        """Wait for the agent's hello on its socket; ServiceError with the journal if the
        unit fails or stays silent past `wait_seconds`."""
        config = _read_config_or_none(paths.SERVICE_CONFIG)
        if config is not None and not config.stream.enabled:
            self._say(f"{unit.UNIT_NAME} started ([stream] is disabled: not waiting for an answer)")
            return
        socket_path = str(paths.SERVICE_SOCKET)
        deadline = time.monotonic() + wait_seconds
        reason = "not started"
        while True:
            state = self._state()
            if state.get("ActiveState") == "failed" or state.get("SubState") == "failed":
                raise ServiceError(
                    f"{unit.UNIT_NAME} failed to start (Result={state.get('Result')}, "
                    f"exit status {state.get('ExecMainStatus')}){self._journal_tail()}"
                )
            try:
                hello = asyncio.run(_hello(socket_path))
            except ArgusError as exc:
                reason = str(exc)
            else:
                self._say(
                    f"{unit.UNIT_NAME} is running: agent {hello.get('version')} answers on {socket_path} "
                    f"(pid {state.get('MainPID')})"
                )
                return
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{unit.UNIT_NAME} is {state.get('ActiveState')}/{state.get('SubState')} but the agent did "
                    f"not answer within {wait_seconds:g} s: {reason}{self._journal_tail()}"
                )
            time.sleep(0.2)

    def _delete_pushgateway_group(self) -> None:
        """DELETE the agent's group so no stale series remain (the Pushgateway never forgets)."""
        config = _read_config_or_none(paths.SERVICE_CONFIG)
        if config is None or not config.pushgateway.url:
            return
        import socket

        from argus_telemetry.export.http import build_client

        host = config.agent.hostname or socket.gethostname()
        url = f"{config.pushgateway.url.rstrip('/')}/metrics/job/{config.pushgateway.job}/instance/{host}"

        async def delete() -> int:
            async with build_client(
                "pushgateway",
                tls=config.pushgateway.tls,
                auth=config.pushgateway.auth,
                timeout_seconds=float(config.pushgateway.timeout),
                version=self._version,
                config_path=str(paths.SERVICE_CONFIG),
                url=url,
            ) as client:
                return (await client.delete(url)).status_code

        from argus_telemetry.export.http import redact_url

        try:
            status = asyncio.run(delete())
        except Exception as exc:  # the uninstall goes on; the user is told what is left
            self._say(f"warning: could not delete the Pushgateway group at {redact_url(url)}: {exc}")
            return
        if 200 <= status < 300:
            self._say(f"Pushgateway group deleted: {redact_url(url)}")
        else:
            self._say(f"warning: the Pushgateway answered HTTP {status} to DELETE {redact_url(url)}")


def _read_config(path: Path) -> str:
    """The text of a config given with --config, validated (ConfigError → exit 2), and
    checked against the paths the hardened service may write."""
    from argus_telemetry.config.load import load_config, parse_config

    config = load_config(path)
    data_dir = config.agent.data_dir
    if data_dir and Path(data_dir) != paths.SERVICE_DATA_DIR:
        raise ServiceError(
            f"{path}: [agent] data_dir: the service can only write to {paths.SERVICE_DATA_DIR}, not {data_dir}",
            exit_code=2,
        )
    stream_path = config.stream.path
    if stream_path and Path(stream_path).parent != paths.SERVICE_SOCKET.parent:
        raise ServiceError(
            f"{path}: [stream] path: the service's socket must be in {paths.SERVICE_SOCKET.parent}/, not {stream_path}",
            exit_code=2,
        )
    text = path.read_text(encoding="utf-8")
    parse_config(text, str(path))
    return text


def _read_config_or_none(path: Path) -> Config | None:
    """The service's config, or None when it is absent or invalid (the agent reports that)."""
    from argus_telemetry.config.load import load_config

    try:
        return load_config(path) if path.exists() else None
    except ArgusError:
        return None


async def _hello(socket_path: str) -> dict[str, object]:
    from argus_telemetry.stream.client import StreamClient

    client = await StreamClient.connect(socket_path, timeout=2.0)
    await client.close()
    return client.hello


async def _agent_status(socket_path: str) -> dict[str, object]:
    from argus_telemetry.stream.client import status

    return await status(socket_path, timeout=3.0)
