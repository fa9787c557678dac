"""NYSE regular trading hours, and candles anchored on its sessions.

The calendar is ``exchange_calendars``' XNYS (holidays, early closes, daylight saving time), read once
into sorted int ns arrays; every query afterwards is a binary search. ``exchange_calendars`` (with
pandas) is imported only when the calendar is first needed (:func:`calendar`), since importing it takes
a noticeable fraction of a second. All times are int ns since the epoch, UTC; dates are New York dates.

Session candles: what a stock candle of each interval covers (used by the Alpaca feed, live and history):

- **intraday** intervals (``1m`` .. ``4h``, anything shorter than a day) are anchored at each session's
  open (09:30 New York, so 13:30 UTC in summer and 14:30 UTC in winter) and repeat every step; the
  last one of a session is truncated at its close (16:00, or 13:00 on an early close). ``1h``: 09:30,
  10:30 .. 15:30-16:00. ``4h``: 09:30-13:30 and 13:30-16:00 (09:30-13:00 alone on an early close).
- ``nd``: ``n`` consecutive sessions. ``1d`` is one session. ``3d`` counts sessions from the fixed
  anchor :data:`SESSION_ANCHOR` (2000-01-03, the first session of 2000): sessions 0-2, 3-5, ... of that
  count form one candle each, across weekends and holidays, so the grouping never depends on when the
  service started or what history was fetched.
- ``1w``: the sessions of one Monday-to-Sunday week; ``nM``: the sessions of ``n`` calendar months
  (months grouped from January 1970, as :mod:`pia.intervals` does).

A candle's ``open_time`` is its real start (the open of its first session, or its intraday start) and
its end is the close of its last session (or its intraday end). Time outside the regular session
belongs to no candle. Candles are built from *sub-bars* (minute bars, or coarser bars whose grid holds
every boundary) by one rule, twice: :func:`session_candles` (vectorised, history) and
:class:`SessionAggregator` (streaming, live); they are checked against each other in the tests.
"""

from __future__ import annotations

import threading
import warnings
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

import numpy as np
import numpy.typing as npt

from pia.events import BAR_DTYPE, Bar
from pia.intervals import DAY, MINUTE, NS, parse_interval

I64 = npt.NDArray[np.int64]
SubArray = npt.NDArray[np.void]
"""Sub-bars (``pia.feeds.alpaca_wire.SUB_DTYPE``: open_time, end_time, open, high, low, close, volume)."""

SESSION_ANCHOR = date(2000, 1, 3)
"""Session 0 of the ``nd`` grouping (the first NYSE session of 2000)."""

CALENDAR_FIRST = date(2000, 1, 1)
_YEARS_AHEAD = 3


@dataclass(frozen=True, slots=True)
class Session:
    """One regular session: its New York date, open and close (ns UTC), and its index in the calendar."""

    index: int
    day: date
    open_ns: int
    close_ns: int

    @property
    def early_close(self) -> bool:
        """Closes before 16:00 New York (the session is shorter than 6.5 hours)."""
        return self.close_ns - self.open_ns < 390 * MINUTE


class NyseCalendar:
    """XNYS regular sessions between ``first`` and ``last`` as arrays; every query is a binary search."""

    def __init__(self, first: date = CALENDAR_FIRST, last: date | None = None) -> None:
        last = last or date(datetime.now(UTC).year + _YEARS_AHEAD, 12, 31)
        with warnings.catch_warnings():
            # exchange_calendars 4.x under pandas 3 warns about its own use of Series.values
            warnings.simplefilter("ignore")
            import exchange_calendars as xc  # type: ignore[import-untyped]

            cal = xc.get_calendar("XNYS", start=first.isoformat(), end=last.isoformat())
            self.opens: I64 = np.array(cal.opens_nanos, dtype=np.int64)
            self.closes: I64 = np.array(cal.closes_nanos, dtype=np.int64)
            self.days: I64 = np.array(cal.sessions_nanos, dtype=np.int64) // DAY  # days since 1970-01-01
        self.first = first
        self.last = last
        self.anchor_index = int(np.searchsorted(self.days, _day_number(SESSION_ANCHOR)))
        self._groups: dict[str, tuple[I64, I64]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.opens)

    # ------------------------------------------------------------------------------ sessions
    def session(self, index: int) -> Session:
        i = int(index)
        return Session(i, _date(int(self.days[i])), int(self.opens[i]), int(self.closes[i]))

    def session_on(self, day: date) -> Session | None:
        """The session on New York date ``day``, or None (weekend, holiday)."""
        n = _day_number(day)
        i = int(np.searchsorted(self.days, n))
        if i < len(self.days) and int(self.days[i]) == n:
            return self.session(i)
        self._check_range(day)
        return None

    def session_bounds(self, day: date) -> tuple[int, int] | None:
        """``(open_ns, close_ns)`` of the session on ``day``, or None when the market does not open."""
        s = self.session_on(day)
        return None if s is None else (s.open_ns, s.close_ns)

    def index_at(self, ts_ns: int) -> int:
        """Index of the session in progress at ``ts_ns``, or -1 when the market is closed."""
        i = int(np.searchsorted(self.opens, ts_ns, side="right")) - 1
        return i if i >= 0 and ts_ns < int(self.closes[i]) else -1

    def session_at(self, ts_ns: int) -> Session | None:
        i = self.index_at(ts_ns)
        return None if i < 0 else self.session(i)

    def is_open(self, ts_ns: int) -> bool:
        """Is the regular session in progress at ``ts_ns`` (open inclusive, close exclusive)?"""
        return self.index_at(ts_ns) >= 0

    def next_session(self, ts_ns: int) -> Session:
        """The first session that opens strictly after ``ts_ns``."""
        i = int(np.searchsorted(self.opens, ts_ns, side="right"))
        if i >= len(self.opens):
            raise ValueError(f"no NYSE session after {_iso(ts_ns)} in the calendar (ends {self.last})")
        return self.session(i)

    def next_open(self, ts_ns: int) -> int:
        """When the market next opens after ``ts_ns`` (the next session's open if it is open now)."""
        return self.next_session(ts_ns).open_ns

    def next_close(self, ts_ns: int) -> int:
        """When the session in progress closes, or the next session's close when the market is closed."""
        i = self.index_at(ts_ns)
        return int(self.closes[i]) if i >= 0 else self.next_session(ts_ns).close_ns

    def sessions_between(self, start_ns: int, end_ns: int) -> list[Session]:
        """Sessions that overlap ``[start_ns, end_ns)``, oldest first."""
        lo = int(np.searchsorted(self.closes, start_ns, side="right"))
        hi = int(np.searchsorted(self.opens, end_ns, side="left"))
        return [self.session(i) for i in range(lo, hi)]

    def last_index_before(self, ts_ns: int) -> int:
        """Index of the last session that opened before ``ts_ns`` (-1 if none)."""
        return int(np.searchsorted(self.opens, ts_ns, side="left")) - 1

    def expected_silence(self, ts_ns: int, grace_s: float = 120.0) -> bool:
        """True when no bars are expected at ``ts_ns``: outside the regular session, or within
        ``grace_s`` of its open (the first minute bars arrive only after the first minute closes).
        A "stale feed" alarm for stocks should fire only when this is False."""
        i = self.index_at(ts_ns)
        return i < 0 or ts_ns < int(self.opens[i]) + int(grace_s * NS)

    # ------------------------------------------------------------------------------ candles
    def candle_bounds(self, interval: str, ts_ns: int) -> tuple[int, int] | None:
        """``(open_ns, end_ns)`` of the ``interval`` candle containing ``ts_ns``; None outside sessions."""
        opens, ends = self.candles_of(interval, np.array([ts_ns], dtype=np.int64))
        return None if opens[0] < 0 else (int(opens[0]), int(ends[0]))

    def candle_from(self, interval: str, ts_ns: int) -> tuple[int, int]:
        """The candle containing ``ts_ns``, or the first one after it when the market is closed then."""
        got = self.candle_bounds(interval, ts_ns)
        return got if got is not None else self.candle_bounds(interval, self.next_open(ts_ns)) or (-1, -1)

    def candles_of(self, interval: str, ts_ns: I64) -> tuple[I64, I64]:
        """Vectorised :meth:`candle_bounds`: (open, end) arrays; -1 where a time is outside every session."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        sidx = np.searchsorted(self.opens, ts, side="right") - 1
        safe = np.clip(sidx, 0, len(self.opens) - 1)
        valid = (sidx >= 0) & (ts < self.closes[safe]) & (ts >= self.opens[safe])
        iv = parse_interval(interval)
        if not iv.months and iv.step_ns < DAY:
            start = self.opens[safe]
            opens = start + (ts - start) // iv.step_ns * iv.step_ns
            ends = np.minimum(opens + iv.step_ns, self.closes[safe])
        else:
            first, last = self.group_table(interval)
            opens = self.opens[first[safe]]
            ends = self.closes[last[safe]]
        return np.where(valid, opens, -1), np.where(valid, ends, -1)

    def group_first_index(self, interval: str, index: int) -> int:
        """For a multi-session interval: the index of the first session of the group containing ``index``."""
        first, _ = self.group_table(interval)
        return int(first[index])

    def group_table(self, interval: str) -> tuple[I64, I64]:
        """Per session: index of the first and of the last session of its ``interval`` group."""
        with self._lock:
            got = self._groups.get(interval)
            if got is None:
                got = self._groups[interval] = self._build_groups(interval)
            return got

    def _build_groups(self, interval: str) -> tuple[I64, I64]:
        iv = parse_interval(interval)
        n = len(self.opens)
        idx = np.arange(n, dtype=np.int64)
        if iv.months:
            months = self.days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
            group = months // iv.months
        elif iv.code == "1w":
            group = (self.days + 3) // 7  # Monday-based weeks (1970-01-05 was a Monday)
        elif iv.step_ns % DAY == 0:
            group = (idx - self.anchor_index) // (iv.step_ns // DAY)
        else:
            raise ValueError(f"not a session interval: {interval!r}")
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        ends = np.r_[starts[1:], n] - 1
        which = np.cumsum(np.r_[True, group[1:] != group[:-1]]) - 1
        return starts[which].astype(np.int64), ends[which].astype(np.int64)

    def _check_range(self, day: date) -> None:
        if not self.first <= day <= self.last:
            raise ValueError(f"{day} is outside the NYSE calendar loaded ({self.first} .. {self.last})")


def is_intraday(interval: str) -> bool:
    iv = parse_interval(interval)
    return not iv.months and iv.step_ns < DAY


# ---------------------------------------------------------------------------------- aggregation
def session_candles(
    subs: SubArray, interval: str, cal: NyseCalendar, *, end_ns: int, start_ns: int | None = None
) -> npt.NDArray[np.void]:
    """Closed session candles of ``interval`` (end <= ``end_ns``; open >= ``start_ns``) from sub-bars.

    Sub-bars must be sorted and each must lie inside one candle (true for 1-minute bars, and for
    coarser bars when every candle boundary is on their grid). Sub-bars outside sessions are ignored."""
    if len(subs) == 0:
        return np.empty(0, dtype=BAR_DTYPE)
    opens, ends = cal.candles_of(interval, subs["open_time"])
    keep = (opens >= 0) & (ends <= end_ns)
    if start_ns is not None:
        keep &= opens >= start_ns
    sel, key = subs[keep], opens[keep]
    if len(sel) == 0:
        return np.empty(0, dtype=BAR_DTYPE)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    last = np.r_[starts[1:], len(sel)] - 1
    out = np.empty(len(starts), dtype=BAR_DTYPE)
    out["open_time"] = key[starts]
    out["open"] = sel["open"][starts]
    out["close"] = sel["close"][last]
    out["high"] = np.maximum.reduceat(sel["high"], starts)
    out["low"] = np.minimum.reduceat(sel["low"], starts)
    out["volume"] = np.add.reduceat(sel["volume"], starts)
    return out


# ---------------------------------------------------------------------------------- streaming
_Sub = tuple[int, float, float, float, float, float]  # end, open, high, low, close, volume


class SessionAggregator:
    """One symbol's session candles of several intervals, built from sub-bars as they arrive.

    A candle is emitted when the sub-bar that ends it arrives, when a later sub-bar arrives (this
    includes extended-hours bars, passed to :meth:`flush`), or when :meth:`flush` is told its end has
    passed. Only candles that open at or after ``observed_from`` (set by :meth:`start`) are emitted:
    the others were not seen from their start. Corrections (same start, other values) replace the
    sub-bar: they change the candle still being built; one that lands in an emitted candle is reported
    as ``late`` (the candle is not emitted again). Sessions already closed are folded into one sub-bar
    each (for the multi-session candles), so memory stays at about one session of minutes.

    :meth:`ingest` returns what the sub-bar was: ``new``, ``duplicate``, ``corrected``, ``late``
    (touches an emitted candle), ``stale`` (before the minute-resolution horizon: folded or covered by
    a coarser bar; ignored) or ``outside`` (not in a regular session; ignored).
    """

    def __init__(self, symbol: str, intervals: Sequence[str], cal: NyseCalendar) -> None:
        self.symbol = symbol
        self.intervals = sorted(dict.fromkeys(intervals), key=lambda c: parse_interval(c).nominal_ns)
        self.cal = cal
        self.observed_from: int | None = None
        self.latest_end = 0
        self.partial_skipped = 0
        self._keys: list[int] = []
        self._subs: dict[int, _Sub] = {}
        self._current: dict[str, tuple[int, int]] = {}
        self._emitted_end: dict[str, int] = {}
        self._fine_from = -(2**62)
        self._session_open = -1

    def start(self, from_ns: int) -> None:
        """Candles opening at or after ``from_ns`` are complete from here on (first call wins)."""
        if self.observed_from is None:
            self.observed_from = from_ns

    @property
    def building(self) -> dict[str, tuple[int, int]]:
        """(open, end) of each candle in progress."""
        return dict(self._current)

    def next_deadline(self) -> int | None:
        """The earliest end of a candle in progress (when :meth:`flush` should next be called)."""
        return min((end for _, end in self._current.values()), default=None)

    def ingest(
        self, open_ns: int, end_ns: int, o: float, h: float, lo: float, c: float, v: float, *, coarse: bool = False
    ) -> tuple[str, list[Bar]]:
        if self.cal.index_at(open_ns) < 0:
            return "outside", []
        if open_ns < self._fine_from:
            return "stale", []
        vals: _Sub = (end_ns, o, h, lo, c, v)
        old = self._subs.get(open_ns)
        if old is not None:
            if old == vals:
                return "duplicate", []
            self._subs[open_ns] = vals
            return ("late" if self._emitted_any(open_ns) else "corrected"), []
        if self._keys and open_ns < self._keys[-1]:  # a bar older than the newest: insert where it belongs
            if all(open_ns < self._emitted_end.get(iv, -1) for iv in self.intervals):
                return "late", []
            insort(self._keys, open_ns)
            self._subs[open_ns] = vals
            return ("late" if self._emitted_any(open_ns) else "new"), []
        out: list[Bar] = []
        self._close_until(open_ns, out)
        session_open = int(self.cal.opens[self.cal.index_at(open_ns)])
        if session_open != self._session_open:
            self._fold_before(session_open)
            self._session_open = session_open
        self._keys.append(open_ns)
        self._subs[open_ns] = vals
        for iv in self.intervals:
            if iv not in self._current:
                bounds = self.cal.candle_bounds(iv, open_ns)
                if bounds is not None:
                    self._current[iv] = bounds
        self._close_until(end_ns, out)
        self.latest_end = max(self.latest_end, end_ns)
        if coarse:
            self._fine_from = max(self._fine_from, end_ns)
        return "new", out

    def ingest_rows(self, rows: SubArray, *, coarse: bool = False) -> tuple[list[tuple[str, int]], list[Bar]]:
        """:meth:`ingest` each REST row in turn (rows outside sessions only move time on); returns the
        (outcome, start) of each and the candles they closed."""
        outcomes: list[tuple[str, int]] = []
        out: list[Bar] = []
        for t, end, o, h, lo, c, v in rows.tolist():
            outcome, bars = self.ingest(t, end, o, h, lo, c, v, coarse=coarse)
            out.extend(bars if outcome != "outside" else self.flush(t))
            outcomes.append((outcome, t))
        return outcomes, out

    def flush(self, until_ns: int) -> list[Bar]:
        """Emit every candle in progress whose end is at or before ``until_ns``."""
        out: list[Bar] = []
        self._close_until(until_ns, out)
        return out

    # ------------------------------------------------------------------------------ internals
    def _emitted_any(self, ts: int) -> bool:
        return any(ts < end for end in self._emitted_end.values())

    def _close_until(self, ts: int, out: list[Bar]) -> None:
        closed = False
        for iv in self.intervals:
            cur = self._current.get(iv)
            if cur is not None and cur[1] <= ts:
                del self._current[iv]
                self._emit(iv, cur, out)
                closed = True
        if closed:
            self._prune()

    def _emit(self, interval: str, bounds: tuple[int, int], out: list[Bar]) -> None:
        start, end = bounds
        self._emitted_end[interval] = end
        if self.observed_from is None or start < self.observed_from:
            self.partial_skipped += 1
            return
        i, j = bisect_left(self._keys, start), bisect_left(self._keys, end)
        if i == j:
            return
        keys, subs = self._keys, self._subs
        first, last = subs[keys[i]], subs[keys[j - 1]]
        high, low, volume = first[2], first[3], 0.0
        for k in range(i, j):
            s = subs[keys[k]]
            high = s[2] if s[2] > high else high
            low = s[3] if s[3] < low else low
            volume += s[5]
        out.append(
            Bar(
                symbol=self.symbol,
                interval=interval,
                open_time=start,
                open=first[1],
                high=high,
                low=low,
                close=last[4],
                volume=volume,
            )
        )

    def _prune(self) -> None:
        horizon = min((start for start, _ in self._current.values()), default=self.latest_end)
        cut = bisect_left(self._keys, horizon)
        if cut:
            for k in self._keys[:cut]:
                del self._subs[k]
            del self._keys[:cut]

    def _fold_before(self, session_open: int) -> None:
        """Fold the sub-bars of sessions before ``session_open`` into one per session (their intraday
        candles are all closed by now; multi-session candles need only session totals)."""
        cut = bisect_left(self._keys, session_open)
        if cut == 0:
            return
        old = self._keys[:cut]
        folded: list[tuple[int, _Sub]] = []
        group: list[int] = []
        for k in old:
            if group and self.cal.index_at(k) != self.cal.index_at(group[0]):
                folded.append(self._fold(group))
                group = []
            group.append(k)
        folded.append(self._fold(group))
        for k in old:
            del self._subs[k]
        self._keys[:cut] = [k for k, _ in folded]
        self._subs.update(folded)
        self._fine_from = max(self._fine_from, session_open)

    def _fold(self, keys: list[int]) -> tuple[int, _Sub]:
        subs = [self._subs[k] for k in keys]
        return keys[0], (
            subs[-1][0],
            subs[0][1],
            max(s[2] for s in subs),
            min(s[3] for s in subs),
            subs[-1][4],
            sum(s[5] for s in subs),
        )


@cache
def calendar() -> NyseCalendar:
    """The shared XNYS calendar (built on first use; importing ``exchange_calendars`` is slow)."""
    return NyseCalendar()


def is_open(ts_ns: int) -> bool:
    return calendar().is_open(ts_ns)


def session_bounds(day: date) -> tuple[int, int] | None:
    return calendar().session_bounds(day)


def next_open(ts_ns: int) -> int:
    return calendar().next_open(ts_ns)


def sessions_between(start_ns: int, end_ns: int) -> list[Session]:
    return calendar().sessions_between(start_ns, end_ns)


def expected_silence(ts_ns: int, grace_s: float = 120.0) -> bool:
    return calendar().expected_silence(ts_ns, grace_s)


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _date(day_number: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + day_number)


def _iso(ts_ns: int) -> str:
    return str(np.datetime64(ts_ns, "ns").astype("datetime64[s]")) + "Z"
