"""Real servers for tests: Debian's `prometheus-pushgateway` on a free loopback port.

`Pushgateway.start()` runs the binary (a missing binary fails the test), reads the port
from its log, waits for `/-/ready`; `stop()` ends it; `start()` again reuses the port.
`groups()` reads `/api/v1/metrics`. TLS + basic auth via `web_config` (exporter-toolkit
YAML written by the test).
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import time
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

PUSHGATEWAY = "prometheus-pushgateway"
_LISTENING = re.compile(r'msg="Listening on" address=127\.0\.0\.1:(\d+)')


class Pushgateway:
    """One pushgateway process (restartable on the same port)."""

    def __init__(
        self,
        workdir: Path,
        *,
        web_config: Path | None = None,
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: tuple[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.web_config = web_config
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log = workdir / "pushgateway.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = "localhost" if self.ssl_context else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    def start(self, timeout: float = 30.0) -> Pushgateway:
        binary = shutil.which(PUSHGATEWAY)
        if binary is None:
            raise AssertionError(f"{PUSHGATEWAY} is not installed (apt-get install prometheus-pushgateway)")
        args = [
            binary,
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--persistence.file=",
            "--web.enable-admin-api",
        ]
        if self.web_config is not None:
            args.append(f"--web.config.file={self.web_config}")
        log = self._log.open("ab")
        offset = self._log.stat().st_size
        self.process = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        while self.port == 0:
            match = _LISTENING.search(self._log.read_bytes()[offset:].decode(errors="replace"))
            if match:
                self.port = int(match.group(1))
                break
            self._check_alive(deadline)
            time.sleep(0.05)
        while True:
            try:
                status, _ = self.request("GET", "/-/ready")
                if status == 200:
                    return self
            except OSError:
                pass
            self._check_alive(deadline)
            time.sleep(0.05)

    def _check_alive(self, deadline: float) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"pushgateway exited {self.process.returncode}: {self._log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"pushgateway not ready: {self._log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if self.basic_auth is not None:
            token = b64encode(f"{self.basic_auth[0]}:{self.basic_auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_context) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def groups(self) -> list[dict[str, Any]]:
        """`GET /api/v1/metrics` data: one dict per group."""
        status, body = self.request("GET", "/api/v1/metrics")
        assert status == 200, body
        data: list[dict[str, Any]] = json.loads(body)["data"]
        return data

    def group(self, job: str, instance: str) -> dict[str, Any] | None:
        for group in self.groups():
            if group["labels"].get("job") == job and group["labels"].get("instance") == instance:
                return group
        return None

    def text_metrics(self) -> str:
        status, body = self.request("GET", "/metrics")
        assert status == 200
        return body.decode()


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for exporter-toolkit's `basic_auth_users`, made by Debian's
    `htpasswd` (apache2-utils; missing: the test fails)."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise AssertionError("htpasswd is not installed (apt-get install apache2-utils)")
    out = subprocess.run([htpasswd, "-nbBC", "4", "user", password], capture_output=True, check=True, text=True)
    return out.stdout.strip().split(":", 1)[1]
