"""The ``pia`` command line. ``pia --help`` lists the commands; each has its own ``--help``.

Exit codes: 0 clean stop, 1 unexpected error, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
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

    bf = sub.add_parser(
        "backfill",
        help="fetch history from the venues into the store (resumable, idempotent)",
        description="Fetch closed candles from the live venues (Binance spot/futures, Alpaca) for the chosen "
        "instruments, timeframes and dates into the store, with a progress bar. Each chunk is committed: an "
        "interrupted run resumes where it stopped; running it twice stores nothing new.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_arg(bf)
    bf.add_argument("--start", required=True, type=_date, metavar="YYYY-MM-DD", help="first day (UTC)")
    bf.add_argument("--end", type=_date, metavar="YYYY-MM-DD", help="day after the last (UTC; default: now)")
    bf.add_argument("--symbols", metavar="A,B", help="instruments (default: all configured)")
    bf.add_argument(
        "--tf", metavar="LABELS", help="timeframe labels, e.g. Now,12h (default: all configured timeframes)"
    )
    bf.add_argument("--quiet", action="store_true", help="no progress bar")

    sig = sub.add_parser(
        "signals",
        help="the current votes and consensus, from the stored bars (or --list the signals)",
        description="Compute every signal on the newest stored bars of each timeframe and show the votes, the "
        "regime, the weighted consensus per timeframe and the instrument's consensus. Without SYMBOL: one line "
        "per instrument. Fear & Greed and funding are not stored, so those signals abstain here.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _config_arg(sig)
    sig.add_argument("symbol", nargs="?", metavar="SYMBOL", help="one instrument, e.g. BTC-USD (default: all)")
    sig.add_argument("--tf", metavar="LABEL", help="one timeframe label, e.g. Now (default: all)")
    sig.add_argument("--json", action="store_true", help="JSON instead of a table")
    sig.add_argument("--list", action="store_true", help="list the registered signals: name, family, warm-up")

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
        if args.command == "backfill":
            return _backfill(args)
        if args.command == "signals":
            from pia import cli_signals

            if args.list:
                return cli_signals.list_signals(sys.stdout)
            return cli_signals.run(args.config, args.symbol, args.tf, args.json)
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


def _date(text: str) -> int:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
    return int(day.timestamp()) * 1_000_000_000


def _backfill(args: argparse.Namespace) -> int:
    from pia.backfill import backfill
    from pia.clock import LiveClock
    from pia.config import load_config
    from pia.logs import setup_logging

    settings = load_config(args.config)
    universe = settings.universe
    known = {i.symbol for i in universe.instruments}
    symbols = [s.strip() for s in args.symbols.split(",")] if args.symbols else sorted(known)
    unknown = [s for s in symbols if s not in known]
    labels = [t.strip() for t in args.tf.split(",")] if args.tf else [t.label for t in universe.timeframes]
    bad = [lbl for lbl in labels if lbl not in {t.label for t in universe.timeframes}]
    if unknown or bad:
        sys.stderr.write(
            "pia backfill: "
            + "; ".join(
                ([f"unknown instrument(s): {', '.join(unknown)}"] if unknown else [])
                + ([f"unknown timeframe label(s): {', '.join(bad)}"] if bad else [])
            )
            + "\n"
        )
        return 2
    clock = LiveClock()
    end = args.end if args.end is not None else clock.now_ns()
    if end <= args.start:
        sys.stderr.write("pia backfill: --end must be after --start\n")
        return 2
    handle = setup_logging(level="INFO", console_level="WARNING", log_dir=settings.data_dir / "logs")
    try:
        report = asyncio.run(
            backfill(
                settings,
                symbols=symbols,
                intervals=[universe.timeframe(lbl).interval for lbl in labels],
                start_ns=args.start,
                end_ns=end,
                clock=clock,
                progress=not args.quiet,
            )
        )
    except KeyboardInterrupt:
        sys.stderr.write("pia backfill: interrupted; run it again to resume\n")
        return 130
    finally:
        handle.close()
    sys.stdout.write(report.line() + "\n")
    return 0


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
