"""A real systemd as PID 1 of its own namespaces, on a throw-away overlay of `/`.

`SystemdBox.boot()` takes ~0.3 s: a cgroup2 group of our own, then `unshare` into new
pid/mount/cgroup/uts/ipc namespaces where a shell stage builds the root (overlay with a
tmpfs upper layer, fresh /proc, read-only /sys and /proc/sys, a fresh cgroup2, a small
/dev, a private /run), masks the units a container cannot run, `pivot_root`s and execs
/lib/systemd/systemd. Every write inside lands in RAM; the host's files, init, hostname
and /etc/passwd stay untouched. The network namespace is shared (ports are the host's).
Needs root with CAP_SYS_ADMIN and a cgroup2 hierarchy (see
/work/shared/notes/systemd-in-tests.md for the measurements behind each step).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CGROUP_PREFIX = "argus-systemd-box-"
BOOT_TIMEOUT_SECONDS = 60.0
SYSTEMD = Path("/lib/systemd/systemd")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Units that need hardware, the host's kernel settings or the network time: masked.
MASKED = (
    "systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket "
    "systemd-udev-trigger.service systemd-udev-settle.service modprobe@.service "
    "systemd-modules-load.service systemd-sysctl.service proc-sys-fs-binfmt_misc.automount "
    "systemd-binfmt.service systemd-sysusers.service systemd-random-seed.service "
    "systemd-remount-fs.service systemd-timesyncd.service systemd-pstore.service "
    "ldconfig.service getty@.service serial-getty@.service console-getty.service "
    "apt-daily.timer apt-daily-upgrade.timer man-db.timer fstrim.timer e2scrub_all.timer "
    "systemd-tmpfiles-clean.timer systemd-firstboot.service systemd-machine-id-commit.service "
    "sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount "
    "dev-hugepages.mount dev-mqueue.mount systemd-journald-audit.socket systemd-hwdb-update.service "
    "systemd-logind.service cron.service systemd-networkd.service systemd-resolved.service"
)

# PID 1 of the new namespaces: build the root, then become systemd. $1 = state dir.
STAGE = r"""
set -eu
S=$1
read -r HOSTPID _ < /proc/self/stat      # /proc is still the host's: our host PID
echo "$HOSTPID" > "$S/pid.tmp"
mount --make-rprivate /
M=$S/mnt
mount -t tmpfs -o mode=0755 tmpfs "$M"
mkdir -p "$M/upper" "$M/work" "$M/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$M/upper,workdir=$M/work" "$M/root"
R=$M/root
mount -t proc proc "$R/proc"
mount --bind "$R/proc/sys" "$R/proc/sys"
mount -o remount,bind,ro "$R/proc/sys"
mount --bind /sys "$R/sys"
mount -o remount,bind,ro "$R/sys"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
for d in null zero full random urandom tty; do touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"; done
mkdir "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$R/run"
mkdir -p "$R/run/systemd/system" "$R/run/tmpfiles.d"
cat > "$R/run/systemd/system/sandbox.target" <<'EOF'
[Unit]
Description=Test sandbox (minimal boot)
Requires=sysinit.target systemd-journald.service dbus.socket
After=sysinit.target systemd-journald.service dbus.socket
AllowIsolate=yes
EOF
for u in $MASKED; do ln -sf /dev/null "$R/run/systemd/system/$u"; done
# Boot must not empty /tmp (the overlay's view of the host /tmp holds test files).
echo 'd /tmp 1777 root root -' > "$R/run/tmpfiles.d/tmp.conf"
echo 'd /var/tmp 1777 root root -' > "$R/run/tmpfiles.d/var.conf"
hostname sbx
mkdir -p "$R/.oldroot"
cd "$R"
pivot_root . .oldroot
umount -l /.oldroot
exec env -i container=systemd-box PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=sandbox.target --log-target=journal-or-kmsg --show-status=no
"""


class BoxError(RuntimeError):
    """The box could not boot or a command inside it failed."""


def cgroup2_root() -> Path:
    """The host's cgroup2 mount: /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid)."""
    for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (candidate / "cgroup.procs").exists() and (candidate / "cgroup.subtree_control").exists():
            return candidate
    raise BoxError("no cgroup2 hierarchy on this host (needed to contain the box)")


def missing_requirements() -> list[str]:
    """What this host lacks to boot a box (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    if not SYSTEMD.exists():
        missing.append(f"{SYSTEMD} (Debian package systemd)")
    missing.extend(tool for tool in ("unshare", "nsenter", "systemctl") if shutil.which(tool) is None)
    return missing


class SystemdBox:
    """One booted systemd. `run()` executes a command inside, `root` is its `/` seen
    from the host (write there to put files in the box)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pid = 0
        self.boot_seconds = 0.0
        self._cgroup = cgroup2_root() / f"{CGROUP_PREFIX}{uuid.uuid4().hex[:12]}"
        self._launcher: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        return Path(f"/proc/{self.pid}/root")

    def boot(self) -> None:
        """Start systemd and wait until `systemctl is-system-running` says running/degraded."""
        started = time.monotonic()
        (self.state_dir / "mnt").mkdir(parents=True, exist_ok=True)
        self._cgroup.mkdir()
        log = (self.state_dir / "launcher.log").open("wb")
        # The launcher joins our cgroup first: everything the box ever runs stays in it.
        command = (
            f"echo $$ > {self._cgroup}/cgroup.procs && exec unshare --pid --mount --cgroup --uts --ipc "
            f'--fork --propagation private bash -c "$0" stage {self.state_dir}'
        )
        self._launcher = subprocess.Popen(
            ["bash", "-c", command, STAGE],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": PATH, "MASKED": MASKED},
        )
        log.close()
        pid_file = self.state_dir / "pid.tmp"
        self._wait(lambda: pid_file.exists() and pid_file.read_text().strip() != "", 30.0, "the box's PID 1")
        self.pid = int(pid_file.read_text().strip())

        def booted() -> bool:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            return state in ("running", "degraded")

        self._wait(booted, BOOT_TIMEOUT_SECONDS, "systemd to finish booting")
        self.boot_seconds = time.monotonic() - started

    def run(
        self, *command: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` inside the box (all its namespaces, its root) and capture the output."""
        environment = {"PATH": PATH, "LANG": "C.UTF-8", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        environment.update(env or {})
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "-i", "-C", "-r", "-w", *command],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise BoxError(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """`systemctl show -p ...` as a dict."""
        out = self.run("systemctl", "show", unit, "-p", ",".join(properties)).stdout
        return {key: value for key, sep, value in (line.partition("=") for line in out.splitlines()) if sep}

    def journal(self, unit: str, lines: int = 40) -> str:
        return self.run("journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat", check=False).stdout

    def shutdown(self) -> None:
        """Power the box off, kill leftovers, remove its cgroup. Safe to call twice."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGRTMIN + 4)  # systemd: poweroff (exits in a container)
        if self._launcher is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._launcher.wait(timeout=10.0)
        kill_cgroup(self._cgroup)
        if self._launcher is not None:
            self._launcher.wait(timeout=10.0)
            self._launcher = None
        self.pid = 0

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise BoxError(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.05)


def kill_cgroup(group: Path) -> None:
    """Kill every process in `group` and its children, then remove the tree."""
    if not group.exists():
        return
    kill = group / "cgroup.kill"
    if kill.exists():
        kill.write_text("1")
    else:
        for procs in group.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    for child in sorted((p for p in group.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        _rmdir(child, deadline)
    _rmdir(group, deadline)


def _rmdir(path: Path, deadline: float) -> None:
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY until the killed processes are gone
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def kill_leftovers() -> None:
    """Remove boxes a crashed test run left behind (their cgroups carry our prefix)."""
    for group in cgroup2_root().glob(f"{CGROUP_PREFIX}*"):
        kill_cgroup(group)
