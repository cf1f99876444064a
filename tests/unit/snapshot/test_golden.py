"""Schema 1 on the wire: a snapshot built from a fixed RawSample pair is byte-for-byte
the golden file, and the golden file has the contract's shape (keys, order, types)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.factories import WALL, cpu_times, raw_sample

from argus_telemetry.config.model import CollectConfig
from argus_telemetry.snapshot.model import decode_snapshot, encode_snapshot
from argus_telemetry.snapshot.sampler import Sampler

GOLDEN = Path(__file__).with_name("golden_snapshot.json")

# The contract's schema 1 (CONTRACT.md, "Snapshot"): key → type, nested parts as dicts,
# per-device/per-interface maps as ("map", shape). Order is the order on the wire.
RATES_DISK = {"read_bytes_per_second": float, "write_bytes_per_second": float}
RATES_NET = {"receive_bytes_per_second": float, "transmit_bytes_per_second": float}
CONTRACT_SHAPE: dict[str, Any] = {
    "schema": int,
    "seq": int,
    "time": str,
    "host": str,
    "interval_seconds": float,
    "cpu": {"usage_percent": float, "cores": [float]},
    "memory": {"total_bytes": int, "available_bytes": int, "used_bytes": int, "used_percent": float},
    "disk": {**RATES_DISK, "devices": ("map", RATES_DISK)},
    "network": {**RATES_NET, "interfaces": ("map", RATES_NET)},
}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def golden_pair() -> tuple[Sampler, bytes]:
    """The fixed input: two cores (10 % and 15 % busy), the contract's memory figures,
    whole disks beside a partition and a loop device, a disk hot-plugged in between,
    loopback, eth0, and wlan0 whose counter was reset."""
    sampler = Sampler(hostname="client-42", collect=CollectConfig())
    sampler.prime(
        raw_sample(
            monotonic=5000.0,
            wall=WALL,
            cores=[cpu_times(user=100.0, idle=1000.0), cpu_times(user=200.0, idle=2000.0)],
            disks={"vda": (1_000_000, 5_000_000), "vda1": (1_000_000, 5_000_000), "loop0": (0, 0), "nvme0n1": (0, 0)},
            network={"lo": (500, 500), "eth0": (10_000, 20_000), "wlan0": (90_000, 90_000)},
        )
    )
    raw = raw_sample(
        monotonic=5002.001,
        wall=WALL + 2.123456,
        cores=[cpu_times(user=100.2, idle=1001.8), cpu_times(user=200.25, system=0.05, idle=2001.7)],
        memory_total_bytes=25769803776,
        memory_available_bytes=21474836480,
        disks={
            "vda": (1_000_000, 5_081_960),
            "vda1": (1_000_000, 5_081_960),
            "loop0": (0, 0),
            "nvme0n1": (4096, 0),
            "sdb": (10**9, 0),
        },
        network={"lo": (700, 700), "eth0": (12_401, 21_600), "wlan0": (10, 10)},
    )
    snapshot, _ = sampler.build(raw, seq=1234)
    return sampler, encode_snapshot(snapshot)


def test_snapshot_matches_golden_bytes() -> None:
    """The encoded snapshot is exactly the golden file (key order, number formatting,
    omitted rates): any change to schema 1 on the wire shows up here."""
    _, encoded = golden_pair()
    assert encoded + b"\n" == GOLDEN.read_bytes()


def test_golden_values() -> None:
    """The golden file holds the hand-computed values: rates over 2.001 s, hot-plugged
    sdb and reset wlan0 left out, loopback out of the totals."""
    snapshot = decode_snapshot(GOLDEN.read_bytes())
    assert snapshot.interval_seconds == 2.001
    assert snapshot.cpu.usage_percent == 12.5
    assert snapshot.cpu.cores == [10.0, 15.0]
    assert snapshot.memory.used_percent == 16.7
    assert list(snapshot.disk.devices) == ["vda", "nvme0n1"]
    assert snapshot.disk.devices["vda"].write_bytes_per_second == round(81960 / 2.001, 1) == 40959.5
    assert snapshot.disk.devices["nvme0n1"].read_bytes_per_second == round(4096 / 2.001, 1) == 2047.0
    assert list(snapshot.network.interfaces) == ["lo", "eth0"]
    assert snapshot.network.receive_bytes_per_second == round(2401 / 2.001, 1) == 1199.9
    assert snapshot.network.transmit_bytes_per_second == round(1600 / 2.001, 1) == 799.6


def check_shape(value: object, shape: object, where: str) -> None:
    """Assert `value` has `shape` (see CONTRACT_SHAPE); dict keys in the same order."""
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: expected an object, got {value!r}"
        assert list(value) == list(shape), f"{where}: keys {list(value)} != {list(shape)}"
        for key, sub in shape.items():
            check_shape(value[key], sub, f"{where}.{key}")
    elif isinstance(shape, tuple):
        assert isinstance(value, dict) and value, f"{where}: expected a non-empty map, got {value!r}"
        for key, sub in value.items():
            assert isinstance(key, str)
            check_shape(sub, shape[1], f"{where}[{key}]")
    elif isinstance(shape, list):
        assert isinstance(value, list) and value, f"{where}: expected a non-empty list, got {value!r}"
        for index, item in enumerate(value):
            check_shape(item, shape[0], f"{where}[{index}]")
    else:
        assert type(value) is shape, f"{where}: {value!r} is not {shape}"
        if isinstance(value, float):
            assert value >= 0.0, f"{where}: negative"


def test_golden_has_the_contract_shape() -> None:
    """Every key of schema 1 is present, in the contract's order and nesting, with the
    contract's types (integers stay integers, rates are floats ≥ 0, time is UTC)."""
    document = json.loads(GOLDEN.read_bytes())
    check_shape(document, CONTRACT_SHAPE, "snapshot")
    assert document["schema"] == 1
    assert TIME.match(document["time"])
    assert document["time"] == "2026-12-04T16:00:02.123456Z"


def test_shape_check_rejects_a_wrong_document() -> None:
    """The shape check itself fails on a missing key, a wrong type and a bad nesting."""
    document = json.loads(GOLDEN.read_bytes())
    broken = [
        {k: v for k, v in document.items() if k != "host"},
        {**document, "seq": 1234.0},
        {**document, "memory": {**document["memory"], "used_bytes": "4294967296"}},
        {**document, "disk": {**document["disk"], "devices": [1, 2]}},
    ]
    for bad in broken:
        try:
            check_shape(bad, CONTRACT_SHAPE, "snapshot")
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad}")
