"""The error tree of Argus. Every error keeps fields and makes one sentence from them.

    ArgusError                      exit 1 unless stated
    ├── ConfigError(path, key, reason)          exit 2
    ├── UsageError(reason)                      exit 2
    ├── SpoolError(reason)
    │   └── SpoolCorruptError(path, reason)
    ├── ExportError(exporter, reason, status, retryable)
    ├── StreamProtocolError(reason)
    ├── StreamUnavailableError(path, reason)
    └── ServiceError(reason)

Only `cli/main.py` maps errors to exit codes; nothing else calls `sys.exit`.
"""

from __future__ import annotations


class ArgusError(Exception):
    """Base of every error Argus raises on purpose."""

    exit_code = 1


class ConfigError(ArgusError):
    """A configuration file is unreadable or holds a bad value."""

    exit_code = 2

    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(path, key, reason)
        self.path = path
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.path}: {self.key}: " if self.key else f"{self.path}: "
        return f"{where}{self.reason}"


class UsageError(ArgusError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class SpoolError(ArgusError):
    """The spool could not store or read data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"spool: {self.reason}"


class SpoolCorruptError(SpoolError):
    """The spool file failed its integrity check."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path

    def __str__(self) -> str:
        return f"spool {self.path} is corrupt: {self.reason}"


class ExportError(ArgusError):
    """A backend did not accept a push.

    `retryable` is False only when the content itself was refused for good (4xx other
    than the misconfiguration and throttling classes); `status` is the HTTP status or
    None for network errors and timeouts; `retry_after_seconds` honours `Retry-After`.
    """

    def __init__(
        self,
        exporter: str,
        reason: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(exporter, reason)
        self.exporter = exporter
        self.reason = reason
        self.status = status
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        code = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{self.exporter}: {code}{self.reason}"


class StreamProtocolError(ArgusError):
    """A stream peer sent something protocol v1 does not allow."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class StreamUnavailableError(ArgusError):
    """The agent's stream endpoint could not be reached."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot reach the agent at {self.path}: {self.reason}"


class ServiceError(ArgusError):
    """Installing, removing or controlling the OS service failed."""

    def __init__(self, reason: str, *, exit_code: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.reason
