"""The program files the service runs: a venv under /opt/argus-telemetry, built offline.

The venv uses the interpreter running the installer (its base, not a venv of it) and gets
a copy of the running `argus_telemetry` package plus every installed distribution its
requirements reach. Nothing is downloaded, so what was tested is what gets installed.
A new venv is built beside the old one and swapped in by rename.
"""

from __future__ import annotations

import compileall
import json
import re
import shutil
import sys
import time
import venv
from importlib import metadata
from pathlib import Path

import argus_telemetry
from argus_telemetry.errors import ServiceError

DIST_NAME = "argus-telemetry"
RECORD_NAME = "installed.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def venv_python(program_dir: Path) -> Path:
    """The interpreter the service runs: `<program_dir>/venv/bin/python3`."""
    return program_dir / "venv" / "bin" / "python3"


def base_prefix() -> Path:
    """The prefix of the interpreter the venv is built on (resolved through venvs)."""
    return Path(sys.base_prefix).resolve()


def read_record(program_dir: Path) -> dict[str, str] | None:
    """The record of the installed version, or None when nothing is installed."""
    path = program_dir / RECORD_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"{path}: cannot read the installed version ({exc}); reinstall after uninstall") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), str):
        raise ServiceError(f"{path}: no installed version recorded; reinstall after uninstall")
    return {str(k): str(v) for k, v in data.items()}


def write_record(program_dir: Path, version: str) -> None:
    record = {
        "version": version,
        "python": str(base_prefix()),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = program_dir / RECORD_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def build_program(program_dir: Path, *, final_dir: Path, version: str) -> None:
    """Build `<program_dir>/venv` from the running code and swap it in.

    `final_dir` is where the files will live at run time (differs from `program_dir`
    under `--root`); it goes into the `argus` launcher's `#!` line."""
    program_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    program_dir.chmod(0o755)
    new = program_dir / "venv.new"
    old = program_dir / "venv.old"
    for stale in (new, old):
        shutil.rmtree(stale, ignore_errors=True)
    venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(new)
    site = new / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for dist in _closure(DIST_NAME):
        _copy_distribution(dist, site, version)
    launcher = new / "bin" / "argus"
    launcher.write_text(
        f"#!{venv_python(final_dir)}\nimport sys\nfrom argus_telemetry.cli.main import main\nsys.exit(main())\n",
        encoding="utf-8",
    )
    launcher.chmod(0o755)
    # The service cannot write __pycache__ (ProtectSystem=strict): compile once here.
    compileall.compile_dir(str(site), quiet=2, workers=1)
    current = program_dir / "venv"
    if current.exists():
        current.rename(old)
    new.rename(current)
    shutil.rmtree(old, ignore_errors=True)


def _closure(root: str) -> list[metadata.Distribution]:
    """`root` and every installed distribution its requirements reach (extras left out;
    a requirement that is not installed was not needed on this platform)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = _normalize(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name == _normalize(root):
                raise ServiceError(f"the {root} distribution is not installed in {sys.prefix}") from None
            continue
        seen[name] = dist
        for requirement in dist.requires or []:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue
            match = _NAME.match(spec.strip())
            if match:
                todo.append(match.group(0))
    return list(seen.values())


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _copy_distribution(dist: metadata.Distribution, site: Path, version: str) -> None:
    if _normalize(dist.metadata["Name"]) == DIST_NAME:
        _copy_self(site, version)
        return
    files = dist.files
    if files is None or _is_editable(dist):
        raise ServiceError(f"cannot copy {dist.metadata['Name']}: it is not a regular installed distribution")
    for entry in files:
        parts = entry.parts
        if parts and (parts[0] == ".." or "__pycache__" in parts):
            continue  # console scripts in bin/, bytecode (rebuilt by compileall)
        source = Path(str(dist.locate_file(entry)))
        if not source.is_file():
            continue
        target = site / Path(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _is_editable(dist: metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    info = json.loads(text).get("dir_info", {})
    return bool(isinstance(info, dict) and info.get("editable"))


def _copy_self(site: Path, version: str) -> None:
    """The running `argus_telemetry` package (editable or not) plus a minimal dist-info."""
    source = Path(argus_telemetry.__file__).parent
    shutil.copytree(source, site / "argus_telemetry", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    info = site / f"argus_telemetry-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {DIST_NAME}\nVersion: {version}\n", encoding="utf-8")
    (info / "INSTALLER").write_text("argus service install\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[console_scripts]\nargus = argus_telemetry.cli.main:main\n", encoding="utf-8"
    )
