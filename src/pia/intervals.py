"""Candle intervals and their UTC boundaries.

Every timestamp in pia is an ``int`` of nanoseconds since the Unix epoch, UTC. An interval knows how
to floor a timestamp to the open of the candle containing it, scalar or vectorised:

- fixed intervals (``1m`` ... ``1d``) are aligned to the epoch, so ``15m`` candles open at :00, :15, ...;
- ``3d`` candles are aligned to the epoch plus an optional anchor (Binance anchors them to the
  symbol's listing day, so replaying its 3d candles needs that anchor);
- ``1w`` candles open on Monday 00:00 UTC, as on Binance;
- ``1M`` candles open on the first day of the calendar month, 00:00 UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

NS = 1_000_000_000
MINUTE = 60 * NS
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
_MONDAY_OFFSET = 4 * DAY  # 1970-01-01 was a Thursday; the first Monday is 1970-01-05

_UNITS = {"m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK}
_CODE = re.compile(r"^(\d+)([mhdwM])$")

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Interval:
    """A candle interval such as ``15m``, ``4h``, ``3d``, ``1w`` or ``1M``."""

    code: str
    step_ns: int  # exact length for fixed intervals; 0 for calendar months
    months: int = 0
    anchor_ns: int = 0

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    @property
    def nominal_ns(self) -> int:
        """Length in ns (a month counts as 30 days): for sorting and for sizing history."""
        return self.step_ns if self.step_ns else self.months * 30 * DAY

    def floor(self, ts_ns: int) -> int:
        """Open time of the candle that contains ``ts_ns``."""
        if self.months:
            month = np.datetime64(ts_ns, "ns").astype("datetime64[M]")
            idx = month.astype(np.int64)
            idx -= idx % self.months
            return int(np.datetime64(int(idx), "M").astype("datetime64[ns]").astype(np.int64))
        offset = self.anchor_ns
        return (ts_ns - offset) // self.step_ns * self.step_ns + offset

    def floor_array(self, ts_ns: I64) -> I64:
        """Vectorised :meth:`floor`."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        if self.months:
            idx = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
            idx -= idx % self.months
            return idx.astype("datetime64[M]").astype("datetime64[ns]").astype(np.int64)
        offset = self.anchor_ns
        return (ts - offset) // self.step_ns * self.step_ns + offset

    def next_open(self, open_ns: int) -> int:
        """Open time of the candle after the one opening at ``open_ns`` (its close time)."""
        if self.months:
            month = np.datetime64(open_ns, "ns").astype("datetime64[M]") + self.months
            return int(month.astype("datetime64[ns]").astype(np.int64))
        return open_ns + self.step_ns

    def next_open_array(self, open_ns: I64) -> I64:
        ts = np.asarray(open_ns, dtype=np.int64)
        if self.months:
            m = ts.astype("datetime64[ns]").astype("datetime64[M]") + self.months
            return m.astype("datetime64[ns]").astype(np.int64)
        return ts + self.step_ns

    def is_aligned(self, ts_ns: int) -> bool:
        return self.floor(ts_ns) == ts_ns

    def divides(self, other: Interval) -> bool:
        """True if every boundary of ``other`` is also a boundary of this interval (it builds ``other``)."""
        if self.months:
            return other.months > 0 and other.months % self.months == 0
        if other.months:  # month starts are midnights: needs an epoch-aligned step that divides a day
            return DAY % self.step_ns == 0 and self.anchor_ns % self.step_ns == 0
        return other.step_ns % self.step_ns == 0 and (other.anchor_ns - self.anchor_ns) % self.step_ns == 0

    def with_anchor(self, anchor_ns: int) -> Interval:
        """The same fixed interval aligned to ``anchor_ns`` instead of the epoch."""
        if self.months:
            raise ValueError("calendar-month intervals have no anchor")
        return Interval(self.code, self.step_ns, 0, anchor_ns % self.step_ns)

    def __str__(self) -> str:
        return self.code


@cache
def parse_interval(code: str) -> Interval:
    """Parse ``15m``, ``1h``, ``1d``, ``3d``, ``1w``, ``1M`` ... (``M`` is month, ``m`` minute)."""
    match = _CODE.match(code)
    if not match:
        raise ValueError(f"not an interval: {code!r} (expected e.g. 1m, 15m, 1h, 4h, 1d, 3d, 1w, 1M)")
    n, unit = int(match.group(1)), match.group(2)
    if n <= 0:
        raise ValueError(f"interval must be positive: {code!r}")
    if unit == "M":
        if 12 % n:
            raise ValueError(f"month intervals must divide a year: {code!r}")
        return Interval(code, 0, months=n)
    if unit == "w":
        if n != 1:
            raise ValueError(f"only the 1w week interval is supported: {code!r}")
        return Interval(code, WEEK, anchor_ns=_MONDAY_OFFSET)
    step = n * _UNITS[unit]
    if step < DAY and DAY % step:
        raise ValueError(f"intraday intervals must divide a day: {code!r}")
    return Interval(code, step)


def iso(ts_ns: int) -> str:
    """``2024-01-02T03:04:00Z`` for a ns timestamp (for logs and messages)."""
    s = str(np.datetime64(ts_ns, "ns").astype("datetime64[s]"))
    return s + "Z"
