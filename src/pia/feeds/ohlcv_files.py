"""OHLCV files read into validated bar arrays (for the replay feed and for tests).

Supported (format ``auto`` detects each by its first bytes, not its name):

- CSV with a header (also ``.csv.gz``): a time column named ``date``, ``timestamp``, ``time``,
  ``datetime``, ``open_time`` or ``t`` (any case) and ``open high low close volume`` (or ``o h l c v``);
  other columns, such as a leading unnamed row index, are ignored;
- headerless Binance kline CSV (``binance_csv``, or a CSV whose first row is all numbers):
  open_time, open, high, low, close, volume, then anything;
- Parquet and Feather / Arrow IPC (freqtrade: ``date`` as timestamp[ns, UTC]);
- OctoBot ``.json.gz`` (``{"1m": [times, opens, highs, lows, closes, volumes], ...}``; the timeframe
  is the ``interval`` argument), pandas "columns" JSON and Binance REST kline arrays.

Times become int ns UTC: datetimes with a zone are converted, naive ones are taken as UTC; numbers are
seconds, ms, µs or ns by magnitude (per row); strings must be ISO-like (``2012-01-03`` = midnight UTC).
Rows that fail validation are dropped and counted by reason (the first reason that applies); what is
kept is strictly increasing in time. An unreadable file or a missing column raises :class:`ConfigError`.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl

from pia.errors import ConfigError
from pia.events import BAR_DTYPE
from pia.feeds.base import BarArray
from pia.intervals import parse_interval

FileFormat = Literal["auto", "csv", "parquet", "feather", "binance_csv", "octobot"]

# drop reasons, in the order they are checked
BAD_TIME = "bad_time"  # missing or unparseable time, or outside the int64-ns range
BAD_PRICE = "bad_price"  # an open/high/low/close missing, NaN, infinite or <= 0
HIGH_BELOW_LOW = "high_below_low"
OUTSIDE_RANGE = "open_close_outside_range"  # open or close outside [low, high]
BAD_VOLUME = "bad_volume"  # negative, infinite, or missing while other rows have volume
MISALIGNED = "misaligned"  # open time not on a boundary of the file's interval
DUPLICATE_TIME = "duplicate_time"  # a later row with the same open time (the first one is kept)

TIME_NAMES = ("date", "timestamp", "time", "datetime", "open_time", "t")
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "v"),
}
_SYMBOL_COLUMNS = ("symbol", "ticker", "pair")
_FIELDS = ("open", "high", "low", "close", "volume")
_ISO_DATE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")
_I64_LIMIT = 9.2e18  # |ns| must stay below 2**63

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class LoadedFile:
    """One file's validated bars (oldest first), how many rows it had, and the rows dropped by reason."""

    path: Path
    bars: BarArray
    rows: int
    dropped: Mapping[str, int]  # reason -> count, only reasons that dropped something


def load_ohlcv(path: str | os.PathLike[str], format: FileFormat = "auto", *, interval: str | None = None) -> LoadedFile:
    """Read and validate one OHLCV file. ``interval`` selects an OctoBot timeframe and, when given,
    drops rows whose open time is not on that interval's boundaries."""
    p = Path(path)
    try:
        frame = _read(p, format, interval)
        t_ns, t_ok = _times(frame.get_column("t"), p)
        cols = {name: frame.get_column(name).cast(pl.Float64, strict=False).to_numpy() for name in _FIELDS}
    except ConfigError:
        raise
    except (OSError, pl.exceptions.PolarsError, orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise ConfigError(f"{p}: cannot read OHLCV data: {exc}") from None
    bars, dropped = _validate(t_ns, t_ok, cols, interval)
    return LoadedFile(path=p, bars=bars, rows=frame.height, dropped=dropped)


# ----------------------------------------------------------------------------------------- reading
def _read(path: Path, fmt: FileFormat, interval: str | None) -> pl.DataFrame:
    """The file as a frame with columns ``t`` (any dtype) and open/high/low/close/volume (any dtype)."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    kind = _sniff(path) if fmt in ("auto", "csv") else fmt
    if fmt == "csv" and kind != "csv":
        raise ConfigError(f"{path}: format 'csv' given but the file looks like {kind}")
    if kind == "parquet":
        return _standardize(pl.read_parquet(path), path)
    if kind == "feather":
        with path.open("rb") as fh:
            is_stream = fh.read(4) == b"\xff\xff\xff\xff"  # Arrow IPC stream rather than file format
        return _standardize(pl.read_ipc_stream(path) if is_stream else pl.read_ipc(path), path)
    if kind in ("json", "octobot"):
        return _read_json(path, interval, octobot_only=kind == "octobot")
    return _read_csv(path, positional=kind == "binance_csv")


def _open_head(path: Path, n: int) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(n)
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as gz:
            head = gz.read(n)
    return head


def _sniff(path: Path) -> str:
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PAR1"):
        return "parquet"
    if magic.startswith(b"ARROW1") or magic.startswith(b"\xff\xff\xff\xff"):
        return "feather"
    head = _open_head(path, 64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise ConfigError(f"{path}: file is empty")
    return "json" if head[:1] in (b"{", b"[") else "csv"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, *, positional: bool) -> pl.DataFrame:
    """A CSV with a header row (columns by name), or without one (columns by position, Binance layout).
    ``positional`` (format ``binance_csv``) takes columns by position even when a header row is present."""
    lines = _open_head(path, 4096).decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise ConfigError(f"{path}: file is empty")
    sep = max((",", ";", "\t"), key=first.count)
    fields = [f.strip().strip('"') for f in first.split(sep)]
    header = not all(_is_number(f) for f in fields)
    raw = pl.read_csv(
        path,
        has_header=header,
        separator=sep,
        infer_schema=False,  # all strings: a stray bad value becomes a dropped row, not a failed read
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
    )
    if header and not positional:
        return _standardize(raw, path)
    return _positional(raw, path, "Binance kline CSV")


def _positional(raw: pl.DataFrame, path: Path, what: str) -> pl.DataFrame:
    """Columns by position: open_time, open, high, low, close, volume (Binance kline layout)."""
    if raw.width < 6:
        raise ConfigError(
            f"{path}: {what} needs at least 6 columns (open_time, open, high, low, close, volume), found {raw.width}"
        )
    return raw.select(pl.nth(i).alias(name) for i, name in enumerate(("t", *_FIELDS)))


def _standardize(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    by_name: dict[str, str] = {}
    for col in raw.columns:
        by_name.setdefault(col.strip().lstrip("\ufeff").lower(), col)
    for name in _SYMBOL_COLUMNS:
        if name in by_name:
            values = raw.get_column(by_name[name]).drop_nulls().unique().sort()
            if values.len() > 1:
                shown = ", ".join(str(v) for v in values.head(5).to_list())
                raise ConfigError(
                    f"{path}: column {by_name[name]!r} holds several instruments ({shown} ...); "
                    "replay needs one file per instrument"
                )
    chosen: dict[str, str] = {}
    missing: list[str] = []
    for target, names in (("t", TIME_NAMES), *FIELD_NAMES.items()):
        found = next((by_name[n] for n in names if n in by_name), None)
        if found is None:
            missing.append(f"{target if target != 't' else 'time'} (one of: {', '.join(names)})")
        else:
            chosen[target] = found
    if missing:
        raise ConfigError(f"{path}: missing column {'; '.join(missing)}; found columns: {', '.join(raw.columns)}")
    return raw.select(pl.col(src).alias(dst) for dst, src in chosen.items())


def _read_json(path: Path, interval: str | None, *, octobot_only: bool) -> pl.DataFrame:
    with path.open("rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    doc: Any = orjson.loads(data)
    if isinstance(doc, dict) and doc and all(_is_interval(k) for k in doc):
        if interval is None:
            raise ConfigError(f"{path}: OctoBot file holds timeframes {', '.join(doc)}; set its interval")
        if interval not in doc:
            raise ConfigError(f"{path}: no {interval!r} candles in this OctoBot file (it has {', '.join(doc)})")
        columns = doc[interval]
        if not isinstance(columns, list) or len(columns) < 6 or not all(isinstance(c, list) for c in columns):
            raise ConfigError(f"{path}: {interval!r}: expected 6 lists (times, opens, highs, lows, closes, volumes)")
        if len({len(c) for c in columns[:6]}) != 1:
            raise ConfigError(f"{path}: {interval!r}: the 6 lists differ in length")
        return pl.DataFrame(
            [pl.Series(name, col, strict=False) for name, col in zip(("t", *_FIELDS), columns, strict=False)]
        )
    if octobot_only:
        raise ConfigError(f"{path}: not an OctoBot file (expected {{timeframe: [6 lists]}} at the top level)")
    if isinstance(doc, dict) and _has_ohlc(doc):  # pandas "columns" orient: {"date": {"0": ..}, "open": {..}} or lists
        series = [pl.Series(k, list(v.values()) if isinstance(v, dict) else v, strict=False) for k, v in doc.items()]
        return _standardize(pl.DataFrame(series), path)
    if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc):
        return _standardize(pl.DataFrame(doc, strict=False, infer_schema_length=None), path)
    if isinstance(doc, list) and doc and all(isinstance(r, list) for r in doc):  # Binance REST klines
        width = min(len(r) for r in doc)
        cols = [pl.Series(f"c{i}", [r[i] for r in doc], strict=False) for i in range(min(width, 6))]
        return _positional(pl.DataFrame(cols), path, "JSON kline array")
    raise ConfigError(f"{path}: unrecognised JSON layout (expected OctoBot, pandas columns or kline arrays)")


def _has_ohlc(doc: dict[str, Any]) -> bool:
    keys = {k.strip().lower() for k in doc}
    return bool(keys & set(TIME_NAMES)) and all(keys & set(FIELD_NAMES[k]) for k in ("open", "close"))


def _is_interval(code: str) -> bool:
    try:
        parse_interval(code)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- times
def _times(s: pl.Series, path: Path) -> tuple[I64, Mask]:
    """Open times as int ns UTC and a mask of the rows whose time is valid."""
    dtype = s.dtype
    if dtype == pl.Date:
        s = s.cast(pl.Datetime("ns"))
        dtype = s.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        phys = s.dt.cast_time_unit("ns").to_physical()
        return phys.fill_null(0).to_numpy().astype(np.int64), phys.is_not_null().to_numpy()
    if dtype == pl.String:
        text = s.str.strip_chars()
        sample = text.drop_nulls().filter(text.drop_nulls() != "").head(1).to_list()
        if not sample:
            return np.zeros(len(s), np.int64), np.zeros(len(s), np.bool_)
        if _is_number(sample[0]):
            as_int = text.cast(pl.Int64, strict=False)
            as_float = text.cast(pl.Float64, strict=False)
            s = as_int if as_int.null_count() == as_float.null_count() else as_float
            dtype = s.dtype
        elif _ISO_DATE.match(sample[0]):
            parsed = text.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
            return _times(parsed, path)
        else:
            raise ConfigError(
                f"{path}: cannot parse time {sample[0]!r}: expected epoch numbers or ISO 8601 "
                "dates (YYYY-MM-DD[ HH:MM:SS][zone])"
            )
    if dtype.is_integer():
        ints = s.cast(pl.Int64, strict=False)
        return _epoch_int(ints.fill_null(0).to_numpy().astype(np.int64), ints.is_not_null().to_numpy())
    if dtype.is_float():
        return _epoch_float(s.cast(pl.Float64).to_numpy().astype(np.float64))
    raise ConfigError(f"{path}: time column has unsupported type {dtype}")


def _unit_ns(magnitude: F64) -> I64:
    """ns per unit, by magnitude: < 1e11 seconds, < 1e14 ms, < 1e17 µs, else ns."""
    return np.select(
        [magnitude < 1e11, magnitude < 1e14, magnitude < 1e17],
        [1_000_000_000, 1_000_000, 1_000],
        1,
    ).astype(np.int64)


def _epoch_int(v: I64, ok: Mask) -> tuple[I64, Mask]:
    unit = _unit_ns(np.abs(v.astype(np.float64)))
    ok = ok & (np.abs(v.astype(np.float64)) * unit < _I64_LIMIT)
    return np.where(ok, v, 0) * unit, ok


def _epoch_float(v: F64) -> tuple[I64, Mask]:
    ok = np.isfinite(v)
    mag = np.abs(np.where(ok, v, 0.0))
    unit = _unit_ns(mag)
    ok &= mag * unit < _I64_LIMIT
    safe = np.where(ok, v, 0.0)
    # round to whole µs first: float seconds/ms carry ~0.1 µs of noise that ns would keep
    us = np.where(unit >= 1_000, np.round(safe * (unit / 1_000)), np.round(safe / 1_000))
    return (us.astype(np.int64) * 1_000), ok


# -------------------------------------------------------------------------------------- validation
def _validate(t: I64, t_ok: Mask, cols: dict[str, F64], interval: str | None) -> tuple[BarArray, dict[str, int]]:
    o, h, lo, c, v = (np.asarray(cols[k], dtype=np.float64) for k in _FIELDS)
    keep = np.ones(len(t), dtype=np.bool_)
    dropped: dict[str, int] = {}

    def drop(bad: Mask, reason: str) -> None:
        hit = bad & keep
        count = int(hit.sum())
        if count:
            dropped[reason] = dropped.get(reason, 0) + count
            keep[hit] = False

    drop(~t_ok, BAD_TIME)
    prices = np.stack([o, h, lo, c])
    drop(~np.all(np.isfinite(prices) & (prices > 0), axis=0), BAD_PRICE)
    drop(h < lo, HIGH_BELOW_LOW)
    drop((o < lo) | (o > h) | (c < lo) | (c > h), OUTSIDE_RANGE)
    if len(v) and np.isnan(v).all():
        v = np.zeros_like(v)  # a file without volume (mark or index prices)
    drop(~np.isfinite(v) | (v < 0), BAD_VOLUME)
    if interval is not None:
        safe = np.where(keep, t, 0)
        drop(parse_interval(interval).floor_array(safe) != safe, MISALIGNED)

    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(t[idx], kind="stable")]
    dup = np.zeros(len(idx), dtype=np.bool_)
    dup[1:] = t[idx][1:] == t[idx][:-1]
    if dup.any():
        dropped[DUPLICATE_TIME] = int(dup.sum())
    idx = idx[~dup]

    out = np.empty(len(idx), dtype=BAR_DTYPE)
    out["open_time"] = t[idx]
    for name, arr in zip(_FIELDS, (o, h, lo, c, v), strict=True):
        out[name] = arr[idx]
    return out, dropped
