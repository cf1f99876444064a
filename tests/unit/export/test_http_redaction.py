"""A backend that echoes request headers in its error page must not leak our secrets
into ExportError text (which goes to logs, `status` and dead-letter files)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from argus_telemetry.config.model import AuthConfig, Secret, TlsConfig
from argus_telemetry.export.http import build_client, error_for_response

NOW = 1_796_400_000.0
BASIC = AuthConfig(username="ops", password=Secret("hunter2-basic"))
BASIC_HEADER_VALUE = "b3BzOmh1bnRlcjItYmFzaWM="  # base64("ops:hunter2-basic")


class _EchoHeaders(BaseHTTPRequestHandler):
    """Answers every POST with 401 (or 400) and a body that repeats every request header."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = "\n".join(f"{name}: {value}" for name, value in self.headers.items()).encode()
        status = 400 if self.path == "/bad" else 401
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHeaders)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=30)


@pytest.mark.parametrize(
    ("auth", "headers", "secrets"),
    [
        (
            AuthConfig(username="ops", password=Secret("hunter2-basic")),
            {},
            ["hunter2-basic", "b3BzOmh1bnRlcjItYmFzaWM="],
        ),
        (AuthConfig(bearer_token=Secret("tok-bearer-s3cret")), {}, ["tok-bearer-s3cret"]),
        (AuthConfig(), {"X-Api-Key": "rw-header-s3cret"}, ["rw-header-s3cret"]),
    ],
    ids=["basic", "bearer", "custom-header"],
)
async def test_echoed_secrets_are_blanked(
    echo_url: str, auth: AuthConfig, headers: dict[str, str], secrets: list[str]
) -> None:
    """401 and 400 answers that echo our headers: the error text keeps the rest of the
    page (tenant, user agent) but shows *** wherever a secret stood."""
    client = build_client(
        "loki", tls=TlsConfig(), auth=auth, timeout_seconds=30, version="9.9.9", headers=headers, url=echo_url
    )
    try:
        for path, status in (("/push", 401), ("/bad", 400)):
            response = await client.post(f"{echo_url}{path}", content=b"{}", headers={"X-Scope-OrgID": "tenant-a"})
            error = error_for_response("loki", response, NOW)
            assert error is not None
            assert error.status == status
            text = str(error)
            for secret in secrets:
                assert secret not in text
            assert "***" in text
            assert "tenant-a" in text
            assert "argus-telemetry/9.9.9" in text
    finally:
        await client.aclose()
