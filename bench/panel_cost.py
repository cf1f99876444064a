"""Cost of the control panel: panel server CPU s/h and RSS with one browser connected, and
page weight (KiB transferred on load).

Starts `argus run` (tmp config, `--interval`) and `argus panel` as subprocesses, opens the
page in Debian's Chromium, and samples the panel process with psutil for `--seconds`.
Then a second page load is measured request by request (headers + encoded body, as sent):
the static files, and the history for however many snapshots the agent has made by then,
also extrapolated to a full 10-minute window. Targets (issue 5): < 2 % of one core,
page < 500 KiB.

    .venv/bin/python bench/panel_cost.py [--seconds 120] [--interval 2s] [--json]
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from playwright.sync_api import Request, sync_playwright

from argus_telemetry.config.units import parse_duration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

WINDOW_SECONDS = 600.0


def start_agent(tmp: Path, interval: str) -> tuple[subprocess.Popen[bytes], Path]:
    private = tmp / "run"
    private.mkdir(mode=0o700)
    sock = private / "TelemetryPipe.sock"
    config = tmp / "config.toml"
    config.write_text(f'[agent]\ninterval = "{interval}"\ndata_dir = "{tmp / "data"}"\n[stream]\npath = "{sock}"\n')
    agent = subprocess.Popen(
        [sys.executable, "-m", "argus_telemetry", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(sock))
            except OSError:
                time.sleep(0.05)
                continue
            return agent, sock
    agent.kill()
    raise SystemExit(f"the agent's stream {sock} did not come up")


def start_panel(sock: Path) -> tuple[subprocess.Popen[str], str]:
    panel = subprocess.Popen(
        [sys.executable, "-m", "argus_telemetry", "panel", "--socket", str(sock), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert panel.stdout is not None
    line = panel.stdout.readline()
    if not line.startswith("argus panel: "):
        panel.kill()
        raise SystemExit(f"the panel did not start: {line!r}")
    return panel, line.split()[2]


def transferred(request: Request) -> int:
    """Bytes on the wire for one response: headers plus the (possibly gzipped) body."""
    sizes = request.sizes()
    return int(sizes["responseHeadersSize"]) + int(sizes["responseBodySize"])


def measure(seconds: float, interval: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="argus-panel-bench-") as tmp_name:
        tmp = Path(tmp_name)
        agent, sock = start_agent(tmp, interval)
        panel, url = start_panel(sock)
        process = psutil.Process(panel.pid)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(url)
                page.wait_for_selector('#link[data-state="live"]', timeout=20_000)
                before = process.cpu_times()
                start = time.monotonic()
                rss_peak = 0
                while time.monotonic() - start < seconds:
                    page.wait_for_timeout(1000)  # keeps the browser's event loop turning
                    rss_peak = max(rss_peak, process.memory_info().rss)
                after = process.cpu_times()
                elapsed = time.monotonic() - start
                cpu = (after.user - before.user) + (after.system - before.system)
                rss = process.memory_info().rss

                loads: dict[str, int] = {}
                fresh = browser.new_page(viewport={"width": 1280, "height": 800})
                fresh.on("requestfinished", lambda r: loads.__setitem__(urlsplit(r.url).path, transferred(r)))
                fresh.goto(url)
                fresh.wait_for_selector('#link[data-state="live"]', timeout=20_000)
                deadline = time.monotonic() + 10
                while "/api/history" not in loads and time.monotonic() < deadline:
                    fresh.wait_for_timeout(100)
                snapshots = int(fresh.evaluate("argusPanel.state.snaps.length"))
                browser.close()
        finally:
            panel.send_signal(signal.SIGTERM)
            panel.wait(timeout=10)
            if panel.stdout is not None:
                panel.stdout.close()
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=10)
    history = loads.get("/api/history", 0)
    static = sum(size for path, size in loads.items() if path != "/api/history")
    full_window = WINDOW_SECONDS / parse_duration(interval)
    history_full = history * full_window / snapshots if snapshots else 0.0
    return {
        "seconds": round(elapsed, 1),
        "interval_seconds": parse_duration(interval),
        "panel_cpu_seconds_per_hour": round(cpu / elapsed * 3600, 2),
        "panel_cpu_percent_of_one_core": round(cpu / elapsed * 100, 3),
        "panel_rss_mib": round(rss / 2**20, 1),
        "panel_rss_peak_mib": round(rss_peak / 2**20, 1),
        "page_static_kib": round(static / 1024, 1),
        "page_history_kib": round(history / 1024, 1),
        "history_snapshots": snapshots,
        "page_load_kib": round((static + history) / 1024, 1),
        "page_load_full_window_kib": round((static + history_full) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to sample the panel")
    parser.add_argument("--interval", default="2s", help="the agent's [agent] interval")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = measure(args.seconds, args.interval)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"panel, one browser, agent interval {figures['interval_seconds']:g} s, {figures['seconds']:g} s sampled")
    print(
        f"  CPU  {figures['panel_cpu_seconds_per_hour']:8.2f} s/h  "
        f"({figures['panel_cpu_percent_of_one_core']:.3f} % of one core; target < 2 %)"
    )
    print(f"  RSS  {figures['panel_rss_mib']:8.1f} MiB  (peak {figures['panel_rss_peak_mib']:.1f} MiB)")
    print(
        f"  page {figures['page_load_kib']:8.1f} KiB on load  (static {figures['page_static_kib']:.1f} KiB "
        f"+ history {figures['page_history_kib']:.1f} KiB for {figures['history_snapshots']} snapshots)"
    )
    print(f"  page {figures['page_load_full_window_kib']:8.1f} KiB with a full 10-minute history (target < 500 KiB)")


if __name__ == "__main__":
    main()
