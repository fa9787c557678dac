"""Binance's wire formats, both directions, with no I/O (``/work/shared/protocols/binance.md``).

Decoding (what the feeds use):

- :class:`KlineParser` turns one combined-stream websocket frame into a closed :class:`~pia.events.Bar`,
  ``None`` (a forming ``x:false`` update or a control reply), or raises :class:`~pia.errors.BadData`
  naming the reason (``oversized``, ``non_utf8``, ``invalid_json``, ``not_object``, ``missing_field``,
  ``unknown_event``, ``unknown_symbol``, ``unknown_interval``, ``bad_time``, ``misaligned``,
  ``bad_price``, ``bad_range``, ``bad_volume``), or :class:`ServerShutdown` for a ``serverShutdown`` event.
- :func:`parse_rest_klines` validates a ``/api/v3/klines`` or ``/fapi/v1/klines`` answer into
  :data:`~pia.events.BAR_DTYPE` rows (ns), dropping and counting bad rows.
- :func:`parse_premium_index` reads one ``/fapi/v1/premiumIndex`` object.

Encoding (what the fake server and the tests use): :func:`kline_event`, :func:`rest_kline_row`,
:func:`fmt_decimal`, :func:`stream_name`.

Binance times are ms; pia's are ns (``MS`` converts). Prices arrive as decimal strings.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson

from pia.errors import BadData, FeedDisconnected
from pia.events import BAR_DTYPE, Bar
from pia.feeds.base import BarArray, empty_bars
from pia.intervals import Interval, parse_interval

Market = Literal["spot", "futures"]

MS = 1_000_000  # ns per ms
SPOT_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
FUTURES_INTERVALS = SPOT_INTERVALS[1:]
INTERVALS: dict[Market, tuple[str, ...]] = {"spot": SPOT_INTERVALS, "futures": FUTURES_INTERVALS}
MAX_STREAMS: dict[Market, int] = {"spot": 1024, "futures": 200}
MAX_KLINES_LIMIT: dict[Market, int] = {"spot": 1000, "futures": 1500}
KLINES_PATH: dict[Market, str] = {"spot": "/api/v3/klines", "futures": "/fapi/v1/klines"}
# Futures websockets are routed by path since 2026: klines and mark prices live under /market.
STREAM_PATH: dict[Market, str] = {"spot": "/stream", "futures": "/market/stream"}
PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
DEFAULT_MAX_FRAME_BYTES = 64 * 1024  # a kline frame is ~450 bytes


class ServerShutdown(FeedDisconnected):
    """Binance announced a planned disconnect (``serverShutdown``): reconnect at once."""


def stream_name(venue_symbol: str, interval: str) -> str:
    return f"{venue_symbol.lower()}@kline_{interval}"


def combined_stream_url(ws_url: str, market: Market, streams: Iterable[str]) -> str:
    """``<ws_url>/stream?streams=a/b`` (spot) or ``<ws_url>/market/stream?streams=a/b`` (USD-M futures)."""
    return f"{ws_url.rstrip('/')}{STREAM_PATH[market]}?streams={'/'.join(streams)}"


# ------------------------------------------------------------------------------------- decoding
@dataclass(frozen=True, slots=True)
class _Rule:
    """How to check a kline's open/close times for one interval, in ms."""

    interval: Interval
    step_ms: int  # 0 for calendar months
    anchor_ms: int
    check_alignment: bool  # Binance anchors 3d candles to its own day, not the epoch: not checked

    def valid(self, t: int, close: int) -> bool:
        if self.step_ms:
            aligned = not self.check_alignment or (t - self.anchor_ms) % self.step_ms == 0
            return aligned and close == t + self.step_ms - 1
        iv = self.interval
        return iv.is_aligned(t * MS) and (close + 1) * MS == iv.next_open(t * MS)


def _rule(code: str) -> _Rule:
    iv = parse_interval(code)
    return _Rule(iv, iv.step_ns // MS, iv.anchor_ns // MS, code != "3d")


def _non_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class KlineParser:
    """Decodes combined-stream kline frames for a fixed set of symbols and intervals.

    ``symbols`` maps the venue symbol (``BTCUSDT``) to pia's (``BTC-USD``). Counters ``forming``
    (``x:false`` updates) and ``control`` (subscription replies) are kept here; malformed frames raise
    :class:`BadData` and are counted by the caller.
    """

    def __init__(
        self, symbols: Mapping[str, str], intervals: Iterable[str], *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        self._symbols = dict(symbols)
        self._rules = {code: _rule(code) for code in intervals}
        self.max_frame_bytes = max_frame_bytes
        self.forming = 0
        self.control = 0

    def parse(self, raw: bytes | str) -> Bar | None:
        if len(raw) > self.max_frame_bytes:
            raise BadData("oversized", f"{len(raw)} bytes")
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            if isinstance(raw, bytes) and _non_utf8(raw):
                raise BadData("non_utf8") from None
            raise BadData("invalid_json") from None
        if type(msg) is not dict:
            raise BadData("not_object")
        data = msg.get("data", msg)
        if type(data) is not dict:
            raise BadData("not_object")
        event = data.get("e")
        if event != "kline":
            self._other(event, msg, data)
            return None
        try:
            k = data["k"]
            closed = k["x"]
            if closed is False:
                self.forming += 1
                return None
            symbol, code, t, close_t = k["s"], k["i"], k["t"], k["T"]
            o, h, lo, c, v = k["o"], k["h"], k["l"], k["c"], k["v"]
        except (KeyError, TypeError):
            raise BadData("missing_field") from None
        if closed is not True:
            raise BadData("missing_field", "k.x is not a boolean")
        pia_symbol = self._symbols.get(symbol)
        if pia_symbol is None:
            raise BadData("unknown_symbol", str(symbol)[:40])
        rule = self._rules.get(code)
        if rule is None:
            raise BadData("unknown_interval", str(code)[:20])
        if type(t) is not int or type(close_t) is not int:
            raise BadData("bad_time")
        if not rule.valid(t, close_t):
            raise BadData("misaligned", f"t={t} T={close_t} {code}")
        try:
            o, h, lo, c = float(o), float(h), float(lo), float(c)
        except (TypeError, ValueError):
            raise BadData("bad_price") from None
        if not (o > 0 and h > 0 and lo > 0 and c > 0 and math.isfinite(o + h + lo + c)):
            raise BadData("bad_price")
        if not (lo <= o <= h and lo <= c <= h):
            raise BadData("bad_range")
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise BadData("bad_volume") from None
        if not (v >= 0 and math.isfinite(v)):
            raise BadData("bad_volume")
        return Bar(symbol=pia_symbol, interval=code, open_time=t * MS, open=o, high=h, low=lo, close=c, volume=v)

    def _other(self, event: object, msg: dict[str, Any], data: dict[str, Any]) -> None:
        if event == "serverShutdown":
            raise ServerShutdown(f"server shutdown notice (E={data.get('E')})")
        if event is None and "id" in msg and ("result" in msg or "code" in msg):
            self.control += 1  # a reply to SUBSCRIBE etc. (we never send any, but it is not data)
            return
        if event is None:
            raise BadData("missing_field", "no event type")
        raise BadData("unknown_event", str(event)[:40])


def parse_rest_klines(payload: Any, interval: str) -> tuple[BarArray, Counter[str]]:
    """Validated rows of a klines answer (12-element arrays), oldest first, and the dropped rows by reason.

    A payload that is not a list raises :class:`BadData` (``bad_payload``): the whole answer is unusable.
    """
    if not isinstance(payload, list):
        raise BadData("bad_payload", f"klines answer is {type(payload).__name__}, not a list")
    dropped: Counter[str] = Counter()
    rows = [r for r in payload if isinstance(r, list) and len(r) >= 7]
    if len(rows) < len(payload):
        dropped["missing_field"] += len(payload) - len(rows)
    if not rows:
        return empty_bars(), dropped
    try:
        out = _rows_to_array(rows)
    except (TypeError, ValueError, OverflowError):
        good = []
        for r in rows:
            try:
                _rows_to_array([r])
                good.append(r)
            except (TypeError, ValueError, OverflowError):
                dropped["bad_price"] += 1
        if not good:
            return empty_bars(), dropped
        out = _rows_to_array(good)
        rows = good
    close_ms = np.fromiter((r[6] for r in rows), dtype=np.int64, count=len(rows))
    iv = _rule(interval)
    opens = out["open_time"]
    time_ok = (close_ms + 1) * MS == iv.interval.next_open_array(opens)
    if iv.check_alignment:
        time_ok &= iv.interval.floor_array(opens) == opens
    o, h, lo, c, v = out["open"], out["high"], out["low"], out["close"], out["volume"]
    with np.errstate(invalid="ignore", over="ignore"):
        price_ok = (o > 0) & (h > 0) & (lo > 0) & (c > 0) & np.isfinite(o + h + lo + c)
        range_ok = (lo <= o) & (o <= h) & (lo <= c) & (c <= h)
        volume_ok = (v >= 0) & np.isfinite(v)
    for reason, bad in (
        ("misaligned", ~time_ok),
        ("bad_price", time_ok & ~price_ok),
        ("bad_range", time_ok & price_ok & ~range_ok),
        ("bad_volume", time_ok & price_ok & range_ok & ~volume_ok),
    ):
        n = int(bad.sum())
        if n:
            dropped[reason] += n
    out = out[time_ok & price_ok & range_ok & volume_ok]
    if len(out) > 1 and np.any(np.diff(out["open_time"]) <= 0):
        out = np.sort(out, order="open_time")
        keep = np.r_[True, np.diff(out["open_time"]) > 0]
        dropped["duplicate"] += int((~keep).sum())
        out = out[keep]
    return out, dropped


def _rows_to_array(rows: list[list[Any]]) -> BarArray:
    n = len(rows)
    out = np.empty(n, dtype=BAR_DTYPE)
    if any(type(r[0]) is not int for r in rows):
        raise TypeError("open time is not an integer")
    out["open_time"] = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n) * MS
    for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        col = [r[i] for r in rows]
        if any(not isinstance(x, str | int | float) or isinstance(x, bool) for x in col):
            raise TypeError(f"{name} is not a number")
        out[name] = np.array(col, dtype=np.float64)
    return out


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    symbol: str  # venue symbol
    mark_price: float
    funding_rate: float
    next_funding_ns: int
    time_ns: int


def parse_premium_index(payload: Any) -> PremiumIndex:
    """One ``/fapi/v1/premiumIndex`` object; :class:`BadData` if it lacks a usable funding rate or mark price."""
    if not isinstance(payload, dict):
        raise BadData("bad_payload", f"premiumIndex answer is {type(payload).__name__}, not an object")
    try:
        symbol = payload["symbol"]
        mark = float(payload["markPrice"])
        rate = float(payload["lastFundingRate"])  # "" for delivery contracts -> ValueError
        next_ms = payload["nextFundingTime"]
        time_ms = payload["time"]
    except KeyError as exc:
        raise BadData("missing_field", str(exc)) from None
    except (TypeError, ValueError):
        raise BadData("bad_price", "markPrice or lastFundingRate is not a number") from None
    if not (isinstance(symbol, str) and type(next_ms) is int and type(time_ms) is int):
        raise BadData("bad_time")
    if not (mark > 0 and math.isfinite(mark) and math.isfinite(rate)):
        raise BadData("bad_price", f"markPrice={mark} lastFundingRate={rate}")
    return PremiumIndex(symbol, mark, rate, next_ms * MS, time_ms * MS)


# ------------------------------------------------------------------------------------- encoding
def fmt_decimal(x: float) -> str:
    """Binance's 8-decimal string when it round-trips exactly, else the shortest exact repr."""
    s = f"{x:.8f}"
    return s if float(s) == x else repr(x)


def close_time_ms(interval: str, open_ns: int) -> int:
    """Binance's ``T``/close time: the next open minus one ms."""
    return parse_interval(interval).next_open(open_ns) // MS - 1


def kline_event(
    venue_symbol: str, interval: str, row: tuple[int, float, float, float, float, float], *, closed: bool, event_ms: int
) -> dict[str, Any]:
    """A raw ``kline`` event (the ``data`` of a combined-stream message) for ``row`` = (open ns, o, h, l, c, v)."""
    open_ns, o, h, lo, c, v = row
    return {
        "e": "kline",
        "E": event_ms,
        "s": venue_symbol,
        "k": {
            "t": open_ns // MS,
            "T": close_time_ms(interval, open_ns),
            "s": venue_symbol,
            "i": interval,
            "f": 0,
            "L": 0,
            "o": fmt_decimal(o),
            "c": fmt_decimal(c),
            "h": fmt_decimal(h),
            "l": fmt_decimal(lo),
            "v": fmt_decimal(v),
            "n": 0,
            "x": closed,
            "q": fmt_decimal(v * c),
            "V": fmt_decimal(v / 2),
            "Q": fmt_decimal(v * c / 2),
            "B": "0",
        },
    }


def rest_kline_row(interval: str, row: tuple[int, float, float, float, float, float]) -> list[Any]:
    """One 12-element ``/api/v3/klines`` array."""
    open_ns, o, h, lo, c, v = row
    return [
        open_ns // MS,
        fmt_decimal(o),
        fmt_decimal(h),
        fmt_decimal(lo),
        fmt_decimal(c),
        fmt_decimal(v),
        close_time_ms(interval, open_ns),
        fmt_decimal(v * c),
        0,
        fmt_decimal(v / 2),
        fmt_decimal(v * c / 2),
        "0",
    ]
