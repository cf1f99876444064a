"""Config → TOML text for `argus config show`; secrets are redacted, never printed."""

from __future__ import annotations

import json

import msgspec

from argus_telemetry.config import units
from argus_telemetry.config.model import Bytes, Config, Seconds, Secret

REDACTED = "<redacted>"


def render_config(config: Config) -> str:
    """The effective configuration as TOML, with every secret shown as "<redacted>"."""
    lines: list[str] = []
    _render_table(config, [], lines)
    return "\n".join(lines).strip() + "\n"


def _render_table(table: msgspec.Struct, names: list[str], lines: list[str]) -> None:
    scalars: list[str] = []
    subtables: list[tuple[str, msgspec.Struct]] = []
    for field in msgspec.structs.fields(table):
        value = getattr(table, field.name)
        if isinstance(value, msgspec.Struct):
            subtables.append((field.name, value))
        else:
            scalars.append(f"{field.name} = {_render_value(value)}")
    if names and (scalars or not subtables):
        lines.append(f"\n[{'.'.join(names)}]")
    lines.extend(scalars)
    for name, sub in subtables:
        _render_table(sub, [*names, name], lines)


def _render_value(value: object) -> str:
    if isinstance(value, Secret):
        return json.dumps(REDACTED if value else "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Seconds):
        return json.dumps(units.format_duration(value)) if value else '""'
    if isinstance(value, Bytes):
        return json.dumps(units.format_size(value))
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes.
        return json.dumps(value)
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(k)} = {_render_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    raise TypeError(f"cannot render {type(value).__name__}")
