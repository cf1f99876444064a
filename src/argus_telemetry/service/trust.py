"""The OS trust store on Debian-like systems: validate a PEM root CA, add it, remove it.

Validation runs `openssl x509` (the `openssl` package is a dependency of
`ca-certificates`, which `update-ca-certificates` comes from).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from argus_telemetry.errors import ServiceError

CA_DIR = Path("/usr/local/share/ca-certificates")
CA_NAME = "argus-telemetry-ca.crt"  # one fixed name: a new --ca-cert replaces the old one
_BEGIN = "-----BEGIN CERTIFICATE-----"


def validate_ca(path: Path) -> str:
    """The PEM text of `path` when it holds exactly one unexpired CA certificate;
    ServiceError (exit 2) naming the file and what is wrong otherwise."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ServiceError(f"{path}: the CA certificate file does not exist", exit_code=2) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceError(f"{path}: cannot read the CA certificate ({exc})", exit_code=2) from None
    count = text.count(_BEGIN)
    if count == 0:
        raise ServiceError(f"{path}: not a PEM certificate (no {_BEGIN} line)", exit_code=2)
    if count > 1:
        raise ServiceError(f"{path}: holds {count} certificates; give one root CA per file", exit_code=2)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServiceError("openssl is not installed (Debian package openssl); it checks the CA file", exit_code=1)
    shown = subprocess.run(
        [openssl, "x509", "-in", str(path), "-noout", "-subject", "-ext", "basicConstraints", "-checkend", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    output = shown.stdout + shown.stderr
    if "unable to load" in output.lower() or "could not" in output.lower():
        raise ServiceError(f"{path}: not a valid PEM certificate (openssl cannot read it)", exit_code=2)
    if "CA:TRUE" not in output:
        raise ServiceError(f"{path}: the certificate is not a CA (basicConstraints CA:TRUE is missing)", exit_code=2)
    if "will expire" in output:
        raise ServiceError(f"{path}: the CA certificate has expired", exit_code=2)
    if shown.returncode != 0:
        raise ServiceError(f"{path}: openssl rejected the certificate: {output.strip()}", exit_code=2)
    return text


def install_ca(root: Path, pem: str, *, update: bool) -> Path:
    """Write the CA under `<root>/usr/local/share/ca-certificates/` and, when `update`,
    run `update-ca-certificates` so /etc/ssl/certs trusts it. Returns the file written."""
    target = root / CA_DIR.relative_to("/") / CA_NAME
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    target.write_text(pem, encoding="ascii")
    target.chmod(0o644)
    if update:
        _update()
    return target


def remove_ca(root: Path, *, update: bool) -> bool:
    """Remove the installed CA; True when there was one."""
    target = root / CA_DIR.relative_to("/") / CA_NAME
    if not target.exists():
        return False
    target.unlink()
    if update:
        # Without --fresh the old /etc/ssl/certs symlink is left dangling.
        _update("--fresh")
    return True


def _update(*flags: str) -> None:
    tool = shutil.which("update-ca-certificates")
    if tool is None:
        raise ServiceError("update-ca-certificates is not installed (Debian package ca-certificates)")
    done = subprocess.run([tool, *flags], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServiceError(f"update-ca-certificates failed: {(done.stderr or done.stdout).strip()}")
