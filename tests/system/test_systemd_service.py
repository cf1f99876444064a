"""`argus service …` against a real systemd (PID 1 of its own namespaces, tests/support/systemd_box.py).

Each test boots a fresh box (~0.3 s) and runs the installer inside it as root, exactly
as an administrator would; the agent then runs under systemd with the real unit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from tests.support.loki_receiver import Fault, LokiReceiver
from tests.support.servers import Pushgateway
from tests.support.systemd_box import SystemdBox, missing_requirements

from argus_telemetry import __version__

pytestmark = pytest.mark.systemd

REPO = Path(__file__).resolve().parents[2]
UNIT = "argus-telemetry.service"
SOCKET = "/run/argus-telemetry/TelemetryPipe.sock"
FAST_CONFIG = """\
[agent]
interval = "200ms"
flush_interval = "1s"
flush_max_items = 5
data_dir = "/var/lib/argus-telemetry"

[stream]
path = "/run/argus-telemetry/TelemetryPipe.sock"
"""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[SystemdBox]:
    """A freshly booted systemd; a host that cannot boot one fails the test."""
    missing = missing_requirements()
    assert not missing, f"a real systemd needs: {', '.join(missing)}"
    sandbox = SystemdBox(tmp_path / "box")
    try:
        sandbox.boot()
        yield sandbox
    finally:
        sandbox.shutdown()


def argus(box: SystemdBox, *args: str, check: bool = True, pythonpath: str = "") -> tuple[int, str, str]:
    """`python -m argus_telemetry ARGS` inside the box, as root; (status, stdout, stderr)."""
    env = {"PYTHONPATH": pythonpath} if pythonpath else {}
    done = box.run(sys.executable, "-m", "argus_telemetry", *args, check=False, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"argus {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.returncode, done.stdout, done.stderr


def put(box: SystemdBox, path: str, text: str) -> str:
    """Write a file inside the box (through /proc/PID/root); return its path inside."""
    target = box.root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return path


def agent_status(box: SystemdBox) -> dict[str, object]:
    _, out, _ = argus(box, "status", "--socket", SOCKET, "--json")
    status: dict[str, object] = json.loads(out)
    return status


def spool_of(box: SystemdBox) -> dict[str, int]:
    spool = agent_status(box)["spool"]
    assert isinstance(spool, dict)
    return spool


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def proc_status(box: SystemdBox, pid: str) -> dict[str, str]:
    text = box.run("cat", f"/proc/{pid}/status").stdout
    return {key: value.strip() for key, sep, value in (line.partition(":") for line in text.splitlines()) if sep}


def stat_of(box: SystemdBox, *paths: str) -> list[str]:
    return box.run("stat", "-c", "%a %U %G %n", *paths).stdout.splitlines()


def build_newer(box: SystemdBox) -> str:
    """Copy the running source into the box as /srv/next with a bumped version; return it."""
    newer = f"{__version__}.post7"
    next_src = box.root / "srv/next"
    shutil.copytree(
        REPO / "src/argus_telemetry", next_src / "argus_telemetry", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = next_src / "argus_telemetry/__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{__version__}"', f'__version__ = "{newer}"'))
    return newer


def test_install_runs_the_agent_hardened(box: SystemdBox) -> None:
    """install → enabled and active, the agent runs as the unprivileged user with no
    capabilities, answers on its socket, owns its dirs with tight modes, and cannot
    write outside them; systemd-analyze verifies the installed unit and scores it."""
    code, out, _ = argus(box, "service", "install")
    assert code == 0
    main_pid = box.show(UNIT, "MainPID")["MainPID"]
    assert out.splitlines()[-1] == (f"{UNIT} is running: agent {__version__} answers on {SOCKET} (pid {main_pid})")
    assert box.run("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    assert box.show(UNIT, "ActiveState", "SubState") == {"ActiveState": "active", "SubState": "running"}
    uid = box.run("id", "-u", "argus-telemetry").stdout.strip()
    assert int(uid) != 0
    status = proc_status(box, main_pid)
    assert status["Uid"].split() == [uid] * 4
    assert status["NoNewPrivs"] == "1"
    assert status["CapEff"] == status["CapBnd"] == "0000000000000000"
    assert stat_of(
        box, "/var/lib/argus-telemetry", "/var/lib/argus-telemetry/Logs", "/run/argus-telemetry", SOCKET
    ) == [
        "700 argus-telemetry argus-telemetry /var/lib/argus-telemetry",
        "700 argus-telemetry argus-telemetry /var/lib/argus-telemetry/Logs",
        "750 argus-telemetry argus-telemetry /run/argus-telemetry",
        f"660 argus-telemetry argus-telemetry {SOCKET}",
    ]
    assert stat_of(box, "/etc/argus-telemetry/config.toml") == [
        "640 root argus-telemetry /etc/argus-telemetry/config.toml"
    ]
    assert agent_status(box)["version"] == __version__
    # Inside the service's own mount namespace, as its user: only its dirs are writable.
    probe = (
        "for p in /etc /usr /opt /var/tmp/../lib /var/lib/argus-telemetry /run/argus-telemetry; do "
        'if touch "$p/argus-probe" 2>/dev/null; then echo "$p writable"; else echo "$p denied"; fi; done; '
        "ls -A /root | wc -l"
    )
    done = box.run("nsenter", "-t", main_pid, "-m", "-S", uid, "-G", uid, "sh", "-c", probe)
    assert done.stdout.splitlines() == [
        "/etc denied",
        "/usr denied",
        "/opt denied",
        "/var/tmp/../lib denied",
        "/var/lib/argus-telemetry writable",
        "/run/argus-telemetry writable",
        "1",  # /root is an empty tmpfs but for the bound interpreter prefix (.pyenv)
    ]
    verify = box.run("systemd-analyze", "verify", f"/etc/systemd/system/{UNIT}", check=False)
    assert (verify.returncode, verify.stderr) == (0, "")
    security = box.run("systemd-analyze", "security", "--no-pager", UNIT, check=False).stdout
    match = re.search(r"Overall exposure level for argus-telemetry\.service: (\d+\.\d) (\w+)", security)
    assert match is not None and match.groups() == ("1.3", "OK"), security[-400:]


def test_kill_9_restarts_and_seq_continues(box: SystemdBox) -> None:
    """kill -9 of the agent → systemd restarts it; seq continues after the last stored
    one and the spool still holds every snapshot from seq 1 on."""
    put(box, "/srv/fast.toml", FAST_CONFIG)
    argus(box, "service", "install", "--config", "/srv/fast.toml")
    wait_for(lambda: (spool_of(box)["newest_seq"] or 0) >= 10, "10 snapshots")
    old_pid = box.show(UNIT, "MainPID")["MainPID"]
    before = spool_of(box)["newest_seq"]
    box.run("kill", "-9", old_pid)
    wait_for(
        lambda: box.show(UNIT, "NRestarts", "SubState") == {"NRestarts": "1", "SubState": "running"},
        "the restart",
    )
    assert box.show(UNIT, "MainPID")["MainPID"] != old_pid

    def grown() -> bool:
        try:
            return spool_of(box)["newest_seq"] > before + 5
        except AssertionError:  # the socket is not back yet
            return False

    wait_for(grown, "new snapshots after the restart")
    spool = spool_of(box)
    assert spool["oldest_seq"] == 1
    assert spool["snapshots"] == spool["newest_seq"]  # 1..newest, no hole


def test_upgrade_keeps_config_and_spool_downgrade_refused_same_is_noop(box: SystemdBox, tmp_path: Path) -> None:
    """0.x → bumped version upgrades in place (config and spool kept, seq continues);
    installing the older one again is refused with exit 2 and changes nothing; the same
    version again is a no-op that leaves the running agent alone."""
    put(box, "/srv/fast.toml", FAST_CONFIG)
    argus(box, "service", "install", "--config", "/srv/fast.toml")
    wait_for(lambda: (spool_of(box)["newest_seq"] or 0) >= 5, "5 snapshots")
    config_before = (box.root / "etc/argus-telemetry/config.toml").read_bytes()

    newer = build_newer(box)
    seq_before = spool_of(box)["newest_seq"]
    code, out, _ = argus(box, "service", "install", pythonpath="/srv/next")
    assert code == 0
    assert out.splitlines()[0] == f"upgrading {__version__} to {newer}: stopping the agent"
    assert agent_status(box)["version"] == newer
    assert json.loads((box.root / "opt/argus-telemetry/installed.json").read_text())["version"] == newer
    assert (box.root / "etc/argus-telemetry/config.toml").read_bytes() == config_before
    wait_for(lambda: spool_of(box)["newest_seq"] > seq_before, "snapshots after the upgrade")
    spool = spool_of(box)
    assert (spool["oldest_seq"], spool["snapshots"]) == (1, spool["newest_seq"])

    unit_before = (box.root / f"etc/systemd/system/{UNIT}").read_bytes()
    pid_before = box.show(UNIT, "MainPID")["MainPID"]
    code, out, err = argus(box, "service", "install", check=False)
    assert (code, out) == (2, "")
    assert err == (
        f"argus: version {newer} is installed and {__version__} is older: downgrades are refused "
        f"(uninstall {newer} first to go back to {__version__}); nothing was changed\n"
    )
    assert (box.root / f"etc/systemd/system/{UNIT}").read_bytes() == unit_before
    assert box.show(UNIT, "MainPID")["MainPID"] == pid_before
    assert agent_status(box)["version"] == newer

    code, out, _ = argus(box, "service", "install", pythonpath="/srv/next")
    assert code == 0
    assert out.splitlines()[0] == f"argus-telemetry {newer} is already installed and running; nothing changed"
    assert box.show(UNIT, "MainPID")["MainPID"] == pid_before


@pytest.fixture
def loki() -> Iterator[LokiReceiver]:
    """The test Loki on a host loopback port (the box shares the host's network)."""
    receiver = LokiReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


def test_upgrade_delivers_the_spooled_backlog_after_the_restart(box: SystemdBox, loki: LokiReceiver) -> None:
    """Loki answers 503 while the installed agent spools; an upgrade stops the old agent
    (its journal names the last seq it stored), starts the new one, and once Loki accepts,
    every seq from 1 to that last one arrives, in order, each once, delivered by the new
    agent (no push succeeded before the upgrade), followed by the new agent's own."""
    loki.inject(Fault("status", status=503, body="service unavailable", count=None))
    config = put(box, "/srv/loki.toml", FAST_CONFIG + f'\n[loki]\nurl = "{loki.url}"\ntenant = "t1"\n')
    argus(box, "service", "install", "--config", config)
    wait_for(lambda: (spool_of(box)["newest_seq"] or 0) >= 10, "10 snapshots")
    loki.wait_for(lambda r: len(r.requests) >= 2)
    newer = build_newer(box)
    code, out, _ = argus(box, "service", "install", pythonpath="/srv/next")
    assert code == 0
    assert out.splitlines()[0] == f"upgrading {__version__} to {newer}: stopping the agent"
    assert agent_status(box)["version"] == newer

    def journal() -> str:
        return box.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat").stdout

    def both_runs_logged() -> bool:
        text = journal()
        return " agent stopped seq=" in text and len(re.findall(r" agent started version=", text)) >= 2

    # journald reads the agents' stderr asynchronously: wait until both runs' lines are in
    wait_for(both_runs_logged, "the old agent's stop and the new one's start in the journal")
    text = journal()
    stopped = [int(seq) for seq in re.findall(r" agent stopped seq=(\d+)$", text, re.MULTILINE)]
    assert len(stopped) == 1, text[-2000:]
    last_old = stopped[0]
    assert last_old >= 10
    versions = re.findall(r" agent started version=(\S+) ", text)
    assert versions == [__version__, newer]
    assert loki.entries == []
    assert set(loki.statuses()) == {503}
    # the new agent continues the seq (its first snapshot may come after it answers)
    wait_for(lambda: spool_of(box)["newest_seq"] > last_old, "the new agent's first snapshot")
    spool = spool_of(box)
    assert (spool["oldest_seq"], spool["snapshots"]) == (1, spool["newest_seq"])

    loki.faults.clear()  # Loki accepts from now on
    loki.wait_for(lambda r: len(r.entries) > last_old + 5, timeout=60)
    delivered = loki.seqs()
    assert delivered[:last_old] == list(range(1, last_old + 1))
    assert delivered == list(range(1, len(delivered) + 1))
    assert loki.duplicates == 0  # a 503 stores nothing: no batch was in flight
    assert {entry.tenant for entry in loki.entries} == {"t1"}
    host = box.run("hostname").stdout.strip()
    assert {entry.labels["host"] for entry in loki.entries} == {host}


@pytest.fixture
def tls_pushgateway(tmp_path: Path) -> Iterator[tuple[Pushgateway, trustme.CA]]:
    """Debian's pushgateway serving TLS with a certificate from a throw-away CA."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    web = tmp_path / "web.yml"
    web.write_text(f"tls_server_config:\n  cert_file: {tmp_path / 'cert.pem'}\n  key_file: {tmp_path / 'key.pem'}\n")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    gateway = Pushgateway(tmp_path, web_config=web, ssl_context=context).start()
    try:
        yield gateway, ca
    finally:
        gateway.stop()


def test_ca_makes_tls_pushgateway_trusted_and_uninstall_cleans_up(
    box: SystemdBox, tls_pushgateway: tuple[Pushgateway, trustme.CA]
) -> None:
    """--ca-cert lets the agent push over TLS without ca_file; uninstall stops it,
    DELETEs its group from the Pushgateway and removes unit, program and CA, keeping
    config and data."""
    gateway, ca = tls_pushgateway
    ca_path = put(box, "/srv/test-ca.pem", ca.cert_pem.bytes().decode())
    config = put(box, "/srv/push.toml", FAST_CONFIG + f'\n[pushgateway]\nurl = "{gateway.url}"\njob = "argus"\n')
    host = box.run("hostname").stdout.strip()
    argus(box, "service", "install", "--config", config, "--ca-cert", ca_path)
    assert box.run("test", "-L", "/etc/ssl/certs/argus-telemetry-ca.pem", check=False).returncode == 0
    bundle = (box.root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert ca.cert_pem.bytes().decode().strip() in bundle
    wait_for(lambda: gateway.group("argus", host) is not None, "the agent's first push over TLS")

    code, out, _ = argus(box, "service", "uninstall")
    assert code == 0
    assert f"Pushgateway group deleted: {gateway.url}/metrics/job/argus/instance/{host}" in out.splitlines()
    assert gateway.group("argus", host) is None
    assert box.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip() in ("not-found", "")
    for gone in (
        f"/etc/systemd/system/{UNIT}",
        "/opt/argus-telemetry",
        "/etc/ssl/certs/argus-telemetry-ca.pem",
        "/usr/local/share/ca-certificates/argus-telemetry-ca.crt",
    ):
        assert box.run("test", "-e", gone, check=False).returncode == 1, gone
    assert box.run("test", "-L", "/etc/ssl/certs/argus-telemetry-ca.pem", check=False).returncode == 1
    bundle = (box.root / "etc/ssl/certs/ca-certificates.crt").read_text()
    assert ca.cert_pem.bytes().decode().strip() not in bundle
    assert box.run("test", "-f", "/etc/argus-telemetry/config.toml", check=False).returncode == 0
    assert box.run("test", "-d", "/var/lib/argus-telemetry/Logs", check=False).returncode == 0
    assert box.run("sh", "-c", "pgrep -u argus-telemetry || true").stdout == ""


def test_purge_removes_config_and_data(box: SystemdBox) -> None:
    """uninstall --purge leaves no unit, program, config, data or user behind."""
    argus(box, "service", "install")
    code, out, _ = argus(box, "service", "uninstall", "--purge")
    assert code == 0
    assert out.splitlines()[-1] == "argus-telemetry removed, with its config, data and user"
    for gone in (
        f"/etc/systemd/system/{UNIT}",
        "/opt/argus-telemetry",
        "/etc/argus-telemetry",
        "/var/lib/argus-telemetry",
        "/run/argus-telemetry",
    ):
        assert box.run("test", "-e", gone, check=False).returncode == 1, gone
    assert box.run("id", "argus-telemetry", check=False).returncode == 1


def test_failed_start_is_reported_with_the_journal(box: SystemdBox) -> None:
    """A config the service cannot read at run time (a CA file under /root, hidden by
    ProtectHome) makes the unit fail; install exits 1 and shows why from the journal."""
    ca = trustme.CA()
    put(box, "/root/private-ca.pem", ca.cert_pem.bytes().decode())
    config = put(
        box,
        "/srv/hidden.toml",
        FAST_CONFIG + '\n[pushgateway]\nurl = "https://localhost:1"\n'
        '[pushgateway.tls]\nca_file = "/root/private-ca.pem"\n',
    )
    code, out, err = argus(box, "service", "install", "--config", config, check=False)
    assert code == 1, out + err
    first = err.splitlines()[0]
    assert first.startswith(f"argus: {UNIT} failed to start (Result=exit-code, exit status 2)")
    assert "last lines of the journal (journalctl -u argus-telemetry.service):" in err
    assert '"/root/private-ca.pem" does not exist or is not a file' in err


def test_status_shows_unit_and_agent(box: SystemdBox) -> None:
    """service status prints the version, the unit's state and the agent's own status;
    stop makes status exit 3 with the agent unreachable."""
    argus(box, "service", "install")
    code, out, _ = argus(box, "service", "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"installed version: {__version__}"
    assert "ActiveState: active" in lines
    assert "SubState: running" in lines
    assert f'  "version": "{__version__}"' in lines
    argus(box, "service", "stop")
    code, out, _ = argus(box, "service", "status", check=False)
    assert code == 3
    assert "ActiveState: inactive" in out.splitlines()
    assert out.splitlines()[-1].startswith(f"agent status: unavailable (cannot reach the agent at {SOCKET}")
    argus(box, "service", "start")
    assert box.show(UNIT, "ActiveState")["ActiveState"] == "active"
    assert os.path.exists(f"/proc/{box.pid}")
