"""The built MSI's tables, read back with `msiinfo export`: what Windows Installer will do
(service registration, upgrade rules, the certificate custom actions, the layout) and the
guard against wixl's RemoveExistingProducts sequencing bug (ICE63)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.wine.conftest import BuiltMsis

UPGRADE_CODE = "{6631B1E9-4664-4926-B824-2A46F2DB916E}"
SERVICE = "PSG - Argus Telemetry"


def table(msi: Path, name: str) -> list[dict[str, str]]:
    """The rows of one table as dicts (msiinfo's header: columns, types, keys; then rows)."""
    assert shutil.which("msiinfo"), "msiinfo is not installed (apt-get install msitools)"
    text = subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True, check=True).stdout
    lines = text.replace("\r", "").split("\n")
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=True)) for line in lines[3:] if line]


def sequence(msi: Path) -> dict[str, tuple[int, str]]:
    return {row["Action"]: (int(row["Sequence"]), row["Condition"]) for row in table(msi, "InstallExecuteSequence")}


@pytest.fixture(scope="module")
def msi(msis: BuiltMsis) -> Path:
    return msis.old


def test_service_install_row(msi: Path) -> None:
    """One service: contract names, own process (16), auto start (2), normal errors,
    LocalSystem, hosted by the shipped python.exe with the service module's arguments."""
    assert table(msi, "ServiceInstall") == [
        {
            "ServiceInstall": "ArgusService",
            "Name": SERVICE,
            "DisplayName": SERVICE,
            "ServiceType": "16",
            "StartType": "2",
            "ErrorControl": "1",
            "LoadOrderGroup": "",
            "Dependencies": "",
            "StartName": "LocalSystem",
            "Password": "",
            "Arguments": '-B -m argus_telemetry.service.windows --config "[INSTALLDIR]config.toml"'
            ' --data-dir "[INSTALLDIR]."',
            "Component_": "ServiceHost",
            "Description": "Monitors and reports telemetry metrics from client systems",
        }
    ]
    (host,) = [row for row in table(msi, "File") if row["Component_"] == "ServiceHost"]
    assert host["FileName"] == "python.exe"


def test_service_control_events(msi: Path) -> None:
    """Start on install (0x1), stop on install and uninstall (0x2|0x20), delete on
    uninstall (0x80) = 163, waiting for each."""
    assert table(msi, "ServiceControl") == [
        {
            "ServiceControl": "ArgusServiceControl",
            "Name": SERVICE,
            "Event": "163",
            "Arguments": "",
            "Wait": "1",
            "Component_": "ServiceHost",
        }
    ]


def test_restart_on_failure(msi: Path) -> None:
    """Recovery: restart after 5 s, 5 s, 60 s; reset after a day; applied by MsiConfigureServices
    between InstallServices and StartServices."""
    assert table(msi, "MsiServiceConfigFailureActions") == [
        {
            "MsiServiceConfigFailureActions": "ArgusRestart",
            "Name": SERVICE,
            "Event": "5",
            "ResetPeriod": "86400",
            "RebootMessage": "",
            "Command": "",
            "Actions": "1[~]1[~]1",
            "DelayActions": "5000[~]5000[~]60000",
            "Component_": "ServiceHost",
        }
    ]
    steps = sequence(msi)
    assert steps["InstallServices"][0] < steps["MsiConfigureServices"][0] < steps["StartServices"][0]


def test_upgrade_rows_and_downgrade_condition(msis: BuiltMsis) -> None:
    """Older versions are upgraded (removed), newer ones detected only and refused by a
    launch condition carrying the downgrade message; same UpgradeCode in both builds."""
    for msi, version in ((msis.old, "1.0.0"), (msis.new, "1.1.0")):
        assert table(msi, "Upgrade") == [
            {
                "UpgradeCode": UPGRADE_CODE,
                "VersionMin": "",
                "VersionMax": version,
                "Language": "",
                "Attributes": "1",
                "Remove": "",
                "ActionProperty": "WIX_UPGRADE_DETECTED",
            },
            {
                "UpgradeCode": UPGRADE_CODE,
                "VersionMin": version,
                "VersionMax": "",
                "Language": "",
                "Attributes": "2",
                "Remove": "",
                "ActionProperty": "WIX_DOWNGRADE_DETECTED",
            },
        ]
        assert table(msi, "LaunchCondition") == [
            {
                "Condition": "NOT WIX_DOWNGRADE_DETECTED",
                "Description": "A newer version of PSG - Argus Telemetry is already installed. "
                "Uninstall it first to install this older version; setup will now exit.",
            }
        ]
        props = {row["Property"]: row["Value"] for row in table(msi, "Property")}
        assert (props["ProductVersion"], props["UpgradeCode"]) == (version, UPGRADE_CODE)
        assert props["SecureCustomProperties"] == "WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED"


def test_remove_existing_products_where_ice63_allows_it(msi: Path) -> None:
    """wixl 0.101 moves RemoveExistingProducts after InstallFiles (4002) when a custom action
    is sequenced After="InstallFiles"; real Windows Installer then fails upgrades. It must sit
    between InstallValidate and InstallInitialize."""
    steps = sequence(msi)
    assert steps["InstallValidate"][0] < steps["RemoveExistingProducts"][0] < steps["InstallInitialize"][0]


def test_certificate_custom_actions(msis: BuiltMsis, msi: Path) -> None:
    """certutil from System64Folder (SystemFolder is the 32-bit one); install and removal are
    deferred (0x400) without impersonation (0x800) around an EXE-from-property action (50):
    3122, and 3186 for the removal that ignores its exit code (0x40). Install runs after
    InstallFiles when the certificate's component is installed; removal when it is removed."""
    actions = {row["Action"]: row for row in table(msi, "CustomAction")}
    assert actions["SetCertutilPath"]["Source"] == "CERTUTIL"
    assert actions["SetCertutilPath"]["Target"] == "[System64Folder]certutil.exe"
    assert int(actions["SetCertutilPath"]["Type"]) & 0x3F == 51
    assert (actions["InstallRootCert"]["Type"], actions["InstallRootCert"]["Source"]) == ("3122", "CERTUTIL")
    assert actions["InstallRootCert"]["Target"] == '-f -addstore Root "[#CaCertFile]"'
    assert (actions["RemoveRootCert"]["Type"], actions["RemoveRootCert"]["Source"]) == ("3186", "CERTUTIL")
    assert actions["RemoveRootCert"]["Target"] == f"-delstore Root {msis.ca_thumbprint}"
    steps = sequence(msi)
    assert steps["SetCertutilPath"][0] < steps["InstallInitialize"][0]
    assert steps["InstallRootCert"] == (4001, "$CaCert=3")
    assert steps["InstallFiles"][0] < steps["InstallRootCert"][0] < steps["InstallFinalize"][0]
    assert steps["RemoveRootCert"] == (3450, "$CaCert=2")
    assert steps["InstallInitialize"][0] < steps["RemoveRootCert"][0]
    (cert,) = [row for row in table(msi, "File") if row["File"] == "CaCertFile"]
    assert (cert["FileName"], cert["Component_"]) == ("r3.crt", "CaCert")


def test_directory_layout_and_logs(msi: Path) -> None:
    """Program Files (64-bit)\\PSG\\ArgusTelemetry with python and Logs; Logs is created
    and locked to SYSTEM/Administrators full control, users read."""
    dirs = {row["Directory"]: (row["Directory_Parent"], row["DefaultDir"]) for row in table(msi, "Directory")}
    assert dirs["PSGDIR"] == ("ProgramFiles64Folder", "PSG")
    assert dirs["INSTALLDIR"] == ("PSGDIR", "ArgusTelemetry")
    assert dirs["PYTHONDIR"] == ("INSTALLDIR", "python")
    assert dirs["LOGSDIR"] == ("INSTALLDIR", "Logs")
    assert {"Directory_": "LOGSDIR", "Component_": "LogsFolder"} in table(msi, "CreateFolder")
    assert table(msi, "MsiLockPermissionsEx") == [
        {
            "MsiLockPermissionsEx": "LogsAcl",
            "LockObject": "LOGSDIR",
            "Table": "CreateFolder",
            "SDDL": "D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)",
            "Condition": "",
        }
    ]


def test_components_are_64_bit_and_payload_is_complete(msi: Path) -> None:
    """Every component is 64-bit (0x100); the payload holds the interpreter, pywin32's
    service host pieces, our package and its precompiled service module; no pywin32 demos."""
    components = table(msi, "Component")
    assert all(int(row["Attributes"]) & 0x100 for row in components)
    names = {row["FileName"].split("|")[-1] for row in table(msi, "File")}
    for wanted in (
        "python.exe",
        "python311.dll",
        "python311._pth",
        "servicemanager.pyd",
        "win32service.pyd",
        "pywintypes311.dll",
        "windows.py",
        "windows.cpython-311.pyc",
        "argus.cmd",
    ):
        assert wanted in names, wanted
    assert "pythonwin.exe" not in names
    summary = subprocess.run(["msiinfo", "suminfo", str(msi)], capture_output=True, text=True, check=True).stdout
    assert "Template: x64;1033" in summary
