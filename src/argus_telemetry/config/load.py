"""File → TOML → Config. Every problem becomes a ConfigError naming file, key and what.

Decoding is strict (unknown keys are errors); cross-field rules are checked after it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from argus_telemetry import paths
from argus_telemetry.config import units
from argus_telemetry.config.model import (
    AuthConfig,
    Bytes,
    Config,
    Seconds,
    Secret,
    TlsConfig,
)
from argus_telemetry.errors import ConfigError

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "object": "a table",
    "array": "an array",
    "null": "nothing",
}


def resolve_path(explicit: str | None) -> Path | None:
    """The config file to read: `-c`, then $ARGUS_CONFIG, then the platform default if present."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get("ARGUS_CONFIG")
    if from_env:
        return Path(from_env)
    default = paths.default_config_path()
    return default if default.is_file() else None


def load_config(path: Path | None) -> Config:
    """The validated Config from `path`, or the built-in defaults when `path` is None."""
    if path is None:
        return Config()
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(name, "", "the file does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(name, "", "the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(name, "", f"the file cannot be read ({exc.strerror})") from None
    return parse_config(text, name)


def parse_config(text: str, name: str = "<config>") -> Config:
    """The validated Config from TOML text; `name` is used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"is not valid TOML ({exc})") from None
    try:
        config = msgspec.convert(data, Config, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        key, reason = _explain(str(exc))
        raise ConfigError(name, key, reason) from None
    _check(config, name)
    return config


def _decode_custom(kind: type, value: Any) -> Any:
    if kind is Seconds:
        if value == "":
            return Seconds(0.0)
        return Seconds(units.parse_duration(value))
    if kind is Bytes:
        return Bytes(units.parse_size(value))
    if kind is Secret:
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return Secret(value)
    raise NotImplementedError(kind)


def _explain(message: str) -> tuple[str, str]:
    """(key, reason) from a msgspec validation message such as
    "Expected `int`, got `str` - at `$.agent.flush_max_items`"."""
    reason, _, where = message.partition(" - at `")
    parts = _split_path(where.rstrip("`")) if where else []
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", reason)
    if unknown:
        known = _known_keys(parts)
        parts.append(unknown.group(1))
        reason = f"unknown key (known: {', '.join(known)})"
        if len(parts) == 1:
            return f"[{parts[0]}]", f"unknown section (known: {', '.join(known)})"
    else:
        expected = re.fullmatch(r"Expected `(\w+)`, got `(\w+)`", reason)
        if expected:
            want, got = expected.groups()
            reason = f"expected {_TYPE_WORDS.get(want, want)}, got {_TYPE_WORDS.get(got, got)}"
    return _format_key(parts), reason


def _split_path(path: str) -> list[str]:
    # "$.agent.labels['x']" or "$.agent.labels.x" → ["agent", "labels", "x"]
    body = path.removeprefix("$")
    return [p for p in re.split(r"\.|\['|'\]|\[|\]", body) if p]


def _format_key(parts: list[str]) -> str:
    """["loki", "tls", "ca_file"] → "[loki.tls] ca_file"; tables end at the first non-table."""
    tables: list[str] = []
    node: Any = Config
    rest = list(parts)
    while rest:
        sub = _struct_of(node, rest[0])
        if sub is None:
            break
        tables.append(rest.pop(0))
        node = sub
    table = f"[{'.'.join(tables)}]" if tables else ""
    key = ".".join(rest)
    return f"{table} {key}".strip()


def _known_keys(parts: list[str]) -> list[str]:
    node: Any = Config
    for part in parts:
        node = _struct_of(node, part)
        if node is None:
            return []
    return [field.name for field in msgspec.structs.fields(node)]


def _struct_of(node: Any, name: str) -> Any:
    for field in msgspec.structs.fields(node):
        if field.name == name and isinstance(field.type, type) and issubclass(field.type, msgspec.Struct):
            return field.type
    return None


def _check(config: Config, name: str) -> None:
    """Cross-field and range rules msgspec cannot express."""
    agent = config.agent

    def fail(key: str, reason: str) -> None:
        raise ConfigError(name, key, reason)

    if agent.interval < 0.1:
        fail("[agent] interval", f"{units.format_duration(agent.interval)} is too short (at least 100ms)")
    if agent.flush_interval <= 0:
        fail("[agent] flush_interval", "must be longer than 0s")
    if agent.flush_max_items < 1:
        fail("[agent] flush_max_items", f"{agent.flush_max_items} is too small (at least 1)")
    _check_labels(agent.labels, "[agent] labels", fail)
    if agent.hostname and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", agent.hostname):
        fail("[agent] hostname", f'"{agent.hostname}" is not a valid host name')
    if config.spool.max_bytes < 64 * 1024:
        fail("[spool] max_bytes", f"{config.spool.max_bytes} bytes is too small (at least 64KiB)")
    if config.spool.max_age < 60:
        fail("[spool] max_age", "is too short (at least 1m)")
    for key in ("disk_exclude", "interface_exclude"):
        pattern = getattr(config.collect, key)
        try:
            re.compile(pattern)
        except re.error as exc:
            fail(f"[collect] {key}", f'"{pattern}" is not a valid regular expression ({exc})')
    for section in ("pushgateway", "loki", "remote_write"):
        table = getattr(config, section)
        if table.url:
            _check_url(table.url, f"[{section}] url", fail)
        if table.timeout <= 0:
            fail(f"[{section}] timeout", "must be longer than 0s")
        _check_tls(table.tls, f"[{section}.tls]", fail)
        _check_auth(table.auth, f"[{section}.auth]", fail)
    if config.pushgateway.job == "" or "/" in config.pushgateway.job:
        fail("[pushgateway] job", f'"{config.pushgateway.job}" is not a valid job name')
    _check_labels(config.loki.labels, "[loki] labels", fail)
    if config.loki.batch_max_bytes < 1024:
        fail("[loki] batch_max_bytes", "is too small (at least 1KiB)")
    if config.loki.max_send_rate < 1024:
        fail("[loki] max_send_rate", "is too small (at least 1KiB)")
    if config.remote_write.batch_max_samples < 1:
        fail("[remote_write] batch_max_samples", "must be at least 1")
    if config.remote_write.max_send_rate < 1024:
        fail("[remote_write] max_send_rate", "is too small (at least 1KiB)")
    stream = config.stream
    if stream.history < 0 or stream.history > 100_000:
        fail("[stream] history", f"{stream.history} is out of range (0 to 100000)")
    if stream.max_clients < 1 or stream.max_clients > 1024:
        fail("[stream] max_clients", f"{stream.max_clients} is out of range (1 to 1024)")
    if config.metrics.listen:
        _check_listen(config.metrics.listen, "[metrics] listen", fail)
    if config.remote_write.url:
        # The series rules live with the encoder; imported only when remote_write is on.
        from argus_telemetry.export.remote_write import check_config as check_remote_write

        check_remote_write(config, name)


def _check_labels(labels: dict[str, str], key: str, fail: Any) -> None:
    for label, value in labels.items():
        if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
            fail(key, f'"{label}" is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading "__")')
        # Loki parses the stream's label set as a selector; a quote or backslash in a
        # value gets the whole push refused with 400, so refuse it here instead.
        if not value or '"' in value or "\\" in value or "\n" in value:
            reason = "is not a usable label value (non-empty, no quotes, backslashes or newlines)"
            fail(f"{key}.{label}", f"{value!r} {reason}")


def _check_url(url: str, key: str, fail: Any) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        fail(key, f'"{_redact_url(url)}" is not an http:// or https:// URL with a host')
    if parts.username or parts.password:
        fail(key, "must not carry credentials; use the [auth] table")


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _check_tls(tls: TlsConfig, table: str, fail: Any) -> None:
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(tls, key)
        if value and not Path(value).is_file():
            fail(f"{table} {key}", f'"{value}" does not exist or is not a file')
    if bool(tls.cert_file) != bool(tls.key_file):
        fail(f"{table} cert_file", "cert_file and key_file must be given together")


def _check_auth(auth: AuthConfig, table: str, fail: Any) -> None:
    if auth.password and auth.password_file:
        fail(f"{table} password_file", "give password or password_file, not both")
    if auth.bearer_token and auth.bearer_token_file:
        fail(f"{table} bearer_token_file", "give bearer_token or bearer_token_file, not both")
    basic = bool(auth.username or auth.password or auth.password_file)
    bearer = bool(auth.bearer_token or auth.bearer_token_file)
    if basic and bearer:
        fail(f"{table} bearer_token", "give basic auth (username/password) or a bearer token, not both")
    if (auth.password or auth.password_file) and not auth.username:
        fail(f"{table} username", "a password needs a username")
    for key in ("password_file", "bearer_token_file"):
        value = getattr(auth, key)
        if value and not Path(value).is_file():
            fail(f"{table} {key}", f'"{value}" does not exist or is not a file')


def _check_listen(listen: str, key: str, fail: Any) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(key, f'"{listen}" is not HOST:PORT (e.g. "127.0.0.1:9464")')
