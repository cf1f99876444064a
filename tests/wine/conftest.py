"""Fixtures for the Windows packaging tests: two MSIs built once per session by
packaging/windows/build.py (downloads cached in build/windows/cache, gitignored), and a
fresh Wine prefix per test that is always shut down (`wineserver -k`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tests.wine.wine import WinePrefix

REPO = Path(__file__).resolve().parents[2]
OLD_VERSION = "1.0.0"
NEW_VERSION = "1.1.0"


@dataclass(frozen=True)
class BuiltMsis:
    old: Path
    new: Path
    ca_cert: Path
    ca_thumbprint: str


def _build(version: str, ca_cert: Path, out: Path, work: Path) -> Path:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "packaging" / "windows" / "build.py"),
            "--version",
            version,
            "--ca-cert",
            str(ca_cert),
            "--out",
            str(out),
            "--work",
            str(work / version),
            "--cache",
            str(REPO / "build" / "windows" / "cache"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"build.py {version} failed: {done.stderr}"
    return out / f"argus-telemetry-{version}-x64.msi"


@pytest.fixture(scope="session")
def msis(tmp_path_factory: pytest.TempPathFactory) -> BuiltMsis:
    """Two builds of the current tree, versions 1.0.0 and 1.1.0, with a throwaway root CA."""
    import hashlib
    import ssl

    work = tmp_path_factory.mktemp("msi")
    ca_cert = work / "root.crt"
    ca_cert.write_bytes(trustme.CA().cert_pem.bytes())
    der = ssl.PEM_cert_to_DER_cert(ca_cert.read_text())
    thumbprint = hashlib.sha1(der).hexdigest().upper()
    old = _build(OLD_VERSION, ca_cert, work / "dist", work / "work")
    new = _build(NEW_VERSION, ca_cert, work / "dist", work / "work")
    return BuiltMsis(old=old, new=new, ca_cert=ca_cert, ca_thumbprint=thumbprint)


@pytest.fixture
def wine_prefix(tmp_path: Path) -> Iterator[WinePrefix]:
    """A fresh 64-bit Wine prefix, booted and held by one persistent wineserver; killed after."""
    prefix = WinePrefix(tmp_path / "prefix")
    try:
        prefix.boot()
        yield prefix
    finally:
        prefix.kill()
