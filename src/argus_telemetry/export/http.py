"""The one place that builds HTTP clients for exporters (TLS, auth, timeout, user
agent) and maps HTTP answers to ExportError classes.

Requests go over the standard library's `http.client` (already loaded by
prometheus_client), one keep-alive connection per endpoint, in a dedicated daemon
thread per exporter (`ThreadedClient`), awaited from the event loop. httpx cost ~2.4 MiB
more RSS (its modules, its runtime and an SSL context even for plain-http endpoints) and
~0.5 ms more per request, measured with bench/agent_vs_node_exporter.py --exporters; a
daemon thread never delays the agent's shutdown, and one per exporter keeps a slow
endpoint from delaying another's requests. Redirects are never followed and proxies
from the environment are never used (the contract has no proxy key).

Secrets are read here and go only into the client's auth header; they are never logged,
and neither are auth headers or URLs with userinfo (see `redact_url`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import http.client
import queue
import select
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from email.message import Message
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from argus_telemetry.config.model import AuthConfig, TlsConfig
from argus_telemetry.errors import ConfigError, ExportError

if TYPE_CHECKING:
    import socket

    from argus_telemetry.export.base import ExportHost

MISCONFIGURED = frozenset({401, 403, 404, 405, 415})  # keep data, retry slowly, report loudly
MAX_ERROR_TEXT = 4096  # of a response body kept in errors and dead-letter files
MAX_BODY = 1 << 20  # of a response body read at all; the connection is dropped past it
# What a request can raise: a timeout (TimeoutError, an OSError), a network or TLS
# error (OSError) or a malformed answer (HTTPException). `error_for_exception` maps them.
HTTP_ERRORS: tuple[type[Exception], ...] = (OSError, http.client.HTTPException)
# A kept-alive connection the server closed in the meantime fails with one of these; the
# request is then sent once more on a new connection (see `HttpClient._send`).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# Methods resent after a stale connection even if the request may have reached the
# server: PUT and DELETE are idempotent, and our POSTs (Loki push, remote_write) are
# retransmitted byte-identically by the spool anyway; never more than once.
_RESENDABLE = frozenset({"PUT", "DELETE", "POST"})
# Request headers whose values are never secret; every other header value we sent (auth,
# remote_write's configured headers) is blanked out of a backend's error text.
_PUBLIC_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "user-agent",
        "x-prometheus-remote-write-version",
        "x-scope-orgid",
    }
)


class Request:
    """What was sent: method, URL and every header (for `redact_sent_secrets`)."""

    __slots__ = ("headers", "method", "url")

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class Response:
    """A complete answer: `status_code`, `reason_phrase`, `headers` (case-insensitive
    `get`), `content` (at most MAX_BODY bytes), `text` and the `request` it answers."""

    __slots__ = ("content", "headers", "reason_phrase", "request", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: Message, content: bytes, request: Request
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content
        self.request = request

    @property
    def text(self) -> str:
        """The body decoded with the charset the answer names (else UTF-8), lossily."""
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")


class HttpClient:
    """A blocking HTTP/1.1 client over `http.client`: one kept-alive connection per
    (scheme, host, port), default headers (user agent, auth) on every request, every
    socket operation bounded by `timeout` and the whole request by the same `timeout`
    (TimeoutError past it). Not thread-safe: one `ThreadedClient` thread drives it."""

    def __init__(self, timeout: float, headers: Mapping[str, str], context: Callable[[], ssl.SSLContext]) -> None:
        self.timeout = timeout
        self.headers = dict(headers)
        self._context = context  # built on first https use only
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Send one request and read its whole answer. Raises TimeoutError, OSError or
        http.client.HTTPException (see HTTP_ERRORS)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise http.client.InvalidURL(f"not an http(s) URL: {redact_url(url)}")
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = dict(self.headers)
        if parts.username is not None and not any(k.lower() == "authorization" for k in sent):
            sent["Authorization"] = basic_auth(unquote(parts.username), unquote(parts.password or ""))
        sent.update(headers or {})
        deadline = time.monotonic() + self.timeout
        key = (scheme, parts.hostname, port)
        for attempt in (1, 2):
            connection = self._connection(key)
            reused = connection.sock is not None
            try:
                return self._exchange(connection, Request(method, url, sent), target, content, deadline)
            except _STALE:
                self._drop(key)
                if not reused or attempt == 2 or method.upper() not in _RESENDABLE:
                    raise
            except BaseException:
                self._drop(key)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _exchange(
        connection: http.client.HTTPConnection, request: Request, target: str, content: bytes | None, deadline: float
    ) -> Response:
        if connection.sock is None:
            connection.timeout = _remaining(deadline)
            connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(_remaining(deadline))
        connection.request(request.method, target, body=content, headers=request.headers)
        connection.sock.settimeout(_remaining(deadline))
        answer = connection.getresponse()
        body = bytearray()
        while len(body) <= MAX_BODY:
            if connection.sock is not None:  # None once an answer with "Connection: close" came
                connection.sock.settimeout(_remaining(deadline))
            chunk = answer.read(65536)
            if not chunk:
                break
            body += chunk
        if not answer.isclosed():  # more than MAX_BODY: the rest is not read
            connection.close()
        host = connection.host if connection.port in {80, 443} else f"{connection.host}:{connection.port}"
        request.headers = {"Host": host, **request.headers}
        return Response(answer.status, answer.reason, answer.headers, bytes(body[:MAX_BODY]), request)

    def _connection(self, key: tuple[str, str, int]) -> http.client.HTTPConnection:
        connection = self._connections.get(key)
        if connection is not None and connection.sock is not None and _readable(connection.sock):
            connection.close()  # the server closed it (or sent something unasked): start afresh
        if connection is None:
            scheme, host, port = key
            if scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._context())
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
            self._connections[key] = connection
        return connection

    def _drop(self, key: tuple[str, str, int]) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close every kept-alive connection."""
        for key in list(self._connections):
            self._drop(key)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out (the request took longer than the configured timeout)")
    return left


def _readable(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket has something to read: EOF (the server closed
    it) or an unasked answer; either way it is not reusable."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def basic_auth(username: str, password: str) -> str:
    """The `Authorization` header value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


_Job = tuple[Callable[[], Response], Callable[[Response | None, BaseException | None], None]]


class ThreadedClient:
    """An `HttpClient` driven by one daemon thread, with awaitable `post`, `put` and
    `delete`. A request whose awaiting task is cancelled still finishes in the thread
    (bounded by the client's timeout) and its answer is dropped; `aclose()` lets the
    thread close the client after the request in hand and returns at once."""

    def __init__(self, client: HttpClient, name: str) -> None:
        self._client = client
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"argus-http-{name}", daemon=True)
        self._thread.start()
        self._closed = False

    def _work(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                send, done = job
                try:
                    response = send()
                except BaseException as exc:  # handed to the awaiting task
                    done(None, exc)
                else:
                    done(response, None)
        finally:
            self._client.close()

    async def request(
        self, method: str, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Send one request in the thread and wait for its answer (the exceptions of
        HTTP_ERRORS are raised here)."""
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Response] = loop.create_future()

        def settle(response: Response | None, error: BaseException | None) -> None:
            if future.done():
                return  # the awaiting task was cancelled
            if error is not None:
                future.set_exception(error)
            else:
                assert response is not None
                future.set_result(response)

        def done(response: Response | None, error: BaseException | None) -> None:
            # RuntimeError: the event loop is gone (agent stopped): nobody waits for this answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, response, error)

        def send() -> Response:
            return self._client.request(method, url, content=content, headers=headers)

        self._jobs.put((send, done))
        return await future

    async def post(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self.request("POST", url, content=content, headers=headers)

    async def put(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        return await self.request("PUT", url, content=content, headers=headers)

    async def delete(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return await self.request("DELETE", url, headers=headers)

    async def aclose(self) -> None:
        """Stop taking requests; the thread closes the client once the one in hand ends."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)

    async def __aenter__(self) -> ThreadedClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()


def build_client(
    section: str,
    *,
    tls: TlsConfig,
    auth: AuthConfig,
    timeout_seconds: float,
    version: str,
    config_path: str = "",
    headers: Mapping[str, str] | None = None,
    url: str = "",
) -> ThreadedClient:
    """An HTTP client for one exporter (see `ThreadedClient`). `section` ("loki", ...)
    names the config table in errors and the thread. Raises ConfigError when a CA,
    certificate, key or secret file is unusable. Proxies from the environment are not
    used (the contract has no proxy key)."""
    where = config_path or "configuration"
    all_headers = {"User-Agent": f"argus-telemetry/{version}"}
    if auth.username:
        password = auth.password.reveal() or _read_secret(where, f"[{section}.auth] password_file", auth.password_file)
        all_headers["Authorization"] = basic_auth(auth.username, password)
    token = auth.bearer_token.reveal() or (
        _read_secret(where, f"[{section}.auth] bearer_token_file", auth.bearer_token_file)
        if auth.bearer_token_file
        else ""
    )
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    # A plain-http endpoint never uses TLS (redirects are not followed), so it gets no
    # SSL context at all; an https one gets its context now, so a bad CA or certificate
    # file is a ConfigError at start, not a network error at every request.
    if url.startswith("http://") and not tls.cert_file:
        context: Callable[[], ssl.SSLContext] = lambda: ssl_context(section, tls, where)  # noqa: E731
    else:
        built = ssl_context(section, tls, where)
        context = lambda: built  # noqa: E731
    return ThreadedClient(HttpClient(timeout_seconds, all_headers, context), section)


class EndpointConfig(Protocol):
    """What an exporter's config table ([loki], [pushgateway], [remote_write]) says about
    its endpoint."""

    @property
    def url(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    @property
    def tls(self) -> TlsConfig: ...

    @property
    def auth(self) -> AuthConfig: ...


def client_for(
    host: ExportHost, section: str, config: EndpointConfig, *, headers: Mapping[str, str] | None = None
) -> ThreadedClient:
    """`build_client` for the exporter of table `section`, from its config and the
    agent's version and config path. Raises ConfigError as build_client does."""
    return build_client(
        section,
        tls=config.tls,
        auth=config.auth,
        timeout_seconds=float(config.timeout),
        version=host.version,
        config_path=host.config_path,
        url=config.url,
        headers=headers,
    )


_contexts: dict[tuple[str, str, str, bool], ssl.SSLContext] = {}


def ssl_context(section: str, tls: TlsConfig, where: str) -> ssl.SSLContext:
    """Verification on by default against `ca_file` (else the system store); a client
    certificate when `cert_file` is set. Exporters with the same TLS settings share one
    context: loading the system store costs ~2 MiB RSS per context."""
    key = (tls.ca_file, tls.cert_file, tls.key_file, tls.insecure_skip_verify)
    cached = _contexts.get(key)
    if cached is None:
        cached = _contexts[key] = _new_ssl_context(section, tls, where)
    return cached


def _new_ssl_context(section: str, tls: TlsConfig, where: str) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(where, f"[{section}.tls] ca_file", f"cannot use {tls.ca_file!r}: {exc}") from exc
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                where, f"[{section}.tls] cert_file", f"cannot use {tls.cert_file!r} / {tls.key_file!r}: {exc}"
            ) from exc
    return context


def _read_secret(where: str, key: str, path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(where, key, f"cannot read {path!r}: {exc.__class__.__name__}") from exc


def redact_url(url: str) -> str:
    """`url` without userinfo, safe to log."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now_wall)


def error_for_response(exporter: str, response: Response, now_wall: float) -> ExportError | None:
    """None for a 2xx; else the ExportError of the contract's error classes:
    5xx and 429 retryable (429 with Retry-After); 413 retryable (split by delivery);
    401/403/404/405/415 retryable (misconfiguration, retried slowly); any other 4xx not
    retryable (refused for good); anything else (1xx, 3xx) retryable."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    text = redact_sent_secrets(response.text[:MAX_ERROR_TEXT].strip(), response.request) or response.reason_phrase
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now_wall)
    if status in MISCONFIGURED:
        text = f"{text} (check the URL, tenant and credentials)"
    refused = 400 <= status < 500 and status not in MISCONFIGURED and status not in {408, 413, 429}
    return ExportError(exporter, text, status=status, retryable=not refused, retry_after_seconds=retry_after)


def redact_sent_secrets(text: str, request: Request) -> str:
    """`text` (a backend's answer, kept in logs, `status` and dead letters) with every
    secret value this request carried replaced by "***": some servers and proxies echo
    request headers back in their error pages."""
    secrets: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in _PUBLIC_HEADERS:
            continue
        secrets.append(value)
        scheme, _, credentials = value.partition(" ")
        if name.lower() == "authorization" and credentials:
            secrets.append(credentials)
            if scheme.lower() == "basic":
                with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                    secrets.append(base64.b64decode(credentials, validate=True).decode().partition(":")[2])
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def error_for_exception(exporter: str, exc: Exception) -> ExportError:
    """A network error or timeout as a retryable ExportError (no secrets in the text)."""
    kind = "timeout" if isinstance(exc, TimeoutError) else "network error"
    detail = str(exc) or exc.__class__.__name__
    return ExportError(exporter, f"{kind}: {detail}", status=None, retryable=True)
