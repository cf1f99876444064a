"""Fetch the panel's chart library (uPlot) from the npm registry into `static/vendor/`.

Run by `make assets` (`python -m argus_telemetry.panel.assets`). Third-party code is
never committed: `npm pack` downloads the pinned tarball, its sha512 is checked against
the pin below before anything is extracted, and only the two files the page needs are
copied out. Already present and matching files are left alone, so this is cheap to rerun.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from argus_telemetry.errors import ArgusError

UPLOT_VERSION = "1.6.32"
# `npm view uplot@1.6.32 dist.integrity`: the registry's Subresource Integrity string.
UPLOT_INTEGRITY = "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw=="
# tarball member → file name under static/vendor/
UPLOT_FILES = {
    "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "package/dist/uPlot.min.css": "uPlot.min.css",
    "package/LICENSE": "uPlot.LICENSE",
}
VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
STAMP = ".uplot-version"


class AssetError(ArgusError):
    """The chart library could not be fetched or failed its integrity check."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"panel assets: {self.reason}"


def integrity_of(data: bytes) -> str:
    """The npm/SRI integrity string (`sha512-<base64>`) of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def is_installed(vendor_dir: Path = VENDOR_DIR) -> bool:
    """True when every vendored file is present and was taken from the pinned tarball."""
    stamp = vendor_dir / STAMP
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != UPLOT_INTEGRITY:
        return False
    return all((vendor_dir / name).is_file() for name in UPLOT_FILES.values())


def fetch_tarball(workdir: Path) -> bytes:
    """Download the pinned uPlot tarball with `npm pack`; return its bytes once verified."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is not on PATH (Debian: apt-get install -y npm)")
    result = subprocess.run(
        [npm, "pack", f"uplot@{UPLOT_VERSION}", "--json", "--silent", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssetError(f"npm pack uplot@{UPLOT_VERSION} failed: {result.stderr.strip() or result.stdout.strip()}")
    try:
        filename = str(json.loads(result.stdout)[0]["filename"])
    except (ValueError, LookupError, TypeError) as exc:
        raise AssetError(f"npm pack printed no tarball name: {result.stdout[:200]!r}") from exc
    data = (workdir / filename).read_bytes()
    actual = integrity_of(data)
    if actual != UPLOT_INTEGRITY:
        raise AssetError(f"uplot@{UPLOT_VERSION} tarball has integrity {actual}, expected the pinned {UPLOT_INTEGRITY}")
    return data


def extract(tarball: Path, vendor_dir: Path) -> None:
    """Copy the needed members of a verified tarball into `vendor_dir` (nothing else)."""
    vendor_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as archive:
        for member, name in UPLOT_FILES.items():
            source = archive.extractfile(member)
            if source is None:
                raise AssetError(f"uplot@{UPLOT_VERSION} tarball has no file {member}")
            (vendor_dir / name).write_bytes(source.read())
    (vendor_dir / STAMP).write_text(UPLOT_INTEGRITY + "\n", encoding="utf-8")


def install(vendor_dir: Path = VENDOR_DIR) -> bool:
    """Make sure the pinned uPlot is in `vendor_dir`; return True if it was fetched now."""
    if is_installed(vendor_dir):
        return False
    with tempfile.TemporaryDirectory(prefix="argus-assets-") as tmp:
        workdir = Path(tmp)
        data = fetch_tarball(workdir)
        tarball = workdir / "verified.tgz"
        tarball.write_bytes(data)
        extract(tarball, vendor_dir)
    return True


def main() -> int:
    try:
        fetched = install()
    except ArgusError as exc:
        print(exc, file=sys.stderr)
        return 1
    state = "fetched" if fetched else "already present"
    print(f"uplot {UPLOT_VERSION}: {state} in {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
