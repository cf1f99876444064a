"""The control panel's web app: routes, static files, the flush action, access checks.

`argus panel` runs this as its own process (its memory never counts against the agent).
Loopback only unless `--allow-remote` with a `--token`. Every page asset is served from
the package; the page talks to `/api/events` (server-sent events), `/api/history` and
`POST /api/flush`. The flush checks the Origin (no cross-site flush) and the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import os
import signal
import sys
import webbrowser
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from argus_telemetry import paths
from argus_telemetry.errors import UsageError
from argus_telemetry.panel.bridge import Bridge, FlushError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_LISTEN = "127.0.0.1:8765"
HEARTBEAT_SECONDS = 15.0
TOKEN_COOKIE = "argus_panel_token"  # noqa: S105 (a cookie name, not a secret)
# Files the page loads; anything else under static/ is not served.
ASSETS = {
    "index.html": "text/html",
    "panel.js": "text/javascript",
    "panel.css": "text/css",
    "vendor/uPlot.iife.min.js": "text/javascript",
    "vendor/uPlot.min.css": "text/css",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Settings:
    """How the panel was asked to listen and who it lets in."""

    host: str
    port: int
    allow_remote: bool
    token: str | None


bridge_key = web.AppKey("bridge", Bridge)
settings_key = web.AppKey("settings", Settings)


def parse_listen(listen: str) -> tuple[str, int]:
    """ "HOST:PORT" or "[V6]:PORT" → (host, port); raises UsageError naming the problem."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT (e.g. 127.0.0.1:8765)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_access(listen: str, *, allow_remote: bool, token: str | None) -> Settings:
    """Validate the listening options: non-loopback needs --allow-remote and --token."""
    host, port = parse_listen(listen)
    if token is not None and not token:
        raise UsageError("--token must not be empty")
    if not is_loopback(host):
        if not allow_remote:
            raise UsageError(
                f"--listen {listen} is not a loopback address; add --allow-remote and --token to expose it"
            )
        if not token:
            raise UsageError(f"--listen {listen} with --allow-remote needs --token (anyone on the network could flush)")
    return Settings(host=host, port=port, allow_remote=allow_remote, token=token)


# -- middleware -------------------------------------------------------------------


def _host_allowed(request: web.Request, settings: Settings) -> bool:
    """Loopback panels answer only to loopback Host names (defeats DNS rebinding)."""
    if settings.allow_remote:
        return True
    host = urlsplit(f"//{request.host}").hostname or ""
    return is_loopback(host)


def _token_ok(request: web.Request, token: str) -> bool:
    offered = request.cookies.get(TOKEN_COOKIE, "")
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        offered = auth.removeprefix("Bearer ")
    return hmac.compare_digest(offered.encode(), token.encode())


def _same_origin(request: web.Request) -> bool:
    """A state-changing request must come from this page: same Origin, not cross-site."""
    origin = request.headers.get("Origin")
    if origin is None or origin != f"{request.scheme}://{request.host}":
        return False
    return request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[settings_key]
    if not _host_allowed(request, settings):
        return web.Response(status=421, text=f"this panel answers only on loopback, not as {request.host}\n")
    if settings.token is not None:
        offered = request.query.get("token")
        if offered is not None and hmac.compare_digest(offered.encode(), settings.token.encode()):
            redirect = web.Response(status=303, headers={"Location": request.path})
            redirect.set_cookie(TOKEN_COOKIE, offered, httponly=True, samesite="Strict", path="/")
            return redirect
        if not _token_ok(request, settings.token):
            return web.Response(status=401, text="this panel needs its token: open it as /?token=<token>\n")
    if request.method not in ("GET", "HEAD") and not _same_origin(request):
        return web.json_response({"ok": False, "error": "cross-site request refused (Origin check)"}, status=403)
    response: web.StreamResponse = await handler(request)
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


# -- handlers ---------------------------------------------------------------------


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    content_type = ASSETS.get(name)
    if content_type is None:
        raise web.HTTPNotFound
    try:
        body = (STATIC_DIR / name).read_bytes()
    except FileNotFoundError:
        if name.startswith("vendor/"):
            return web.Response(status=500, text=f"{name} is missing: run `make assets`\n")
        raise web.HTTPNotFound from None
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.enable_compression()
    return response


async def history(request: web.Request) -> web.Response:
    """The last 10 minutes of snapshots, oldest first (gzip: the keys repeat)."""
    body = msgspec.json.encode(request.app[bridge_key].history())
    response = web.Response(body=body, content_type="application/json")
    response.enable_compression()
    return response


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: `state` first, then snapshot/status/gap/agent_error as they come."""
    bridge = request.app[bridge_key]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
    response.headers.update(SECURITY_HEADERS)
    await response.prepare(request)
    with bridge.subscribe() as queue, contextlib.suppress(ConnectionResetError):
        # ConnectionResetError: the browser went away (tab closed, reload); nothing to clean up.
        await response.write(b"retry: 1000\nevent: state\ndata: " + msgspec.json.encode(bridge.state()) + b"\n\n")
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    event = await queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is None:
                break  # fell behind: the browser reconnects and reloads the history
            await response.write(event.encode())
    return response


async def flush(request: web.Request) -> web.Response:
    try:
        status = await request.app[bridge_key].flush()
    except FlushError as exc:
        return web.json_response({"ok": False, "error": str(exc)}, status=503)
    return web.json_response({"ok": True, "flush": status.get("flush")})


def build_app(bridge: Bridge, settings: Settings) -> web.Application:
    """The aiohttp application; the bridge runs for as long as the app does."""
    app = web.Application(middlewares=[guard])
    app[bridge_key] = bridge
    app[settings_key] = settings
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/history", history)
    app.router.add_post("/api/flush", flush)
    app.router.add_get("/", static_file)
    app.router.add_get("/{name:(vendor/)?[A-Za-z0-9_.]+}", static_file)

    async def run_bridge(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(bridge.run(), name="panel-bridge")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(run_bridge)
    return app


async def serve(settings: Settings, socket_path: str, *, open_browser: bool, stop: asyncio.Event) -> None:
    """Serve until `stop` is set. Prints the URL once listening."""
    app = build_app(Bridge(socket_path), settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise UsageError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
        addresses = runner.addresses  # the bound sockets: port 0 becomes the real port
        port = int(addresses[0][1]) if addresses else settings.port
        shown = f"[{settings.host}]" if ":" in settings.host else settings.host
        url = f"http://{shown}:{port}/"
        print(f"argus panel: {url} (agent stream: {socket_path})", flush=True)
        if open_browser:
            await asyncio.to_thread(webbrowser.open, url)
        await stop.wait()
    finally:
        await runner.cleanup()


def run_panel(
    *, socket_path: str | None, listen: str, open_browser: bool, allow_remote: bool, token: str | None
) -> int:
    """`argus panel`: serve the control panel until SIGINT/SIGTERM; return the exit status."""
    settings = check_access(listen, allow_remote=allow_remote, token=token)
    path = socket_path or paths.client_stream_path()
    from argus_telemetry.logs import setup_logging

    setup_logging(os.environ.get("ARGUS_LOG_LEVEL", "INFO"))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        if sys.platform != "win32":
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
        await serve(settings, path, open_browser=open_browser, stop=stop)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
