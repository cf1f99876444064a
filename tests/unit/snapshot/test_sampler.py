"""The Sampler: RawSample pairs → schema-1 Snapshot and raw Counters."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.support.factories import GIB, MONOTONIC, WALL, cpu_times, raw_sample

from argus_telemetry.config.model import CollectConfig
from argus_telemetry.snapshot.model import Cpu, Disk, DiskRates, Memory, NetRates, Network, encode_snapshot
from argus_telemetry.snapshot.sampler import Sampler, is_loopback


def sampler(**collect: str) -> Sampler:
    return Sampler(hostname="client-42", collect=CollectConfig(**collect))


def test_interval_is_real_elapsed_and_rates_use_it_unrounded() -> None:
    """interval_seconds is the monotonic time between the two samples rounded to ms
    (2.0014 → 2.001); the rates divide by the unrounded 2.0014 s (20014 B → 10000 B/s)."""
    s = sampler()
    s.prime(raw_sample(monotonic=1000.0, disks={"vda": (0, 0)}))
    snapshot, _ = s.build(raw_sample(monotonic=1002.0014, disks={"vda": (20014, 40028)}), seq=7)
    assert snapshot.interval_seconds == 2.001
    assert snapshot.disk.devices == {"vda": DiskRates(read_bytes_per_second=10000.0, write_bytes_per_second=20000.0)}


def test_identity_fields() -> None:
    """schema is 1, seq is the one passed in, host the configured name, time the wall
    clock of the newer sample in UTC with microseconds."""
    s = sampler()
    s.prime(raw_sample())
    snapshot, _ = s.build(raw_sample(monotonic=MONOTONIC + 2.0, wall=WALL + 2.123456), seq=1234)
    assert (snapshot.schema, snapshot.seq, snapshot.host) == (1, 1234, "client-42")
    assert snapshot.time == "2026-12-04T16:00:02.123456Z"


def test_default_disk_exclusion_keeps_whole_disks_only() -> None:
    """The default [collect] disk_exclude drops partitions and virtual devices, so the
    totals count each byte once: only whole disks get rates and counters."""
    names = [
        "vda", "vda1", "sda", "sda2", "sdab", "sdab3", "xvdf", "xvdf1", "hdc", "hdc5", "nvme0n1", "nvme0n1p1",
        "mmcblk0", "mmcblk0p2", "loop3", "ram0", "zram0", "dm-0", "sr0", "fd0", "md0",
    ]  # fmt: skip
    s = sampler()
    s.prime(raw_sample(disks=dict.fromkeys(names, (0, 0))))
    snapshot, counters = s.build(raw_sample(monotonic=MONOTONIC + 2.0, disks=dict.fromkeys(names, (200, 400))), seq=1)
    kept = ["vda", "sda", "sdab", "xvdf", "hdc", "nvme0n1", "mmcblk0", "md0"]
    assert list(snapshot.disk.devices) == kept
    assert list(counters.disk) == kept
    assert snapshot.disk.read_bytes_per_second == 8 * 100.0
    assert snapshot.disk.write_bytes_per_second == 8 * 200.0


def test_custom_and_empty_disk_exclusion() -> None:
    """A custom regex leaves out what it matches; an empty one leaves out nothing."""
    disks = {"vda": (0, 0), "vda1": (0, 0), "loop0": (0, 0)}
    only_vda = sampler(disk_exclude="^vda$")
    everything = sampler(disk_exclude="")
    for s in (only_vda, everything):
        s.prime(raw_sample(disks=disks))
    later = raw_sample(monotonic=MONOTONIC + 2.0, disks=disks)
    assert list(only_vda.build(later, seq=1)[0].disk.devices) == ["vda1", "loop0"]
    assert list(everything.build(later, seq=1)[0].disk.devices) == ["vda", "vda1", "loop0"]


def test_interface_exclusion_removes_interfaces_entirely() -> None:
    """[collect] interface_exclude drops matching interfaces from the snapshot, the
    totals and the counters."""
    before = {"lo": (0, 0), "eth0": (0, 0), "veth12ab": (0, 0), "docker0": (0, 0)}
    after = {"lo": (0, 0), "eth0": (2000, 1000), "veth12ab": (999_000, 999_000), "docker0": (5000, 5000)}
    s = sampler(interface_exclude="^(veth|docker)")
    s.prime(raw_sample(network=before))
    snapshot, counters = s.build(raw_sample(monotonic=MONOTONIC + 2.0, network=after), seq=1)
    assert list(snapshot.network.interfaces) == ["lo", "eth0"]
    assert list(counters.network) == ["lo", "eth0"]
    assert snapshot.network.receive_bytes_per_second == 1000.0
    assert snapshot.network.transmit_bytes_per_second == 500.0


@pytest.mark.parametrize("loopback", ["lo", "lo0", "Loopback Pseudo-Interface 1"])
def test_loopback_listed_but_not_in_totals(loopback: str) -> None:
    """Loopback (Linux, macOS and Windows names) appears in `interfaces` with its rates,
    and the network totals are the sum of the other interfaces only."""
    s = sampler()
    s.prime(raw_sample(network={loopback: (0, 0), "eth0": (0, 0), "wlan0": (0, 0)}))
    later = {loopback: (10**6, 10**6), "eth0": (2400, 1600), "wlan0": (600, 400)}
    snapshot, counters = s.build(raw_sample(monotonic=MONOTONIC + 2.0, network=later), seq=1)
    assert snapshot.network == Network(
        receive_bytes_per_second=1500.0,
        transmit_bytes_per_second=1000.0,
        interfaces={
            loopback: NetRates(receive_bytes_per_second=500000.0, transmit_bytes_per_second=500000.0),
            "eth0": NetRates(receive_bytes_per_second=1200.0, transmit_bytes_per_second=800.0),
            "wlan0": NetRates(receive_bytes_per_second=300.0, transmit_bytes_per_second=200.0),
        },
    )
    assert counters.network[loopback] == (10**6, 10**6)


def test_is_loopback_by_name() -> None:
    """Only loopback names count as loopback (not "lowpan0", "eth0" or "Loopback2")."""
    assert [is_loopback(n) for n in ("lo", "lo0", "Loopback Pseudo-Interface 1")] == [True, True, True]
    assert [is_loopback(n) for n in ("lowpan0", "eth0", "Loopback2", "vlo")] == [False, False, False, False]


def test_only_loopback_with_a_rate_gives_no_totals() -> None:
    """When loopback is the only interface with a rate, the totals are omitted (not 0)."""
    s = sampler()
    s.prime(raw_sample(network={"lo": (0, 0)}))
    snapshot, _ = s.build(raw_sample(monotonic=MONOTONIC + 2.0, network={"lo": (10, 10), "eth0": (5, 5)}), seq=1)
    assert snapshot.network == Network(
        interfaces={"lo": NetRates(receive_bytes_per_second=5.0, transmit_bytes_per_second=5.0)}
    )
    assert b'"network":{"interfaces":{"lo":' in encode_snapshot(snapshot)


def test_hot_plugged_device_gets_no_rate_then_one() -> None:
    """A disk appearing between two samples is left out of `devices` (its counters are
    kept); from the next interval on it has rates like any other."""
    s = sampler()
    s.prime(raw_sample(disks={"vda": (0, 0)}))
    first, counters = s.build(raw_sample(monotonic=1002.0, disks={"vda": (2, 4), "sdb": (10**9, 10**9)}), seq=1)
    assert list(first.disk.devices) == ["vda"]
    assert (first.disk.read_bytes_per_second, first.disk.write_bytes_per_second) == (1.0, 2.0)
    assert counters.disk == {"vda": (2, 4), "sdb": (10**9, 10**9)}
    second, _ = s.build(raw_sample(monotonic=1004.0, disks={"vda": (2, 4), "sdb": (10**9 + 4096, 10**9)}), seq=2)
    assert second.disk.devices == {
        "vda": DiskRates(read_bytes_per_second=0.0, write_bytes_per_second=0.0),
        "sdb": DiskRates(read_bytes_per_second=2048.0, write_bytes_per_second=0.0),
    }
    assert second.disk.read_bytes_per_second == 2048.0


def test_counter_reset_omits_the_interface_for_one_interval() -> None:
    """An interface whose counter went backwards (driver reload, wrap) gets no rate and
    is not in the totals for that interval; the next interval measures from the new
    value."""
    s = sampler()
    s.prime(raw_sample(network={"eth0": (10_000, 10_000), "eth1": (0, 0)}))
    reset, _ = s.build(raw_sample(monotonic=1002.0, network={"eth0": (100, 50_000), "eth1": (200, 200)}), seq=1)
    assert list(reset.network.interfaces) == ["eth1"]
    assert reset.network.receive_bytes_per_second == 100.0
    after, _ = s.build(raw_sample(monotonic=1004.0, network={"eth0": (300, 50_400), "eth1": (200, 200)}), seq=2)
    assert after.network.interfaces["eth0"] == NetRates(receive_bytes_per_second=100.0, transmit_bytes_per_second=200.0)
    assert after.network.receive_bytes_per_second == 100.0


def test_every_device_without_a_rate_omits_totals() -> None:
    """When no disk has a rate (all new), `disk` has no totals and no devices."""
    s = sampler()
    s.prime(raw_sample(disks={}))
    snapshot, counters = s.build(raw_sample(monotonic=1002.0, disks={"vda": (1, 1)}), seq=1)
    assert snapshot.disk == Disk()
    assert b'"disk":{}' in encode_snapshot(snapshot)
    assert counters.disk == {"vda": (1, 1)}


def test_unreadable_disks_give_an_empty_disk_part() -> None:
    """Disks the platform cannot read (None, as under Wine) give an empty `disk` part and
    no disk counters; the rest of the snapshot is whole."""
    s = sampler()
    s.prime(raw_sample(no_disks=True))
    snapshot, counters = s.build(raw_sample(monotonic=1002.0, no_disks=True), seq=1)
    assert snapshot.disk == Disk()
    assert counters.disk == {}
    assert snapshot.memory.total_bytes == 16 * GIB


def test_never_primed_has_no_rates() -> None:
    """build() without prime(): interval 0.0, no CPU usage and no rates (never a guess)."""
    snapshot, counters = sampler().build(raw_sample(), seq=1)
    assert snapshot.interval_seconds == 0.0
    assert snapshot.cpu == Cpu()
    assert snapshot.disk == Disk()
    assert snapshot.network == Network()
    assert list(counters.disk) == ["vda"]


def test_cpu_total_and_per_core() -> None:
    """Per-core usage from each core's cpu_times, total from their per-mode sum:
    10 % and 15 % busy over 2 s each → 12.5 % overall (the contract's example)."""
    s = sampler()
    s.prime(raw_sample(cores=[cpu_times(user=100.0, idle=1000.0), cpu_times(user=200.0, idle=2000.0)]))
    later = [cpu_times(user=100.2, idle=1001.8), cpu_times(user=200.25, system=0.05, idle=2001.7)]
    snapshot, counters = s.build(raw_sample(monotonic=1002.0, cores=later), seq=1)
    assert snapshot.cpu == Cpu(usage_percent=12.5, cores=[10.0, 15.0])
    assert counters.cpu == later


def test_cpu_core_count_change_omits_cpu() -> None:
    """A CPU going offline shifts the per-core indices: usage is omitted for that
    interval rather than compared across different cores."""
    s = sampler()
    s.prime(raw_sample(cores=[cpu_times(idle=10.0), cpu_times(idle=10.0)]))
    snapshot, counters = s.build(raw_sample(monotonic=1002.0, cores=[cpu_times(user=1.0, idle=11.0)]), seq=1)
    assert snapshot.cpu == Cpu()
    assert len(counters.cpu) == 1


def test_memory_used_is_total_minus_available() -> None:
    """used_bytes = total − available; used_percent = 100 × used / total, one decimal."""
    s = sampler()
    s.prime(raw_sample())
    later = raw_sample(monotonic=1002.0, memory_total_bytes=25769803776, memory_available_bytes=21474836480)
    snapshot, _ = s.build(later, seq=1)
    assert snapshot.memory == Memory(
        total_bytes=25769803776, available_bytes=21474836480, used_bytes=4294967296, used_percent=16.7
    )


def test_build_keeps_the_new_sample_as_previous() -> None:
    """Each build measures from the sample of the previous build (not from the prime)."""
    s = sampler()
    s.prime(raw_sample(monotonic=1000.0, disks={"vda": (0, 0)}))
    s.build(raw_sample(monotonic=1002.0, disks={"vda": (1000, 0)}), seq=1)
    snapshot, _ = s.build(raw_sample(monotonic=1005.0, disks={"vda": (1300, 0)}), seq=2)
    assert snapshot.interval_seconds == 3.0
    assert snapshot.disk.devices["vda"].read_bytes_per_second == 100.0


def test_totals_equal_the_sum_of_listed_rounded_rates() -> None:
    """Totals add the rates as shown (one decimal), so they match the listed values."""
    s = sampler()
    s.prime(raw_sample(monotonic=1000.0, disks={"vda": (0, 0), "vdb": (0, 0), "vdc": (0, 0)}))
    later = raw_sample(monotonic=1003.0, disks={"vda": (1, 1), "vdb": (1, 2), "vdc": (1, 3)})
    snapshot, _ = s.build(later, seq=1)
    shown = msgspec.to_builtins(snapshot.disk)
    assert shown["devices"]["vda"] == {"read_bytes_per_second": 0.3, "write_bytes_per_second": 0.3}
    assert shown["read_bytes_per_second"] == 0.9
    assert shown["write_bytes_per_second"] == 2.0


counter_pairs = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
devices = st.dictionaries(st.sampled_from(["vda", "vdb", "sda", "sda1", "lo", "eth0"]), counter_pairs, max_size=6)


@given(st.lists(st.tuples(st.floats(0.0, 10.0), devices, devices), min_size=2, max_size=6))
def test_no_negative_rate_in_any_snapshot(steps: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> None:
    """Over any sequence of samples (devices appearing, vanishing, resetting, time not
    moving), every rate in every snapshot is ≥ 0, and every total is the sum of the
    listed values (interfaces: loopback left out)."""
    s = sampler()
    monotonic = MONOTONIC
    s.prime(raw_sample(monotonic=monotonic))
    for seq, (step, disks, network) in enumerate(steps, start=1):
        monotonic += step
        snapshot, _ = s.build(raw_sample(monotonic=monotonic, disks=disks, network=network), seq)
        shown = msgspec.to_builtins(snapshot)
        for part, members in (("disk", "devices"), ("network", "interfaces")):
            listed = shown[part].get(members, {})
            for rates_ in listed.values():
                assert all(v >= 0.0 for v in rates_.values())
            counted = [r for name, r in listed.items() if part == "disk" or not is_loopback(name)]
            for key, value in shown[part].items():
                if key != members:
                    assert value == round(sum(round(r[key], 1) for r in counted), 1)
            if not counted:
                assert set(shown[part]) <= {members}
