"""Version rules of the installer: repair, upgrade, refused downgrade."""

from __future__ import annotations

import pytest

from argus_telemetry.errors import ServiceError
from argus_telemetry.service.base import Action, decide, version_key


def test_nothing_installed_is_a_fresh_install() -> None:
    """Without a recorded version the install is FRESH."""
    assert decide(None, "0.1.0") is Action.FRESH


def test_same_version_is_a_repair() -> None:
    """The same version (trailing zeros aside) repairs in place."""
    assert decide("0.1.0", "0.1.0") is Action.REPAIR
    assert decide("1.0", "1.0.0") is Action.REPAIR


@pytest.mark.parametrize(
    ("installed", "new"),
    [("0.1.0", "0.1.1"), ("0.9.9", "0.10.0"), ("1.0rc1", "1.0"), ("1.0.dev3", "1.0a1"), ("1.0", "1.0.post1")],
)
def test_newer_version_upgrades(installed: str, new: str) -> None:
    """A newer version, by PEP 440 ordering (not string order), is an UPGRADE."""
    assert decide(installed, new) is Action.UPGRADE


def test_older_version_is_refused_with_exit_2() -> None:
    """A downgrade raises ServiceError with exit 2 and a sentence naming both versions."""
    with pytest.raises(ServiceError) as caught:
        decide("0.2.0", "0.1.9")
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "version 0.2.0 is installed and 0.1.9 is older: downgrades are refused "
        "(uninstall 0.2.0 first to go back to 0.1.9); nothing was changed"
    )


def test_version_order() -> None:
    """dev < alpha < beta < rc < final < post, and 0.10 > 0.9."""
    ordered = ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.1", "1.10"]
    assert sorted(ordered, key=version_key) == ordered


def test_unknown_version_text_is_exit_2() -> None:
    """A version the installer cannot order is refused with exit 2, quoting it."""
    with pytest.raises(ServiceError) as caught:
        version_key("latest")
    assert caught.value.exit_code == 2
    assert str(caught.value) == '"latest" is not a version this installer understands (e.g. 1.2.3)'
