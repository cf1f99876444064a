"""The configuration as frozen, typed Structs: one per TOML table, decoded once at start.

Durations are `Seconds` (float seconds), sizes are `Bytes` (int bytes), secrets are
`Secret` (repr '***'). Cross-field checks live in `load.py`.
"""

from __future__ import annotations

import msgspec


class Seconds(float):
    """A duration in seconds, parsed from a number or a string like "10s"."""


class Bytes(int):
    """A size in bytes, parsed from a number or a string like "256MiB"."""


class Secret:
    """A secret value: never printed, logged or rendered."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "'***'" if self._value else "''"

    __str__ = __repr__


class _Table(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A TOML table: unknown keys are errors."""


DEFAULT_DISK_EXCLUDE = (
    r"^(ram|loop|fd|sr|zram|dm-)\d*$|^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)\d+$"
    r"|^nvme\d+n\d+p\d+$|^mmcblk\d+p\d+$"
)


class AgentConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    interval: Seconds = Seconds(2.0)
    flush_interval: Seconds = Seconds(10.0)
    flush_max_items: int = 20
    data_dir: str = ""  # empty: the platform's default (paths.py)
    hostname: str = ""  # empty: the machine's host name
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class SpoolConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    max_bytes: Bytes = Bytes(256 * 1024**2)
    max_age: Seconds = Seconds(7 * 86400.0)
    wipe: bool = True


class CollectConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    disk_exclude: str = DEFAULT_DISK_EXCLUDE
    interface_exclude: str = ""


class TlsConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False


class AuthConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    username: str = ""
    password: Secret = Secret("")
    password_file: str = ""
    bearer_token: Secret = Secret("")
    bearer_token_file: str = ""


class PushgatewayConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: str = ""
    job: str = "argus"
    timeout: Seconds = Seconds(5.0)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)


class LokiConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: str = ""
    tenant: str = ""
    labels: dict[str, str] = msgspec.field(default_factory=lambda: {"job": "argus"})
    timeout: Seconds = Seconds(10.0)
    batch_max_bytes: Bytes = Bytes(1024**2)
    max_send_rate: Bytes = Bytes(2 * 1024**2)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)


class RemoteWriteConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: str = ""
    job: str = "argus"
    timeout: Seconds = Seconds(10.0)
    max_sample_age: Seconds = Seconds(0.0)  # "" or 0 in TOML: no limit
    batch_max_samples: int = 2000
    max_send_rate: Bytes = Bytes(2 * 1024**2)
    headers: dict[str, Secret] = msgspec.field(default_factory=dict)
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)


class StreamConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    enabled: bool = True
    path: str = ""  # empty: the platform's default (paths.py)
    history: int = 300
    max_clients: int = 32
    group: str = ""  # group owning the Unix socket (mode 0660); empty: the agent's group


class MetricsConfig(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    listen: str = ""  # "HOST:PORT" serves /metrics; empty: off


class Config(_Table, frozen=True, forbid_unknown_fields=True, kw_only=True):
    agent: AgentConfig = msgspec.field(default_factory=AgentConfig)
    spool: SpoolConfig = msgspec.field(default_factory=SpoolConfig)
    collect: CollectConfig = msgspec.field(default_factory=CollectConfig)
    pushgateway: PushgatewayConfig = msgspec.field(default_factory=PushgatewayConfig)
    loki: LokiConfig = msgspec.field(default_factory=LokiConfig)
    remote_write: RemoteWriteConfig = msgspec.field(default_factory=RemoteWriteConfig)
    stream: StreamConfig = msgspec.field(default_factory=StreamConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
