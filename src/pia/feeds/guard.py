"""The last gate before a bar enters the pipeline: bad or repeated bars are dropped and counted.

Checks, in order (the first that fails names the reason): ``unknown_symbol``, ``misaligned``
(open time not on the interval's UTC boundary; off for live venues, whose candles follow
the venue's own anchors — Binance's listing-anchored 3d, NYSE session-anchored stock candles — and are
validated by the venue source), ``bad_price`` (NaN, infinite, zero or negative),
``bad_range`` (high < low, or open/close outside [low, high]), ``bad_volume`` (NaN, infinite or
negative), ``future`` (closes after now + tolerance; live feeds only), ``duplicate`` (same open time
as the last accepted bar), ``out_of_order`` (older than the last accepted bar). Each reason is
counted and logged at most once per ``log_every`` seconds, with the count since the last line.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

from pia.clock import Clock
from pia.events import Bar
from pia.intervals import NS, iso, parse_interval

log = logging.getLogger(__name__)


class BarGuard:
    def __init__(
        self,
        source: str,
        symbols: set[str],
        clock: Clock,
        *,
        check_future: bool,
        check_alignment: bool = True,
        future_tolerance_s: float = 5.0,
        log_every: float = 60.0,
    ) -> None:
        self._source = source
        self._symbols = symbols
        self._clock = clock
        self._check_future = check_future
        self._check_alignment = check_alignment
        self._tolerance = int(future_tolerance_s * NS)
        self._log_every = log_every
        self._last: dict[tuple[str, str], int] = {}
        self.dropped: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def last_open_time(self, symbol: str, interval: str) -> int | None:
        return self._last.get((symbol, interval))

    def remember(self, symbol: str, interval: str, open_time: int) -> None:
        """Record history already accepted (so a stream that repeats it is deduplicated)."""
        key = (symbol, interval)
        if open_time > self._last.get(key, -1):
            self._last[key] = open_time

    def admit(self, bar: Bar) -> bool:
        reason = self._check(bar)
        if reason is None:
            self._last[(bar.symbol, bar.interval)] = bar.open_time
            return True
        self._drop(reason, bar)
        return False

    def _check(self, bar: Bar) -> str | None:
        if bar.symbol not in self._symbols:
            return "unknown_symbol"
        interval = parse_interval(bar.interval)
        if self._check_alignment and not interval.is_aligned(bar.open_time):
            return "misaligned"
        o, h, lo, c = bar.open, bar.high, bar.low, bar.close
        if not all(math.isfinite(x) and x > 0 for x in (o, h, lo, c)):
            return "bad_price"
        if h < lo or not (lo <= o <= h and lo <= c <= h):
            return "bad_range"
        if not (math.isfinite(bar.volume) and bar.volume >= 0):
            return "bad_volume"
        if self._check_future and interval.next_open(bar.open_time) > self._clock.now_ns() + self._tolerance:
            return "future"
        last = self._last.get((bar.symbol, bar.interval))
        if last is not None and bar.open_time <= last:
            return "duplicate" if bar.open_time == last else "out_of_order"
        return None

    def _drop(self, reason: str, bar: Bar) -> None:
        self.dropped[reason] += 1
        self._unlogged[reason] += 1
        now = self._clock.monotonic()
        last = self._logged_at.get(reason)
        if last is None or now - last >= self._log_every:
            log.warning(
                "bar dropped",
                extra={
                    "source": self._source,
                    "reason": reason,
                    "symbol": bar.symbol,
                    "interval": bar.interval,
                    "open_time": iso(bar.open_time) if abs(bar.open_time) < 2**62 else bar.open_time,
                    "count": self._unlogged[reason],
                    "total": self.dropped[reason],
                },
            )
            self._logged_at[reason] = now
            self._unlogged[reason] = 0
