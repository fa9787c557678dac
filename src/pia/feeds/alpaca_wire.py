"""Alpaca Market Data v2, the pure part: wire parsing, no I/O.

- REST ``GET /v2/stocks/bars`` pages: :func:`parse_bars_page` -> per-symbol sub-bar arrays, the
  ``next_page_token``, and what was dropped (by reason); :class:`BarsQuery` walks the pages.
- Stream frames (JSON text, an array of ``{"T": ...}`` objects): :func:`read_frame` sorts a frame into
  ``b`` (minute bar) / ``u`` (updated bar) messages, ``error`` messages and drops (by reason).
- Stream errors: :class:`AlpacaStreamError` (with the code and what to do about it).

A *sub-bar* is an Alpaca bar of a few minutes (``1Min`` live; ``15Min``/``30Min`` for history when
every candle boundary falls on its grid) with its start and end (:data:`SUB_DTYPE`). Session candles
are built from sub-bars in :mod:`pia.market_hours`.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import orjson

from pia.clock import Clock
from pia.errors import BadData, FeedError
from pia.feeds.base import BarArray
from pia.intervals import DAY, MINUTE, NS, iso, parse_interval
from pia.market_hours import NyseCalendar, is_intraday

log = logging.getLogger(__name__)

SUB_DTYPE = np.dtype(
    [
        ("open_time", np.int64),
        ("end_time", np.int64),
        ("open", np.float64),
        ("high", np.float64),
        ("low", np.float64),
        ("close", np.float64),
        ("volume", np.float64),
    ]
)
SubArray = BarArray
"""A structured array of :data:`SUB_DTYPE` rows, oldest first."""

_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
PAGE_LIMIT = 10_000


def parse_time(text: object) -> int:
    """RFC-3339 (``2026-01-02T15:31:00Z``, fractions up to ns, any offset) -> int ns UTC."""
    if not isinstance(text, str):
        raise BadData("bad_time", f"not a string: {text!r:.40}")
    m = _TIME.match(text)
    if m is None:
        raise BadData("bad_time", f"not RFC-3339: {text!r:.40}")
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    try:
        days = date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
    except ValueError as exc:
        raise BadData("bad_time", f"{text!r:.40}: {exc}") from None
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        raise BadData("bad_time", f"{text!r:.40}")
    ns = (days * 86400 + int(hh) * 3600 + int(mm) * 60 + int(ss)) * NS
    if frac:
        ns += int(frac.ljust(9, "0"))
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) * NS
    return ns


def format_time(ts_ns: int) -> str:
    """int ns -> ``2026-01-02T15:31:00Z`` (fractions only when there are any)."""
    secs, frac = divmod(ts_ns, NS)
    text = str(np.datetime64(secs, "s"))
    return f"{text}.{frac:09d}Z" if frac else f"{text}Z"


def timeframe_code(step_ns: int) -> str:
    """Alpaca's ``timeframe`` for a bar length: ``1Min`` .. ``59Min``, ``1Hour`` .. ``23Hour``, ``1Day``."""
    minutes = step_ns // MINUTE
    if step_ns == DAY:
        return "1Day"
    if step_ns % MINUTE or minutes <= 0 or (minutes >= 60 and minutes % 60) or minutes >= 24 * 60:
        raise ValueError(f"no Alpaca timeframe for {step_ns} ns")
    return f"{minutes}Min" if minutes < 60 else f"{minutes // 60}Hour"


# ---------------------------------------------------------------------------------- validation
def _number(obj: Mapping[str, Any], key: str) -> float:
    if key not in obj:
        raise BadData("missing_field", key)
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadData("bad_type", f"{key}={value!r:.40}")
    return float(value)


def _ohlcv(obj: Mapping[str, Any]) -> tuple[float, float, float, float, float]:
    o, h, lo, c, v = (_number(obj, k) for k in ("o", "h", "l", "c", "v"))
    if not all(math.isfinite(x) and x > 0 for x in (o, h, lo, c)):
        raise BadData("bad_price", f"o={o} h={h} l={lo} c={c}")
    if h < lo or not (lo <= o <= h and lo <= c <= h):
        raise BadData("bad_range", f"o={o} h={h} l={lo} c={c}")
    if not (math.isfinite(v) and v >= 0):
        raise BadData("bad_volume", f"v={v}")
    return o, h, lo, c, v


# ---------------------------------------------------------------------------------- errors
AUTH_CODES = frozenset({401, 402, 404, 408, 409, 411})
_HINTS = {
    401: "subscribed before authenticating",
    402: "wrong key or secret: check PIA_ALPACA_KEY_ID and PIA_ALPACA_SECRET_KEY",
    404: "authentication timed out",
    406: "connection limit exceeded: another connection with these keys is open (Alpaca allows one)",
    408: "the account has no market data v2 access",
    409: "the configured data_feed is not in the account's plan (the free plan has iex only)",
    411: "the key lacks the market data scope",
}


class AlpacaStreamError(FeedError):
    """The stream answered with ``{"T": "error", "code": ..., "msg": ...}``."""

    def __init__(self, code: int, msg: str) -> None:
        hint = _HINTS.get(code, "")
        super().__init__(f"alpaca stream error {code} {msg!r}" + (f": {hint}" if hint else ""))
        self.code = code
        self.msg = msg


class ProblemLog:
    """Counts by reason; logs each reason at most once a minute (with the count since the last line)."""

    def __init__(self, source: str, clock: Clock, message: str, level: int = logging.WARNING) -> None:
        self._source, self._clock, self._message, self._level = source, clock, message, level
        self.counts: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def add(self, reason: str, detail: str = "", n: int = 1) -> None:
        self.counts[reason] += n
        self._unlogged[reason] += n
        now = self._clock.monotonic()
        last = self._logged_at.get(reason)
        if last is None or now - last >= 60.0:
            extra = {"source": self._source, "reason": reason, "detail": detail[:200], "count": self._unlogged[reason]}
            log.log(self._level, self._message, extra={**extra, "total": self.counts[reason]})
            self._logged_at[reason] = now
            self._unlogged[reason] = 0


# ---------------------------------------------------------------------------------- REST pages
@dataclass
class BarsPage:
    """One decoded ``/v2/stocks/bars`` page: sub-bars per venue symbol, the next token, and drops."""

    bars: dict[str, SubArray]
    next_page_token: str | None
    dropped: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(len(a) for a in self.bars.values())


def parse_bars_page(body: Any, step_ns: int = MINUTE) -> BarsPage:
    """Decode a multi-symbol bars page (``{"bars": {SYM: [...]}, "next_page_token": ...}``).

    Each bar covers ``[t, t + step_ns)``. Invalid bars are dropped and counted by reason (never raised);
    a body that is not a bars page at all raises :class:`BadData` (``bad_page``)."""
    if not isinstance(body, Mapping):
        raise BadData("bad_page", f"expected an object, got {type(body).__name__}")
    token = body.get("next_page_token")
    if token is not None and not isinstance(token, str):
        raise BadData("bad_page", f"next_page_token {token!r:.40}")
    raw = body.get("bars")
    if raw is None:
        raw = {}
    if isinstance(raw, list):  # the single-symbol endpoint's shape
        symbol = body.get("symbol")
        raw = {symbol: raw} if isinstance(symbol, str) else {}
    if not isinstance(raw, Mapping):
        raise BadData("bad_page", f"bars is {type(raw).__name__}")
    dropped: Counter[str] = Counter()
    out: dict[str, SubArray] = {}
    for symbol, rows in raw.items():
        if not isinstance(rows, list):
            dropped["bad_page"] += 1
            continue
        parsed: list[tuple[int, int, float, float, float, float, float]] = []
        for row in rows:
            try:
                if not isinstance(row, Mapping):
                    raise BadData("bad_type", "bar is not an object")
                t = parse_time(row.get("t"))
                o, h, lo, c, v = _ohlcv(row)
            except BadData as exc:
                dropped[exc.reason] += 1
                continue
            if parsed and t <= parsed[-1][0]:
                dropped["out_of_order"] += 1
                continue
            parsed.append((t, t + step_ns, o, h, lo, c, v))
        out[str(symbol)] = np.array(parsed, dtype=SUB_DTYPE)
    return BarsPage(out, token or None, dropped)


# ---------------------------------------------------------------------------------- stream frames
@dataclass(frozen=True, slots=True)
class StreamBar:
    kind: str  # "b" minute bar, "u" updated (corrected) minute bar
    symbol: str  # venue symbol
    open_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def end_ns(self) -> int:
        return self.open_ns + MINUTE


def decode_frame(raw: bytes | str) -> list[Any]:
    """A server frame -> its list of messages (``BadData`` ``invalid_json`` / ``not_array``)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = "non_utf8" if "utf-8" in str(exc).lower() else "invalid_json"
        raise BadData(reason, str(exc)[:80]) from None
    if isinstance(data, dict):  # tolerated: a lone object
        return [data]
    if not isinstance(data, list):
        raise BadData("not_array", type(data).__name__)
    return data


def parse_stream_bar(msg: Mapping[str, Any]) -> StreamBar:
    """A ``b``/``u`` message -> :class:`StreamBar` (``BadData`` with the reason otherwise)."""
    kind = msg.get("T")
    if kind not in ("b", "u"):
        raise BadData("unknown_type", f"T={kind!r:.20}")
    symbol = msg.get("S")
    if not isinstance(symbol, str) or not symbol:
        raise BadData("missing_field", "S")
    t = parse_time(msg.get("t"))
    if t % MINUTE:
        raise BadData("misaligned", f"t={msg.get('t')!r:.40}")
    o, h, lo, c, v = _ohlcv(msg)
    return StreamBar(str(kind), symbol, t, o, h, lo, c, v)


@dataclass
class FrameContent:
    """What one stream frame holds: bars of known symbols (pia symbol, bar), errors, and drops."""

    bars: list[tuple[str, StreamBar]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)


def read_frame(raw: bytes | str, venues: Mapping[str, str]) -> FrameContent:
    """Sort a frame's messages: ``b``/``u`` of ``venues`` (venue -> pia symbol), ``error`` messages, and
    everything malformed (by reason). Other types (``success``, ``subscription``, trades ...) are skipped."""
    out = FrameContent()
    try:
        items = decode_frame(raw)
    except BadData as exc:
        out.dropped.append((exc.reason, str(exc)))
        return out
    for item in items:
        if not isinstance(item, dict):
            out.dropped.append(("bad_type", f"{item!r:.40}"))
            continue
        kind = item.get("T")
        if kind == "error":
            out.errors.append((error_code(item), str(item.get("msg", ""))))
        elif kind in ("b", "u"):
            try:
                bar = parse_stream_bar(item)
            except BadData as exc:
                out.dropped.append((exc.reason, str(exc)))
                continue
            symbol = venues.get(bar.symbol)
            if symbol is None:
                out.dropped.append(("unknown_symbol", bar.symbol[:32]))
            else:
                out.bars.append((symbol, bar))
        elif not isinstance(kind, str):
            out.dropped.append(("missing_field", "T"))
    return out


def control_messages(raw: bytes | str) -> list[dict[str, Any]]:
    """The ``success`` / ``error`` / ``subscription`` messages of a frame (none if it does not decode)."""
    try:
        items = decode_frame(raw)
    except BadData:
        return []
    return [i for i in items if isinstance(i, dict) and i.get("T") in ("success", "error", "subscription")]


def error_code(item: Mapping[str, Any]) -> int:
    code = item.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def concat_subs(parts: Sequence[SubArray]) -> SubArray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=SUB_DTYPE)


def check_interval(interval: str) -> None:
    """Session candles exist for intraday steps, ``nd``, ``1w`` and ``nM`` (every :mod:`pia.intervals` code)."""
    iv = parse_interval(interval)
    if iv.anchor_ns and iv.code != "1w":
        raise ValueError(f"alpaca: anchored intervals are not session intervals: {interval!r}")


# ---------------------------------------------------------------------------------- REST planning
def sub_step_for(cal: NyseCalendar, intervals: Sequence[str], start_ns: int, end_ns: int) -> int:
    """The longest Alpaca sub-bar (30, 15, 10, 5 or 1 minutes, epoch-aligned) whose grid holds every
    boundary of every ``intervals`` candle between ``start_ns`` and ``end_ns``: history can then be
    fetched as such bars instead of minutes (same candles, far fewer bars)."""
    steps = [parse_interval(iv) for iv in intervals]
    lo = max(0, cal.last_index_before(start_ns))
    hi = max(lo + 1, cal.last_index_before(end_ns) + 1)
    bounds = np.r_[cal.opens[lo:hi], cal.closes[lo:hi]]
    for minutes in (30, 15, 10, 5):
        grid = minutes * MINUTE
        if np.all(bounds % grid == 0) and all(iv.months or iv.step_ns >= DAY or iv.step_ns % grid == 0 for iv in steps):
            return grid
    return MINUTE


def catch_up_parts(
    cal: NyseCalendar, intervals: Sequence[str], start_ns: int, until_ns: int, *, coarse: bool
) -> list[tuple[int, int, int]]:
    """REST requests ``(start, end, bar length)`` covering ``[start_ns, until_ns)``: with ``coarse``,
    the longest bars whose grid holds every candle boundary in between, and minutes at both ends."""
    step = sub_step_for(cal, intervals, start_ns, until_ns)
    lo, hi = -(-start_ns // step) * step, until_ns // step * step
    parts = [(start_ns, until_ns, MINUTE)]
    if coarse and step > MINUTE and lo < hi:
        parts = [(start_ns, lo, MINUTE), (lo, hi, step), (hi, until_ns, MINUTE)]
    return [p for p in parts if p[0] < p[1]]


def history_start(cal: NyseCalendar, interval: str, end_ns: int, limit: int, max_sessions: int) -> int:
    """Open of the oldest candle needed for the newest ``limit`` candles closed by ``end_ns`` (the last
    session or group may still be in progress), looking back at most about ``max_sessions`` sessions
    (to the start of the group there); -1 if no session opened before ``end_ns``."""
    last = cal.last_index_before(end_ns)
    if last < 0:
        return -1
    lo = max(0, last - max_sessions + 1)
    idx = np.arange(lo, last + 1)
    if is_intraday(interval):
        step = parse_interval(interval).step_ns
        counts = -(-(cal.closes[idx] - cal.opens[idx]) // step)
        need = limit + int(counts[-1])
        from_end = np.cumsum(counts[::-1])[::-1]
        first = int(idx[np.flatnonzero(from_end >= need)[-1]]) if from_end[0] >= need else lo
    else:
        firsts = cal.group_table(interval)[0][idx]
        distinct = np.unique(firsts)
        first = int(distinct[-(limit + 1)]) if len(distinct) > limit else int(firsts[0])
    return cal.candle_from(interval, int(cal.opens[first]))[0]


class BarsQuery:
    """One paginated ``GET /v2/stocks/bars`` request (pure): the query of each page, and the pages merged.

    ``limit`` counts bars across symbols; a page may end in the middle of a symbol. Only bars starting
    at or after ``start_ns`` and ending by ``end_ns`` (closed ``step_ns`` bars) are kept."""

    def __init__(
        self, venues: Sequence[str], step_ns: int, start_ns: int, end_ns: int, *, feed: str, adjustment: str
    ) -> None:
        self.venues, self.step, self.start, self.end = list(venues), step_ns, start_ns, end_ns
        last_start = (end_ns - step_ns) // step_ns * step_ns
        self.empty = last_start < start_ns or not venues
        self.params: dict[str, str | int] = {
            "symbols": ",".join(venues),
            "timeframe": timeframe_code(step_ns),
            "start": format_time(start_ns),
            "end": format_time(max(last_start, start_ns)),
            "limit": PAGE_LIMIT,
            "feed": feed,
            "adjustment": adjustment,
            "sort": "asc",
        }
        self.pages = 0
        self.dropped: Counter[str] = Counter()
        self._parts: dict[str, list[SubArray]] = {v: [] for v in venues}
        self._tokens: set[str] = set()

    def add(self, body: Any) -> bool:
        """Take one page; True if another page follows (``params`` then carries its ``page_token``)."""
        page = parse_bars_page(body, self.step)
        self.pages += 1
        self.dropped.update(page.dropped)
        for venue, arr in page.bars.items():
            if venue in self._parts:
                keep = (arr["open_time"] >= self.start) & (arr["end_time"] <= self.end)
                if self.step < DAY:  # minute and hour bars are epoch-aligned (days: New York midnights)
                    keep &= arr["open_time"] % self.step == 0
                self._parts[venue].append(arr[keep])
        token = page.next_page_token
        if token is None:
            return False
        if token in self._tokens:
            raise BadData("bad_page", f"page token repeated: {token[:40]!r}")
        self._tokens.add(token)
        self.params["page_token"] = token
        return True

    def result(self) -> dict[str, SubArray]:
        return {v: concat_subs(parts) for v, parts in self._parts.items()}


class FeedHealth:
    """What :class:`~pia.feeds.alpaca.AlpacaBars` counts (its ``statistics()``), and the problems it logs
    (each kind at most once a minute)."""

    def __init__(self, source: str, clock: Clock) -> None:
        self.source = source
        self.connections = self.minute_bars = self.duplicates = self.catch_up_bars = self.auth_failures = 0
        self.candles: Counter[str] = Counter()
        self.quotes: Counter[str] = Counter()
        self.corrections: Counter[str] = Counter()
        self.stream_errors: Counter[int] = Counter()
        self.disconnects: Counter[str] = Counter()
        self.malformed = ProblemLog(source, clock, "alpaca message dropped")
        self.late = ProblemLog(source, clock, "alpaca correction to an emitted candle (not re-emitted)", logging.INFO)

    def outcome(self, outcome: str, kind: str, symbol: str, ts_ns: int) -> None:
        """Count what :meth:`~pia.market_hours.SessionAggregator.ingest` said of a ``b``/``u``/REST bar."""
        if outcome == "duplicate":
            self.duplicates += 1
        elif outcome == "corrected" or (outcome == "new" and kind == "u"):
            self.corrections["applied"] += 1
        elif outcome == "late":
            self.corrections["after_emit"] += 1
            self.late.add(kind, f"{symbol} {iso(ts_ns)}")
        elif outcome == "stale" and kind == "u":
            self.corrections["unapplied"] += 1

    def stream_error(self, code: int, msg: str, *, handshake: bool) -> AlpacaStreamError:
        """Count (and log) an ``error`` message; the error to raise."""
        self.stream_errors[code] += 1
        if handshake and code in AUTH_CODES:
            self.auth_failures += 1
        err = AlpacaStreamError(code, msg)
        log.warning("alpaca stream refused", extra={"source": self.source, "code": code, "error": str(err)})
        return err

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "minute_bars": self.minute_bars,
            "candles": dict(self.candles),
            "quotes": dict(self.quotes),
            "corrections": dict(self.corrections),
            "duplicates": self.duplicates,
            "malformed": dict(self.malformed.counts),
            "auth_failures": self.auth_failures,
            "stream_errors": {str(k): v for k, v in self.stream_errors.items()},
            "disconnects": dict(self.disconnects),
            "catch_up_bars": self.catch_up_bars,
        }
