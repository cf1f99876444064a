"""The Installer protocol every OS service implementation follows, and version rules.

`install` compares the version being installed with the recorded one: the same version
repairs in place, a newer one upgrades, an older one is refused (exit 2, nothing changed).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from argus_telemetry.errors import ServiceError

Say = Callable[[str], None]  # one progress line for the person running the installer

_VERSION = re.compile(
    r"(?P<release>\d+(?:\.\d+)*)"
    r"(?:(?P<pre>a|b|rc)(?P<pre_n>\d+))?"
    r"(?:\.post(?P<post>\d+))?"
    r"(?:\.dev(?P<dev>\d+))?"
)
_PRE_RANK = {"a": 0, "b": 1, "rc": 2}


@dataclass(frozen=True)
class InstallOptions:
    """What `argus service install` was asked to do."""

    config_file: Path | None = None  # install this config (otherwise keep or write the default)
    ca_cert: Path | None = None  # add this root CA to the OS trust store
    wait_seconds: float = 30.0  # how long to wait for the agent to answer on its stream


@dataclass(frozen=True)
class ServiceStatus:
    """What `argus service status` shows: the OS's view of the unit and the agent's own."""

    installed_version: str | None
    state: dict[str, str] = field(default_factory=dict)  # OS properties, e.g. ActiveState
    agent: dict[str, object] | None = None  # the agent's status over the stream
    agent_error: str = ""  # why the agent's status could not be read


class Installer(Protocol):
    """An OS service implementation (systemd now, the Windows SCM later)."""

    def install(self, options: InstallOptions) -> None:
        """Install or upgrade, start, and wait until the agent answers; raise ServiceError."""
        ...

    def uninstall(self, *, purge: bool) -> None:
        """Stop and remove the service; keep config and data unless `purge`."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def status(self) -> ServiceStatus: ...


class Action(enum.Enum):
    """What installing a version over the recorded one means."""

    FRESH = "fresh"
    REPAIR = "repair"
    UPGRADE = "upgrade"


def version_key(version: str) -> tuple[tuple[int, ...], int, int, int, int]:
    """A sort key for a PEP 440 version of the forms we publish: `1.2.3`, `1.2.3rc1`,
    `1.2.3.post1`, `1.2.3.dev4`. Raises ServiceError (exit 2) for anything else."""
    match = _VERSION.fullmatch(version.strip())
    if not match:
        raise ServiceError(f'"{version}" is not a version this installer understands (e.g. 1.2.3)', exit_code=2)
    release = tuple(int(part) for part in match["release"].split("."))
    while len(release) > 1 and release[-1] == 0:  # 1.0 == 1.0.0
        release = release[:-1]
    dev = int(match["dev"]) if match["dev"] is not None else 1 << 62
    pre_rank = _PRE_RANK[match["pre"]] if match["pre"] else 3
    pre_n = int(match["pre_n"]) if match["pre_n"] else 0
    if match["dev"] is not None and not match["pre"] and match["post"] is None:
        pre_rank = -1  # 1.0.dev1 < 1.0a1
    post = int(match["post"]) if match["post"] is not None else -1
    return release, pre_rank, pre_n, post, dev


def decide(installed: str | None, new: str) -> Action:
    """FRESH without a recorded version, REPAIR for the same one, UPGRADE for an older
    recorded one; a newer recorded one raises ServiceError with exit 2 (a downgrade)."""
    if installed is None:
        return Action.FRESH
    old_key, new_key = version_key(installed), version_key(new)
    if new_key == old_key:
        return Action.REPAIR
    if new_key > old_key:
        return Action.UPGRADE
    raise ServiceError(
        f"version {installed} is installed and {new} is older: downgrades are refused "
        f"(uninstall {installed} first to go back to {new}); nothing was changed",
        exit_code=2,
    )
