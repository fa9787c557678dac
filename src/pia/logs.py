"""Logging: JSON lines for machines (``<data_dir>/logs/pia.jsonl``, rotated 10 MB x 3) and a readable
console format for people. Configured once, by the CLI.

Every JSON record has ``ts`` (ISO 8601 UTC), ``level``, ``logger``, ``msg``, the keys passed with
``extra={...}``, and the keys bound for the current task with :func:`bind`. Follow a symbol or an
event type with jq, e.g. ``jq -c 'select(.symbol == "BTC-USD")' var/logs/pia.jsonl`` or
``jq -c 'select(.event == "ConsensusChanged")' var/logs/pia.jsonl``.

File writes happen on a listener thread (QueueHandler/QueueListener), never on the event loop.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.handlers
import queue
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("pia_log_context", default=None)

# attributes every LogRecord has; anything else on a record came from `extra`
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def bind(**keys: Any) -> Iterator[None]:
    """Add ``keys`` to every record logged in this context (this task and what it awaits)."""
    token = _context.set({**(_context.get() or {}), **keys})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound context onto the record (in the logging thread, before it is queued)."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get() or {}
        for key, value in ctx.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_extras(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return orjson.dumps(out, default=_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class ConsoleFormatter(logging.Formatter):
    """``12:00:01 INFO  feed streaming  source=simulated instruments=31`` (nested values as compact JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        parts = [f"{ts} {record.levelname:<5} {record.getMessage()}"]
        for key, value in _extras(record).items():
            text = value if isinstance(value, str) else orjson.dumps(value, default=_default).decode()
            parts.append(f"{key}={text}")
        line = "  ".join(parts[:1]) + ("  " + " ".join(parts[1:]) if len(parts) > 1 else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


@dataclass
class LogHandle:
    """What :func:`setup_logging` installed; :meth:`close` flushes and removes it."""

    listener: logging.handlers.QueueListener | None
    handlers: list[logging.Handler]
    path: Path | None

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            for h in self.listener.handlers:
                h.close()
        root = logging.getLogger()
        for h in self.handlers:
            root.removeHandler(h)
            h.close()


def setup_logging(
    *,
    level: str,
    console_level: str = "INFO",
    log_dir: Path | None,
    max_bytes: int = 10_000_000,
    backups: int = 3,
    console: TextIO | None = None,
) -> LogHandle:
    """Install the JSON file handler (when ``log_dir`` is given) and the console handler on the root logger."""
    root = logging.getLogger()
    handlers: list[logging.Handler] = []
    listener = None
    path = None
    ctx = ContextFilter()
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "pia.jsonl"
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setFormatter(JsonFormatter())
        file_handler.setLevel(level)
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        qh = _PreformattedQueueHandler(q)
        qh.setLevel(level)
        qh.addFilter(ctx)
        listener = logging.handlers.QueueListener(q, file_handler, respect_handler_level=True)
        listener.start()
        handlers.append(qh)
    ch = logging.StreamHandler(console or sys.stderr)
    ch.setFormatter(ConsoleFormatter())
    ch.setLevel(console_level)
    ch.addFilter(ctx)
    handlers.append(ch)
    for h in handlers:
        root.addHandler(h)
    levels = [logging.getLevelName(level), logging.getLevelName(console_level)]
    root.setLevel(min(int(x) for x in levels))
    return LogHandle(listener, handlers, path)


class _PreformattedQueueHandler(logging.handlers.QueueHandler):
    """Keeps ``extra`` keys on the queued record (the stock handler keeps only the message)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record.message = record.getMessage()
        record.msg = record.message
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        return record
