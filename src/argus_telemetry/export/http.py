"""The one place that builds HTTP clients for exporters (TLS, auth, timeout, user
agent) and maps HTTP answers to ExportError classes.

Each exporter's requests run on httpx's *sync* client in a dedicated daemon thread
(`ThreadedClient`), awaited from the event loop. httpx's async client would load
anyio's asyncio backend and its worker threads (~1.3 MiB more RSS, measured with
bench/agent_vs_node_exporter.py --exporters); a daemon thread never delays the agent's
shutdown, and one per exporter keeps a slow endpoint from delaying another's requests.

Secrets are read here and go only into the client's auth; they are never logged, and
neither are auth headers or URLs with userinfo (see `redact_url`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import queue
import ssl
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit, urlunsplit

from argus_telemetry.config.model import AuthConfig, TlsConfig
from argus_telemetry.errors import ConfigError, ExportError

if TYPE_CHECKING:
    import httpx

    from argus_telemetry.export.base import ExportHost

MISCONFIGURED = frozenset({401, 403, 404, 405, 415})  # keep data, retry slowly, report loudly
MAX_ERROR_TEXT = 4096  # of a response body kept in errors and dead-letter files
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


_Job = tuple[Callable[[], "httpx.Response"], Callable[["httpx.Response | None", BaseException | None], None]]


class ThreadedClient:
    """An `httpx.Client` driven by one daemon thread, with awaitable `post`, `put` and
    `delete`. A request whose awaiting task is cancelled still finishes in the thread
    (bounded by the client's timeout) and its answer is dropped; `aclose()` lets the
    thread close the client after the request in hand and returns at once."""

    def __init__(self, client: httpx.Client, name: str) -> None:
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
    ) -> httpx.Response:
        """Send one request in the thread and wait for its answer (httpx's exceptions
        are raised here, as from httpx)."""
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[httpx.Response] = loop.create_future()

        def settle(response: httpx.Response | None, error: BaseException | None) -> None:
            if future.done():
                return  # the awaiting task was cancelled
            if error is not None:
                future.set_exception(error)
            else:
                assert response is not None
                future.set_result(response)

        def done(response: httpx.Response | None, error: BaseException | None) -> None:
            # RuntimeError: the event loop is gone (agent stopped): nobody waits for this answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, response, error)

        def send() -> httpx.Response:
            return self._client.request(method, url, content=content, headers=headers)

        self._jobs.put((send, done))
        return await future

    async def post(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self.request("POST", url, content=content, headers=headers)

    async def put(
        self, url: str, *, content: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return await self.request("PUT", url, content=content, headers=headers)

    async def delete(self, url: str, *, headers: Mapping[str, str] | None = None) -> httpx.Response:
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
    import httpx

    where = config_path or "configuration"
    all_headers = {"User-Agent": f"argus-telemetry/{version}"}
    basic: httpx.BasicAuth | None = None
    if auth.username:
        password = auth.password.reveal() or _read_secret(where, f"[{section}.auth] password_file", auth.password_file)
        basic = httpx.BasicAuth(auth.username, password)
    token = auth.bearer_token.reveal() or (
        _read_secret(where, f"[{section}.auth] bearer_token_file", auth.bearer_token_file)
        if auth.bearer_token_file
        else ""
    )
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    # A plain-http endpoint never uses TLS (redirects are not followed), so it gets an
    # empty context instead of one holding the whole system trust store (~2.7 MiB).
    plain = url.startswith("http://") and not tls.cert_file
    client = httpx.Client(
        verify=_plain_context() if plain else ssl_context(section, tls, where),
        auth=basic,
        headers=all_headers,
        timeout=httpx.Timeout(timeout_seconds),
        trust_env=False,
        follow_redirects=False,
    )
    return ThreadedClient(client, section)


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


def _plain_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, but trusts no one: never used for TLS


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


def error_for_response(exporter: str, response: httpx.Response, now_wall: float) -> ExportError | None:
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


def redact_sent_secrets(text: str, request: httpx.Request) -> str:
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
    import httpx

    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "network error"
    detail = str(exc) or exc.__class__.__name__
    return ExportError(exporter, f"{kind}: {detail}", status=None, retryable=True)
