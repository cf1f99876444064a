"""The Windows service's platform-free parts: command line, argument parsing, config and
data dir selection, and the runner that turns an SCM stop into the agent's stop event."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path, PureWindowsPath

import pytest

from argus_telemetry.config.load import load_config
from argus_telemetry.errors import UsageError
from argus_telemetry.service._winsvc import (
    ServiceArgs,
    ServiceRunner,
    parse_service_args,
    service_command_line,
    service_config,
)

PROGRAM = PureWindowsPath(r"C:\Program Files\PSG\ArgusTelemetry")


def test_command_line_quotes_paths_with_spaces() -> None:
    """The ImagePath quotes each path with spaces and names the service module."""
    line = service_command_line(PROGRAM / "python" / "python.exe", PROGRAM / "config.toml", PROGRAM)
    assert line == (
        r'"C:\Program Files\PSG\ArgusTelemetry\python\python.exe" -B -m argus_telemetry.service.windows'
        r' --config "C:\Program Files\PSG\ArgusTelemetry\config.toml"'
        r' --data-dir "C:\Program Files\PSG\ArgusTelemetry"'
    )


def test_parse_service_args_reads_config_and_data_dir() -> None:
    """The arguments the MSI writes parse into paths."""
    args = parse_service_args(["--config", r"C:\P\config.toml", "--data-dir", r"C:\P\."])
    assert args == ServiceArgs(config=Path(r"C:\P\config.toml"), data_dir=Path(r"C:\P\."))


def test_parse_service_args_without_arguments() -> None:
    """No arguments: no config file, no data dir override."""
    assert parse_service_args([]) == ServiceArgs(config=None, data_dir=None)


def test_parse_service_args_rejects_unknown_with_usage_error() -> None:
    """An unknown argument raises UsageError naming it (the service must not sys.exit)."""
    with pytest.raises(UsageError) as caught:
        parse_service_args(["--bogus"])
    assert str(caught.value) == "service arguments: unrecognized arguments: --bogus"


def test_service_config_missing_file_means_defaults_in_the_data_dir(tmp_path: Path) -> None:
    """The MSI ships no config.toml: defaults, with the program folder as data dir."""
    config, source = service_config(ServiceArgs(config=tmp_path / "config.toml", data_dir=tmp_path), load_config)
    assert source == ""
    assert config.agent.data_dir == str(tmp_path)
    assert config.agent.interval == 2.0


def test_service_config_file_data_dir_wins(tmp_path: Path) -> None:
    """A config that sets [agent] data_dir keeps it; its other values are used."""
    path = tmp_path / "config.toml"
    path.write_text('[agent]\ndata_dir = "D:/argus"\ninterval = "5s"\n', encoding="utf-8")
    config, source = service_config(ServiceArgs(config=path, data_dir=tmp_path), load_config)
    assert source == str(path)
    assert config.agent.data_dir == "D:/argus"
    assert config.agent.interval == 5.0


def test_service_config_file_without_data_dir_gets_the_program_folder(tmp_path: Path) -> None:
    """A config without data_dir gets the data dir from the command line."""
    path = tmp_path / "config.toml"
    path.write_text('[agent]\ninterval = "3s"\n', encoding="utf-8")
    config, _ = service_config(ServiceArgs(config=path, data_dir=tmp_path / "prog"), load_config)
    assert config.agent.data_dir == str(tmp_path / "prog")
    assert config.agent.interval == 3.0


def test_runner_stop_from_another_thread_ends_main_after_its_cleanup() -> None:
    """SvcStop (another thread) sets the stop event; main finishes its flush and returns."""
    events: list[str] = []
    started = threading.Event()

    async def main(stop: asyncio.Event) -> None:
        events.append("running")
        started.set()
        await stop.wait()
        events.append("flushed")

    runner = ServiceRunner(main)
    thread = threading.Thread(target=runner.run)
    thread.start()
    assert started.wait(10)
    runner.request_stop()
    thread.join(10)
    assert not thread.is_alive()
    assert events == ["running", "flushed"]


def test_runner_stop_before_run_stops_at_once() -> None:
    """A stop requested before the loop exists is not lost."""
    seen: list[bool] = []

    async def main(stop: asyncio.Event) -> None:
        seen.append(stop.is_set())

    runner = ServiceRunner(main)
    runner.request_stop()
    runner.run()
    assert seen == [True]


def test_runner_propagates_a_crash() -> None:
    """An agent failure leaves run() with the exception (the host then exits non-zero)."""

    async def main(stop: asyncio.Event) -> None:
        raise RuntimeError("spool gone")

    with pytest.raises(RuntimeError, match="spool gone"):
        ServiceRunner(main).run()
