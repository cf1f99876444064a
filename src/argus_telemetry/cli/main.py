"""`argus`: the argparse tree. ArgusError → one sentence on stderr; exit 0/1/2.

Each subcommand's work lives in its own module, imported only when that command runs
(the agent must not pay for the panel's or the installer's imports).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from argus_telemetry import __version__
from argus_telemetry.errors import ArgusError

if TYPE_CHECKING:
    from argus_telemetry.agent import Agent
    from argus_telemetry.config.model import Config

log = logging.getLogger("argus_telemetry.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="argus", description="Argus Telemetry host agent.")
    parser.add_argument("--version", action="version", version=f"argus {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_arg(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "-c", "--config", metavar="FILE", help="config file (default: $ARGUS_CONFIG, then the platform default)"
        )

    def socket_arg(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--socket", metavar="PATH", help="the agent's stream endpoint")

    run = commands.add_parser("run", help="run the agent in the foreground")
    config_arg(run)

    config = commands.add_parser("config", help="check or show the configuration")
    config_commands = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_arg(config_commands.add_parser("check", help="validate the configuration"))
    config_arg(config_commands.add_parser("show", help="print the effective configuration"))

    spool = commands.add_parser("spool", help="inspect the local spool")
    spool_commands = spool.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("stats", "what is buffered"), ("verify", "integrity check")):
        sub = spool_commands.add_parser(action, help=text)
        config_arg(sub)
        sub.add_argument("--json", action="store_true", help="machine-readable output")

    watch = commands.add_parser("watch", help="live view of the agent's stream")
    socket_arg(watch)
    watch.add_argument("--json", action="store_true", help="print the raw protocol lines")

    status = commands.add_parser("status", help="the running agent's status")
    socket_arg(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    panel = commands.add_parser("panel", help="the local control panel (web UI)")
    socket_arg(panel)
    panel.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:8765")
    panel.add_argument("--open", action="store_true", help="open the page in a browser")
    panel.add_argument(
        "--allow-remote", action="store_true", help="allow listening on a non-loopback address (needs --token)"
    )
    panel.add_argument("--token", metavar="TOKEN", help="access token (required with --allow-remote)")

    service = commands.add_parser("service", help="install and control the OS service")
    service_commands = service.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("install", "uninstall", "start", "stop", "status"):
        sub = service_commands.add_parser(action, help=f"{action} the service")
        sub.add_argument("--root", metavar="DIR", help="stage files under DIR instead of / (no systemctl)")
        if action == "install":
            sub.add_argument("--config", metavar="FILE", help="install this config file")
            sub.add_argument("--ca-cert", metavar="FILE", help="add this root CA to the OS trust store")
        if action == "uninstall":
            sub.add_argument("--purge", action="store_true", help="also remove config and data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 runtime failure, 2 bad usage/config)."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ArgusError as exc:
        print(f"argus: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # last resort: one sentence, traceback only on request
        if os.environ.get("ARGUS_DEBUG"):
            raise
        print(f"argus: internal error: {type(exc).__name__}: {exc} (set ARGUS_DEBUG=1 for details)", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    command: str = args.command
    if command == "run":
        return _run(args.config)
    if command == "config":
        return _config(args.action, args.config)
    if command == "spool":
        from argus_telemetry.cli.spool_cmd import spool_stats, spool_verify

        config, _ = _load(args.config)
        return (
            spool_stats(config, as_json=args.json)
            if args.action == "stats"
            else spool_verify(config, as_json=args.json)
        )
    if command == "watch":
        from argus_telemetry.cli.watch import watch

        return watch(args.socket, as_json=args.json)
    if command == "status":
        from argus_telemetry.cli.status_cmd import show_status

        return show_status(args.socket, as_json=args.json)
    if command == "panel":
        from argus_telemetry.panel.app import run_panel

        return run_panel(
            socket_path=args.socket,
            listen=args.listen,
            open_browser=args.open,
            allow_remote=args.allow_remote,
            token=args.token,
        )
    if command == "service":
        from argus_telemetry.service.cli import service_command

        return service_command(args)
    raise AssertionError(command)


def _load(explicit: str | None) -> tuple[Config, str]:
    from argus_telemetry.config.load import load_config, resolve_path

    path = resolve_path(explicit)
    return load_config(path), str(path) if path else ""


def _config(action: str, explicit: str | None) -> int:
    from argus_telemetry.config.load import load_config, resolve_path
    from argus_telemetry.config.render import render_config

    path = resolve_path(explicit)
    config = load_config(path)
    if action == "check":
        print(f"{path if path else 'built-in defaults'}: OK")
    else:
        sys.stdout.write(render_config(config))
    return 0


def _run(explicit: str | None) -> int:
    from argus_telemetry.config.load import load_config, resolve_path
    from argus_telemetry.logs import setup_logging

    path = resolve_path(explicit)
    config = load_config(path)
    _skip_ssl_unless_needed(config)
    import asyncio

    from argus_telemetry.agent import Agent

    setup_logging(os.environ.get("ARGUS_LOG_LEVEL", "INFO"))
    agent = Agent(config, config_path=str(path) if path else "")
    asyncio.run(_serve(agent))
    return 0


def _skip_ssl_unless_needed(config: Config) -> None:
    """Keep OpenSSL out of an agent that has no use for it.

    asyncio imports `ssl` when present (~4 MiB RSS, a sixth of the agent's budget) but
    works without it; an agent with no exporter never makes a TLS connection, so mark
    `ssl` as unavailable before asyncio is imported. Nothing else in the process
    imports it then; an exporter configured later (restart) brings it back.
    """
    from argus_telemetry.export.setup import needs_ssl

    if "ssl" not in sys.modules and "asyncio" not in sys.modules and not needs_ssl(config):
        sys.modules["ssl"] = None  # type: ignore[assignment]  # the documented way to block an import


async def _serve(agent: Agent) -> None:
    import asyncio
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    await agent.run(stop)
