"""remote_write configuration checks and body compression (no network)."""

from __future__ import annotations

import cramjam
import pytest

from argus_telemetry.config.model import AgentConfig, Config, RemoteWriteConfig, Secret
from argus_telemetry.errors import ConfigError
from argus_telemetry.export.remote_write import PROTOCOL_HEADERS, check_config, compress


def config(labels: dict[str, str] | None = None, headers: dict[str, str] | None = None, job: str = "argus") -> Config:
    return Config(
        agent=AgentConfig(labels=labels or {}),
        remote_write=RemoteWriteConfig(
            url="http://127.0.0.1:8428/api/v1/write",
            job=job,
            headers={name: Secret(value) for name, value in (headers or {}).items()},
        ),
    )


def test_compress_writes_one_snappy_block_not_the_framed_format() -> None:
    """The body is a raw snappy block (what Prometheus decodes), never the framed
    stream format that cramjam.snappy.compress() writes."""
    body = b"argus " * 1000
    packed = compress(body)
    assert bytes(cramjam.snappy.decompress_raw(packed)) == body
    assert not packed.startswith(b"\xff\x06\x00\x00sNaPpY")
    assert len(packed) == 291  # 6000 bytes of a repeated word: one literal, then copies


def test_protocol_headers_are_those_of_remote_write_1_0() -> None:
    """Content-Encoding snappy, protobuf content type and version 0.1.0."""
    assert PROTOCOL_HEADERS == {
        "Content-Encoding": "snappy",
        "Content-Type": "application/x-protobuf",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
    }


@pytest.mark.parametrize(
    ("cfg", "key", "reason"),
    [
        (
            config(labels={"instance": "x"}),
            "[agent] labels",
            '"instance" clashes with a label',
        ),
        (config(labels={"device": "x"}), "[agent] labels", '"device" clashes with a label'),
        (config(job=""), "[remote_write] job", "must not be empty"),
        (config(headers={"Content-Type": "x"}), "[remote_write] headers", '"Content-Type" is set by Argus'),
        (config(headers={"bad header": "x"}), "[remote_write] headers", '"bad header" is not a valid HTTP header name'),
    ],
)
def test_bad_setups_are_refused_naming_the_key(cfg: Config, key: str, reason: str) -> None:
    """Label collisions, an empty job and headers Argus owns are ConfigErrors that name
    the file, the key and the problem."""
    with pytest.raises(ConfigError) as caught:
        check_config(cfg, "argus.toml")
    assert caught.value.path == "argus.toml"
    assert caught.value.key == key
    assert caught.value.reason.startswith(reason)


def test_a_good_setup_passes() -> None:
    """Ordinary labels and a tenant header are accepted."""
    check_config(config(labels={"region": "eu"}, headers={"X-Scope-OrgID": "tenant-1"}), "argus.toml")
