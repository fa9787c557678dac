"""The ``pia`` command line. ``pia --help`` lists the commands; each has its own ``--help``.

Exit codes: 0 clean stop, 1 unexpected error, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from pia import __version__
from pia.errors import ConfigError, StoreError

DEFAULT_CONFIG = Path("configs/default.toml")
EPILOG = """\
environment:
  PIA_DATA_DIR           overrides [service] data_dir (store, logs)
  PIA_LOG_LEVEL          overrides [logging] level of the JSON log file
  PIA_TELEGRAM_TOKEN     Telegram bot token (secret)
  PIA_ALPACA_KEY_ID      Alpaca key id (secret)
  PIA_ALPACA_SECRET_KEY  Alpaca secret key (secret)
"""


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pia",
        description="pia — Portfolio Intelligence Agent: streams market data, computes signals on every "
        "closed bar, and folds them into a consensus per instrument.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the service until Ctrl-C / SIGTERM (or --duration)",
        description="Run the service: feeds -> bars -> signals -> consensus -> notifier, storing closed bars. "
        "Stops cleanly on Ctrl-C or SIGTERM (a second Ctrl-C exits at once) and prints a summary line.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_arg(run)
    run.add_argument(
        "--duration",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop cleanly after this much wall time (exit 0)",
    )

    config = sub.add_parser("config", help="configuration tools", description="Configuration tools.")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    check = config_sub.add_parser(
        "check",
        help="validate a config file and print the effective config (secrets masked)",
        description="Validate the config file (and the instruments file it names) and print the effective "
        "configuration as JSON, secrets masked. Exit 0 if valid, 2 with one message per problem if not.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_arg(check)
    return parser


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"TOML config file (default: {DEFAULT_CONFIG})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.config, args.duration)
        if args.command == "config" and args.config_command == "check":
            return _config_check(args.config)
        if args.command == "config":
            parser.parse_args(["config", "--help"])
        parser.print_help()
        return 2
    except ConfigError as exc:
        sys.stderr.write(f"pia: configuration error:\n{exc}\n")
        return 2
    except StoreError as exc:
        sys.stderr.write(f"pia: store error: {exc}\n")
        return 1


def _config_check(path: Path) -> int:
    from pia.config import load_config

    settings = load_config(path)
    sys.stdout.write(orjson.dumps(settings.masked(), option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stderr.write(
        f"pia: {path} is valid: {len(settings.universe.instruments)} instruments, "
        f"{len(settings.universe.timeframes)} timeframes\n"
    )
    return 0


def _run(path: Path, duration: float | None) -> int:
    from pia.app import build
    from pia.config import load_config
    from pia.logs import setup_logging

    settings = load_config(path)
    cfg = settings.config.logging
    handle = setup_logging(
        level=cfg.level,
        console_level=cfg.console_level,
        log_dir=settings.data_dir / "logs",
        max_bytes=cfg.max_bytes,
        backups=cfg.backups,
    )
    log = logging.getLogger("pia.cli")
    try:
        app = build(settings)
        summary = asyncio.run(app.run(duration, handle_signals=True))
    except (ConfigError, StoreError):
        raise
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.exception("pia stopped on an unexpected error")
        return 1
    finally:
        handle.close()
    sys.stdout.write(summary.line() + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
