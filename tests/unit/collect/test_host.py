"""The psutil host collector on Linux: keys and types of a RawSample, and its counters
checked against the kernel's own files read just before and just after."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import pytest

from argus_telemetry.collect.base import DiskCounters, NetCounters, RawSample
from argus_telemetry.collect.host import HostCollector

# These checks read /proc: the project's CI and supported test platform is Linux (Windows
# parts are tested under Wine in tests/wine), so they run unconditionally.

LINUX_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"]
SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's sector size


def proc_stat_cores() -> list[list[float]]:
    """Per-core times (seconds) from /proc/stat, in LINUX_MODES order."""
    ticks = os.sysconf("SC_CLK_TCK")
    cores = []
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                cores.append([int(v) / ticks for v in values[: len(LINUX_MODES)]])
    return cores


def proc_diskstats() -> dict[str, tuple[int, int]]:
    """Device → (read, written) bytes from /proc/diskstats."""
    disks = {}
    with open("/proc/diskstats") as f:
        for line in f:
            fields = line.split()
            disks[fields[2]] = (int(fields[5]) * SECTOR_BYTES, int(fields[9]) * SECTOR_BYTES)
    return disks


def proc_net_dev() -> dict[str, tuple[int, int]]:
    """Interface → (received, transmitted) bytes from /proc/net/dev."""
    interfaces = {}
    with open("/proc/net/dev") as f:
        for line in f.readlines()[2:]:
            name, _, rest = line.partition(":")
            fields = rest.split()
            interfaces[name.strip()] = (int(fields[0]), int(fields[8]))
    return interfaces


def proc_mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def loopback_traffic(nbytes: int) -> None:
    """Send `nbytes` over a real TCP connection on 127.0.0.1 (counted on `lo`)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = bytearray()

        def drain() -> None:
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(65536):
                    received.extend(chunk)

        reader = threading.Thread(target=drain)
        reader.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(b"x" * nbytes)
        reader.join(timeout=30)
        assert len(received) == nbytes


def test_sample_keys_and_types() -> None:
    """A read gives every Linux CPU mode per core as floats ≥ 0, integer memory with
    available ≤ total = MemTotal, and integer counters for every disk and interface."""
    sample = HostCollector().read()
    assert isinstance(sample, RawSample)
    assert len(sample.cpu_cores) == len(proc_stat_cores())
    for core in sample.cpu_cores:
        assert list(core) == LINUX_MODES
        assert all(type(v) is float and v >= 0.0 for v in core.values())
    assert sample.memory_total_bytes == proc_mem_total()
    assert 0 < sample.memory_available_bytes <= sample.memory_total_bytes
    assert sample.disks is not None and sample.network is not None
    assert sorted(sample.disks) == sorted(proc_diskstats())
    assert sorted(sample.network) == sorted(proc_net_dev())
    for disk in sample.disks.values():
        assert isinstance(disk, DiskCounters)
        assert type(disk.read_bytes) is int and type(disk.written_bytes) is int
    for nic in sample.network.values():
        assert isinstance(nic, NetCounters)
        assert type(nic.receive_bytes) is int and type(nic.transmit_bytes) is int
    assert "lo" in sample.network


def test_counters_lie_between_two_kernel_reads() -> None:
    """Every counter of one read lies between /proc read just before and just after it;
    64 KiB of loopback traffic sent before and after the read makes `lo` strictly
    between (the read is live, not cached). Clocks are taken within the same bounds."""
    monotonic_before, wall_before = time.monotonic(), time.time()
    cores_before, disks_before, net_before = proc_stat_cores(), proc_diskstats(), proc_net_dev()
    loopback_traffic(65536)
    sample = HostCollector().read()
    loopback_traffic(65536)
    cores_after, disks_after, net_after = proc_stat_cores(), proc_diskstats(), proc_net_dev()
    monotonic_after, wall_after = time.monotonic(), time.time()

    assert monotonic_before <= sample.monotonic <= monotonic_after
    assert wall_before <= sample.wall <= wall_after
    for index, core in enumerate(sample.cpu_cores):
        for mode_index, mode in enumerate(LINUX_MODES):
            low, high = cores_before[index][mode_index], cores_after[index][mode_index]
            assert low - 1e-9 <= core[mode] <= high + 1e-9, (index, mode)
    assert sample.disks is not None and sample.network is not None
    for name, disk in sample.disks.items():
        assert disks_before[name][0] <= disk.read_bytes <= disks_after[name][0], name
        assert disks_before[name][1] <= disk.written_bytes <= disks_after[name][1], name
    for name, nic in sample.network.items():
        assert net_before[name][0] <= nic.receive_bytes <= net_after[name][0], name
        assert net_before[name][1] <= nic.transmit_bytes <= net_after[name][1], name
    lo = sample.network["lo"]
    assert net_before["lo"][0] + 65536 <= lo.receive_bytes <= net_after["lo"][0] - 65536
    assert net_before["lo"][1] + 65536 <= lo.transmit_bytes <= net_after["lo"][1] - 65536


def test_missing_counters_logged_once_then_recovery(caplog: pytest.LogCaptureFixture) -> None:
    """A kind of counter the platform cannot read (None, or an error such as psutil's on
    Wine) becomes None, with one warning per episode and one line when it comes back."""
    collector = HostCollector()
    answers: list[object] = [None, RuntimeError("no disk counters"), None, {"vda": DiskCounters(1, 2)}, None]

    def reader() -> dict[str, DiskCounters] | None:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    with caplog.at_level(logging.INFO, logger="argus_telemetry.collect.host"):
        results = [collector._optional("disks", reader) for _ in range(5)]
    assert results == [None, None, None, {"vda": DiskCounters(1, 2)}, None]
    events = [(r.levelname, r.getMessage(), getattr(r, "kind", None)) for r in caplog.records]
    assert events == [
        ("WARNING", "counters unavailable", "disks"),
        ("INFO", "counters available again", "disks"),
        ("WARNING", "counters unavailable", "disks"),
    ]
