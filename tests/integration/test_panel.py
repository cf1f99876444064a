"""The control panel in Debian's Chromium (Playwright), against a real `argus run` agent.

Both the agent and the panel are subprocesses started as a user would (`python -m
argus_telemetry run|panel`); the agent streams every 500 ms into a socket in a private
tmp dir. Waits are deadlines on page conditions, never sleeps.
"""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Request, Route, sync_playwright
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

from argus_telemetry import __version__
from argus_telemetry.panel import assets
from argus_telemetry.stream.protocol import error_line, gap_line, hello_line, snapshot_line, status_line

pytestmark = pytest.mark.browser

HOSTNAME = "panel-test-host"
START_SECONDS = 30.0
WAIT_MS = 30_000
PAGE_FILES = {
    "/",
    "/vendor/uPlot.min.css",
    "/panel.css",
    "/vendor/uPlot.iife.min.js",
    "/panel.js",
    "/api/events",
    "/api/history",
}


def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Agent:
    """`argus run` with a tmp config; start() waits until its stream socket accepts."""

    config: Path
    socket_path: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "argus_telemetry", "run", "-c", str(self.config)],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"agent exited: {self.log.read_text()}"
            with socket.socket(socket.AF_UNIX) as sock:
                try:
                    sock.connect(str(self.socket_path))
                except OSError:
                    time.sleep(0.05)
                    continue
                return
        raise AssertionError(f"agent stream {self.socket_path} not ready: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=10) == 0, self.log.read_text()
        self.process = None

    def status(self) -> dict[str, object]:
        """The agent's status over the stream, read with a plain socket."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket_path))
            sock.sendall(b'{"op":"status"}\n')
            with sock.makefile("rb") as reader:
                for line in reader:
                    message = json.loads(line)
                    if message["type"] == "status":
                        status: dict[str, object] = message["status"]
                        return status
        raise AssertionError("the agent closed the stream without a status")


@dataclass
class Panel:
    """`argus panel` on a free loopback port; `url` is what it printed."""

    process: subprocess.Popen[str]
    url: str
    log: Path

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)


def make_agent(tmp_path: Path, *, flush_interval: str = "1h", pushgateway_port: int | None = None) -> Agent:
    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    config = tmp_path / "config.toml"
    text = (
        f'[agent]\ninterval = "500ms"\nflush_interval = "{flush_interval}"\nflush_max_items = 100000\n'
        f'data_dir = "{tmp_path / "data"}"\nhostname = "{HOSTNAME}"\n'
        f'[stream]\npath = "{private / "TelemetryPipe.sock"}"\n'
    )
    if pushgateway_port is not None:
        text += f'[pushgateway]\nurl = "http://127.0.0.1:{pushgateway_port}"\ntimeout = "1s"\n'
    config.write_text(text)
    return Agent(config=config, socket_path=private / "TelemetryPipe.sock", log=tmp_path / "agent.log")


def start_panel(socket_path: Path, *extra: str) -> Panel:
    """`argus panel` on a free port; its log goes beside the socket's directory."""
    log = socket_path.parent.parent / f"panel-{time.monotonic_ns()}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "argus_telemetry",
                "panel",
                "--socket",
                str(socket_path),
                "--listen",
                "127.0.0.1:0",
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=START_SECONDS), "the panel printed no URL"
    line = process.stdout.readline()
    assert line.startswith("argus panel: http://127.0.0.1:"), line + log.read_text()
    return Panel(process=process, url=line.split()[2], log=log)


def stop_panel(panel: Panel) -> None:
    assert panel.process.stdout is not None
    try:
        assert panel.process.poll() is None, f"the panel server died: {panel.log.read_text()}"
        panel.process.send_signal(signal.SIGTERM)
        assert panel.process.wait(timeout=10) == 0, panel.log.read_text()
    finally:
        panel.process.stdout.close()


# Module scope, not session: Playwright's sync API keeps an event loop running in this
# thread while it is open, which would break every asyncio test collected after this module.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert assets.is_installed(), "uPlot is not in panel/static/vendor: run `make assets`"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@dataclass
class Session:
    """A browser page on the panel, with what it logged and requested."""

    page: Page
    panel: Panel
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def open_panel(browser: Browser) -> Iterator[object]:
    panels: list[Panel] = []
    pages: list[Page] = []

    def opener(socket_path: Path, *, width: int = 1280) -> Session:
        panel = start_panel(socket_path)
        panels.append(panel)
        page = browser.new_page(viewport={"width": width, "height": 800})
        pages.append(page)
        session = Session(page=page, panel=panel)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                session.console_errors.append(message.text)

        def on_route(route: Route, request: Request) -> None:
            session.requests.append(request.url)
            if urlsplit(request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                route.abort()

        page.on("console", on_console)
        page.on("pageerror", lambda error: session.console_errors.append(str(error)))
        page.route("**/*", on_route)
        page.goto(panel.url)
        return session

    yield opener
    for page in pages:
        page.close()
    for panel in panels:
        stop_panel(panel)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    agent = make_agent(tmp_path)
    agent.start()
    yield agent
    agent.stop()


def wait_live(page: Page) -> None:
    page.wait_for_selector('#link[data-state="live"]', timeout=WAIT_MS)


def last_seq(page: Page) -> int:
    return int(page.get_attribute("#chart-cpu", "data-last-seq") or 0)


def wait_attribute_at_least(page: Page, selector: str, attribute: str, minimum: int) -> int:
    """Poll a numeric data attribute until it reaches `minimum` (the page's CSP forbids the
    eval that Playwright's wait_for_function needs); return its value."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        value = int(page.get_attribute(selector, attribute) or 0)
        if value >= minimum:
            return value
        assert time.monotonic() < deadline, f"{selector} {attribute} stayed at {value}, expected >= {minimum}"
        page.wait_for_timeout(100)


def test_page_loads_live_without_errors_or_outside_requests(agent: Agent, open_panel: object) -> None:
    """The page shows the agent's host and version, plots snapshots, logs no console
    error, and every request it makes goes to the panel on loopback, for exactly the
    page's own files and API."""
    session: Session = open_panel(agent.socket_path)  # type: ignore[operator]
    page = session.page
    wait_live(page)
    wait_attribute_at_least(page, "#chart-cpu", "data-points", 2)
    assert page.text_content("#host") == HOSTNAME
    assert page.text_content("#version") == __version__
    assert page.is_hidden("#banner")
    assert session.console_errors == []
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in session.requests}
    assert origins == {f"http://127.0.0.1:{session.panel.port}"}
    assert {urlsplit(url).path for url in session.requests} == PAGE_FILES


def test_cpu_chart_follows_the_stream(agent: Agent, open_panel: object) -> None:
    """Within a few intervals the CPU chart gains new points, and its newest point is
    the newest snapshot's time and usage_percent."""
    session: Session = open_panel(agent.socket_path)  # type: ignore[operator]
    page = session.page
    wait_live(page)
    wait_attribute_at_least(page, "#chart-cpu", "data-last-seq", 1)
    first = last_seq(page)
    wait_attribute_at_least(page, "#chart-cpu", "data-last-seq", first + 3)
    newest = page.evaluate(
        """() => {
            const p = argusPanel.charts.cpu.plot, s = argusPanel.state.snaps.at(-1);
            return {x: p.data[0].at(-1), y: p.data[1].at(-1), time: Date.parse(s.time) / 1000,
                    usage: s.cpu.usage_percent, seq: s.seq};
        }"""
    )
    assert newest["x"] == newest["time"]
    assert newest["y"] == newest["usage"]
    assert newest["seq"] >= first + 3
    assert session.console_errors == []


def test_failing_exporter_is_shown(tmp_path: Path, open_panel: object) -> None:
    """A Pushgateway configured on a closed port shows as failing, with the agent's own
    error text and backlog."""
    agent = make_agent(tmp_path, flush_interval="1s", pushgateway_port=free_port())
    agent.start()
    try:
        session: Session = open_panel(agent.socket_path)  # type: ignore[operator]
        page = session.page
        card = page.wait_for_selector('article[data-exporter="pushgateway"][data-ok="false"]', timeout=WAIT_MS)
        assert card is not None
        status = agent.status()
        exporter = status["exporters"]["pushgateway"]  # type: ignore[index]
        assert exporter["ok"] is False
        assert card.query_selector(".badge").text_content() == "failing"  # type: ignore[union-attr]
        assert card.query_selector("dd.error").text_content() == exporter["last_error"]  # type: ignore[union-attr]
        assert "Failing since" in (card.text_content() or "")
        assert session.console_errors == []
    finally:
        agent.stop()


def test_flush_now_by_keyboard_flushes_the_agent(agent: Agent, open_panel: object) -> None:
    """Tab to "Flush now" and press Enter: the page confirms flush #N and the agent's
    status shows exactly one more flush (no timed flush runs in this config)."""
    session: Session = open_panel(agent.socket_path)  # type: ignore[operator]
    page = session.page
    wait_live(page)
    before = agent.status()["flush"]["total"]  # type: ignore[index]
    page.focus("#flush")
    page.keyboard.press("Enter")
    page.wait_for_selector('#flush-result[data-ok="true"]', timeout=WAIT_MS)
    text = page.text_content("#flush-result") or ""
    assert text.startswith("Flushed at ")
    assert text.endswith(f"(flush #{before + 1})")
    assert agent.status()["flush"]["total"] == before + 1  # type: ignore[index]
    assert session.console_errors == []


def test_agent_absent_stopped_and_restarted(tmp_path: Path, open_panel: object) -> None:
    """With no agent the page says so (naming the socket); once the agent starts the page
    goes live; stopping it brings the banner back; restarting it resumes the charts past
    the old seq. The panel server survives all of it."""
    agent = make_agent(tmp_path)
    session: Session = open_panel(agent.socket_path)  # type: ignore[operator]
    page = session.page
    page.wait_for_selector('#banner[data-kind="down"]', timeout=WAIT_MS)
    assert (page.text_content("#banner") or "").startswith(
        f"The agent is not reachable: cannot reach the agent at {agent.socket_path}: "
    )
    try:
        agent.start()
        wait_live(page)
        wait_attribute_at_least(page, "#chart-cpu", "data-last-seq", 2)
        assert page.is_hidden("#banner")
        agent.stop()
        page.wait_for_selector('#banner[data-kind="down"]', timeout=WAIT_MS)
        assert page.text_content("#link") == "agent unreachable"
        seq_before = last_seq(page)
        agent.start()
        wait_live(page)
        wait_attribute_at_least(page, "#chart-cpu", "data-last-seq", seq_before + 1)
        assert page.is_hidden("#banner")
        assert session.panel.process.poll() is None
    finally:
        agent.stop()


@pytest.mark.parametrize("width", [1280, 420])
def test_layout_fits_the_window(agent: Agent, open_panel: object, width: int) -> None:
    """At 1280×800 and on a narrow window nothing overflows sideways."""
    session: Session = open_panel(agent.socket_path, width=width)  # type: ignore[operator]
    page = session.page
    wait_live(page)
    wait_attribute_at_least(page, "#chart-network", "data-points", 2)
    assert page.evaluate("document.documentElement.scrollWidth") == width


def _request(port: int, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_cross_site_flush_and_foreign_host_are_refused(agent: Agent) -> None:
    """A flush from another Origin gets 403 and does not flush; a request naming a
    non-loopback Host (DNS rebinding) gets 421; the same-origin flush works."""
    panel = start_panel(agent.socket_path)
    try:
        host = f"127.0.0.1:{panel.port}"
        before = agent.status()["flush"]["total"]  # type: ignore[index]
        status, body = _request(panel.port, "POST", "/api/flush", {"Host": host, "Origin": "http://evil.example"})
        assert (status, json.loads(body)) == (403, {"ok": False, "error": "cross-site request refused (Origin check)"})
        status, _ = _request(panel.port, "POST", "/api/flush", {"Host": host})
        assert status == 403
        assert agent.status()["flush"]["total"] == before  # type: ignore[index]
        status, _ = _request(panel.port, "GET", "/", {"Host": f"evil.example:{panel.port}"})
        assert status == 421
        deadline = time.monotonic() + START_SECONDS
        while True:  # the bridge connects right after start-up; until then a flush is refused with 503
            status, body = _request(panel.port, "POST", "/api/flush", {"Host": host, "Origin": f"http://{host}"})
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200
        assert json.loads(body)["flush"]["total"] == before + 1
    finally:
        stop_panel(panel)


def test_token_guards_every_request(agent: Agent) -> None:
    """With --token, requests without it get 401; ?token= sets a cookie and redirects;
    a bearer header is accepted."""
    panel = start_panel(agent.socket_path, "--token", "s3cret")
    try:
        host = f"127.0.0.1:{panel.port}"
        assert _request(panel.port, "GET", "/", {"Host": host})[0] == 401
        assert _request(panel.port, "GET", "/api/history", {"Host": host, "Authorization": "Bearer nope"})[0] == 401
        connection = http.client.HTTPConnection("127.0.0.1", panel.port, timeout=10)
        connection.request("GET", "/?token=s3cret")
        response = connection.getresponse()
        assert response.status == 303
        assert response.getheader("Location") == "/"
        cookie = response.getheader("Set-Cookie") or ""
        assert cookie.startswith("argus_panel_token=s3cret;")
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        connection.close()
        assert _request(panel.port, "GET", "/", {"Host": host, "Cookie": "argus_panel_token=s3cret"})[0] == 200
        assert _request(panel.port, "GET", "/api/history", {"Host": host, "Authorization": "Bearer s3cret"})[0] == 200
    finally:
        stop_panel(panel)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--listen", "0.0.0.0:8765"],
            "argus: --listen 0.0.0.0:8765 is not a loopback address; add --allow-remote and --token to expose it\n",
        ),
        (
            ["--listen", "0.0.0.0:8765", "--allow-remote"],
            "argus: --listen 0.0.0.0:8765 with --allow-remote needs --token (anyone on the network could flush)\n",
        ),
        (["--listen", "localhost"], "argus: --listen 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8765)\n"),
    ],
)
def test_remote_listen_needs_flag_and_token(args: list[str], message: str) -> None:
    """Listening beyond loopback without --allow-remote and --token is bad usage: exit 2
    with one sentence on stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "argus_telemetry", "panel", *args], capture_output=True, text=True, timeout=30
    )
    assert (result.returncode, result.stderr, result.stdout) == (2, message, "")


class ScriptedAgent(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A protocol-v1 peer that says hello, sends one snapshot and a `gap` of 3, answers
    `status` with a fixed status and refuses `flush` with an error line, as the agent
    does for a user it does not trust."""

    daemon_threads = True
    block_on_close = False


SCRIPTED_STATUS: dict[str, object] = {
    "version": "9.9.9",
    "uptime_seconds": 5.0,
    "flush": {"total": 0, "last_time": None},
    "spool": {"snapshots": 0, "bytes": 0, "oldest_time": None},
    "dropped": {"max_bytes": 0},
    "exporters": {},
}


class ScriptedSession(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        snapshot = {
            "schema": 1,
            "seq": 7,
            "time": "2026-12-04T10:00:00Z",
            "host": "scripted",
            "interval_seconds": 2.0,
            "cpu": {"usage_percent": 12.5, "cores": [10.0, 15.0]},
            "memory": {"total_bytes": 100, "available_bytes": 50, "used_bytes": 50, "used_percent": 50.0},
            "disk": {"devices": {}},
            "network": {"interfaces": {}},
        }
        self.wfile.write(hello_line(version="9.9.9", host="scripted", interval_seconds=2.0))
        self.wfile.write(snapshot_line(json.dumps(snapshot).encode()))
        self.wfile.write(gap_line(3))
        for line in self.rfile:
            op = json.loads(line)["op"]
            if op == "flush":
                self.wfile.write(error_line("flush is allowed only to root or the agent's user"))
            else:
                self.wfile.write(status_line(SCRIPTED_STATUS))


@pytest.fixture
def scripted_agent(tmp_path: Path) -> Iterator[Path]:
    private = tmp_path / "run"
    private.mkdir(mode=0o700)
    path = private / "TelemetryPipe.sock"
    server = ScriptedAgent(str(path), ScriptedSession)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_gap_banner_and_refused_flush(scripted_agent: Path, open_panel: object) -> None:
    """A `gap` from the stream shows a banner with the number skipped, and a flush the
    agent refuses shows the agent's own error text, not success."""
    session: Session = open_panel(scripted_agent)  # type: ignore[operator]
    page = session.page
    page.wait_for_selector('#banner[data-kind="gap"]', timeout=WAIT_MS)
    assert page.text_content("#banner") == "3 snapshot(s) were skipped for this panel: it fell behind the live stream."
    assert page.text_content("#host") == "scripted"
    page.click("#flush")
    page.wait_for_selector('#flush-result[data-ok="false"]', timeout=WAIT_MS)
    assert page.text_content("#flush-result") == (
        "Flush failed: the agent refused: flush is allowed only to root or the agent's user"
    )
