"""``calendar``: seasonal and event-calendar effects (SEED-SPEC §2.3), eight date-based sub-votes.

Dates are the **UTC calendar date of the bar's open time**. For stocks that is the New York trading
date (a regular session, 09:30-16:00 New York, lies within one UTC date: 13:30-21:00 UTC at the
latest), and for crypto it is the usual UTC day of a daily candle. So one rule serves every asset
class, with no time-zone lookup per bar.

The NYSE holidays come from ``exchange_calendars``' XNYS calendar, read once per range of years and
cached (:func:`holiday_eves`); the FOMC dates from the shipped schedules (:mod:`pia.signals.schedules`).
"""

from __future__ import annotations

import threading
import warnings
from functools import lru_cache
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from pia.signals import combine
from pia.signals.base import I8, Context, Params, SignalOutput, SignalSpec
from pia.signals.schedules import DAY_NS, Schedules, default_schedules

I64 = npt.NDArray[np.int64]

_EPOCH_YEAR = 1970
_CAL_FIRST_YEAR = 1990  # the holiday cache never starts later than this (covers every backtest we run)


# --------------------------------------------------------------------------------- dates
def bar_days(time_ns: I64) -> I64:
    """Days since 1970-01-01 of each bar's UTC open date."""
    return np.asarray(time_ns, dtype=np.int64) // DAY_NS


def weekday(days: I64) -> I64:
    """0 = Monday .. 6 = Sunday (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


_MONTH_STARTS: I64 = (
    np.arange(np.datetime64("1900-01"), np.datetime64("2201-01")).astype("datetime64[D]").astype(np.int64)
)
"""Day numbers of the first day of every month, 1900-01 .. 2200-12 (one binary search per bar beats the
datetime64 conversions by half)."""
_FIRST_DAY, _LAST_DAY = int(_MONTH_STARTS[0]), int(_MONTH_STARTS[-1]) - 1  # the days month_parts knows


def month_parts(days: I64) -> tuple[I64, I64, I64]:
    """(month 1..12, day of month 1..31, days in that month) of each day number (years 1900-2200)."""
    i = np.searchsorted(_MONTH_STARTS, days, side="right") - 1
    start = _MONTH_STARTS[i]
    return i % 12 + 1, days - start + 1, _MONTH_STARTS[i + 1] - start


class _HolidayEves:
    """The last NYSE session before each weekday market holiday, as sorted day numbers, cached by year range.

    A day is a *holiday eve* when it is an XNYS session and the next session is not the next weekday
    (a weekday between them is a holiday): the Wednesday before Thanksgiving, the Thursday before Good
    Friday, the Friday before a Monday holiday, the session before Christmas or New Year's Day, ...
    Only scheduled holidays count: the calendar's ad-hoc closures (9/11, hurricane Sandy, national days
    of mourning) were announced at short notice and are treated as ordinary sessions.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._span = (0, -1)  # day numbers covered, inclusive
        self._eves: I64 = np.empty(0, dtype=np.int64)

    def covering(self, lo_day: int, hi_day: int) -> I64:
        return self.span_covering(lo_day, hi_day)[1]

    def span_covering(self, lo_day: int, hi_day: int) -> tuple[tuple[int, int], I64]:
        """The cached span (first and last day number, inclusive), extended to cover ``lo_day .. hi_day``,
        and the eves over it."""
        span, eves = self._span, self._eves
        if span[0] <= lo_day and hi_day <= span[1]:
            return span, eves
        with self._lock:
            lo, hi = _year(lo_day), _year(hi_day)
            first, last = (_year(self._span[0]), _year(self._span[1])) if self._span[0] <= self._span[1] else (lo, hi)
            first = min(lo, first, _CAL_FIRST_YEAR)
            last = max(hi, last, _year(int(np.datetime64("now", "D").astype(np.int64))) + 5)
            # one more year of sessions, so the last eve of ``last`` sees its next session
            eves = _build_eves(first, last + 1)
            span = (_first_day(first), _first_day(last + 1) - 1)
            self._eves, self._span = eves, span
            return span, eves


def _first_day(year: int) -> int:
    return int(np.datetime64(f"{year:04d}-01-01", "D").astype(np.int64))


def _year(day: int) -> int:
    return int(np.datetime64(day, "D").astype("datetime64[Y]").astype(np.int64)) + _EPOCH_YEAR


def _build_eves(first_year: int, last_year: int) -> I64:
    with warnings.catch_warnings():
        # exchange_calendars 4.x under pandas 3 warns about its own use of Series.values
        warnings.simplefilter("ignore")
        import exchange_calendars as xc  # type: ignore[import-untyped]

        cal = xc.get_calendar("XNYS", start=f"{first_year}-01-01", end=f"{last_year}-12-31")
        sessions = np.asarray(cal.sessions_nanos, dtype=np.int64) // DAY_NS
        adhoc = np.array([t.value for t in cal.adhoc_holidays], dtype=np.int64) // DAY_NS
    # ad-hoc closures (9/11, hurricane Sandy, days of mourning) were announced at short notice: count
    # them as ordinary days, so no backtest "knows" of a closure before it was announced
    adhoc = adhoc[(adhoc >= sessions[0]) & (adhoc <= sessions[-1]) & (weekday(adhoc) < 5)]
    days = np.union1d(sessions, adhoc)
    cur, nxt = days[:-1], days[1:]
    next_weekday = cur + np.where(weekday(cur) == 4, 3, 1)  # Friday -> Monday
    return np.ascontiguousarray(cur[nxt != next_weekday])


_EVES = _HolidayEves()


def holiday_eves(lo_day: int, hi_day: int) -> I64:
    """Sorted day numbers of every NYSE holiday eve, covering at least ``lo_day .. hi_day``."""
    return _EVES.covering(lo_day, hi_day)


def is_holiday_eve(days: I64) -> npt.NDArray[np.bool_]:
    """Per day number (ascending, as bars are): is it the last NYSE session before a weekday market holiday?"""
    if len(days) == 0:
        return np.zeros(0, dtype=np.bool_)
    eves = holiday_eves(int(days[0]), int(days[-1]))
    i = np.searchsorted(eves, days)
    return np.asarray(eves[np.minimum(i, len(eves) - 1)] == days)


def fomc_days_ahead(t_ns: I64, days: I64, schedules: Schedules | None = None) -> npt.NDArray[np.float64]:
    """Calendar days from each bar's date to the date of the next FOMC statement at or after its open
    time; NaN where the FOMC schedule is unknown (run out, or before it starts)."""
    s = schedules or default_schedules()
    return s.days_ahead("fomc", t_ns, days)


# --------------------------------------------------------------------------------- signal
class CalendarParams(Params):
    month_end_days: Annotated[
        int, Field(ge=1, le=10, description="BUY on the last this-many calendar days of the month.")
    ] = 3
    fomc_min_days: Annotated[
        int, Field(ge=0, le=14, description="BUY from this many days before an FOMC statement ...")
    ] = 1
    fomc_max_days: Annotated[int, Field(ge=0, le=14, description="... up to this many days before it.")] = 2
    min_votes: Annotated[
        int, Field(ge=1, le=8, description="Sub-votes the winning side needs (and more than the other side).")
    ] = 2
    cap: Annotated[float, Field(gt=0, le=1, description="Confidence cap.")] = 0.6

    @model_validator(mode="after")
    def _ordered(self) -> CalendarParams:
        if self.fomc_min_days > self.fomc_max_days:
            raise ValueError("fomc_min_days must not exceed fomc_max_days")
        return self


def date_votes(days: I64, month_end_days: int) -> dict[str, I8]:
    """The six sub-votes that depend on the date alone, by name (see :func:`calendar_votes`)."""
    wd = weekday(days)
    month, dom, length = month_parts(days)
    i8 = np.int8
    return {
        "day_of_week": combine.vote(wd == 4, wd == 0),
        "month_end": (dom > length - month_end_days).astype(i8),
        "sell_in_may": combine.vote(
            (month == 11) | (month == 12) | (month == 1) | (month == 4), (month >= 5) & (month <= 10)
        ),
        "january_december": combine.vote(month == 1, month == 12),
        "holiday_eve": is_holiday_eve(days).astype(i8),
        "santa_rally": (((month == 12) & (dom >= 25)) | ((month == 1) & (dom <= 3))).astype(i8),
    }


def calendar_votes(c: Context, p: CalendarParams) -> dict[str, I8]:
    """The eight sub-votes, by name (six of them can only BUY: their vote is the BUY mask as int8)."""
    days = c.cached(("bar_days",), lambda: bar_days(c.time))
    by_date = date_votes(days, p.month_end_days)
    prev_red = np.concatenate(([False], c.close[:-1] < c.open[:-1]))
    ahead = fomc_days_ahead(c.time, days)
    i8 = np.int8
    return {
        "day_of_week": by_date["day_of_week"],
        "turnaround_tuesday": ((weekday(days) == 1) & prev_red).astype(i8),
        "month_end": by_date["month_end"],
        "sell_in_may": by_date["sell_in_may"],
        "january_december": by_date["january_december"],
        "holiday_eve": by_date["holiday_eve"],
        "fomc_eve": ((ahead >= p.fomc_min_days) & (ahead <= p.fomc_max_days)).astype(i8),
        "santa_rally": by_date["santa_rally"],
    }


# The fast path of :func:`calendar`: a bar's votes fold down to one tally byte (see ``combine.fold_tally``),
# most of it from a table built once per day number from :func:`date_votes` over the span of the holiday-eve
# cache (the date-only tally, and the Tuesday flag).
_SUB_VOTES = 8


@lru_cache(maxsize=8)
def _date_table(first_day: int, last_day: int, month_end_days: int) -> npt.NDArray[np.uint8]:
    """Rows (date-only tally, Tuesday flag ``TALLY_BUY`` or 0) per day number ``first_day .. last_day``."""
    days = np.arange(first_day, last_day + 1, dtype=np.int64)
    votes = np.array(list(date_votes(days, month_end_days).values()))
    buys, sells = (votes > 0).sum(axis=0), (votes < 0).sum(axis=0)
    table = np.empty((2, len(days)), dtype=np.uint8)
    table[0] = buys * combine.TALLY_BUY + sells * combine.TALLY_SELL
    table[1] = (weekday(days) == 1) * combine.TALLY_BUY
    table.flags.writeable = False
    return table


def calendar(c: Context, p: CalendarParams) -> SignalOutput:
    """Calendar effects: eight sub-votes on the bar's date (the UTC date of its open time, which for
    stocks is the New York trading date).

    - Day of week: Monday SELL, Friday BUY.
    - Turnaround Tuesday: a Tuesday bar after a red bar (the previous bar closed below its open) BUY.
    - Month end: the last 3 calendar days of the month BUY.
    - Sell in May: May to October SELL; November, December, January and April BUY; February and March HOLD.
    - January BUY, December SELL.
    - Holiday eve: the last NYSE session before a weekday market holiday (XNYS calendar of
      `exchange_calendars`: the Wednesday before Thanksgiving, the Friday before a Monday holiday, ...) BUY.
    - FOMC eve: 1 to 2 calendar days before the date of the next FOMC statement BUY; abstains where the
      shipped FOMC schedule is unknown (before it starts or after it runs out).
    - Santa rally: December 25-31 and January 1-3 BUY.

    Combining (`calendar_rule`): BUY when at least 2 sub-votes are BUY and they outnumber the SELLs
    (SELL likewise); confidence = winning count / (BUY + SELL), capped at 0.6.
    """
    days = c.cached(("bar_days",), lambda: bar_days(c.time))
    if c.n == 0 or not _FIRST_DAY <= days[0] <= days[-1] <= _LAST_DAY:
        return combine.calendar_rule(list(calendar_votes(c, p).values()), min_votes=p.min_votes, cap=p.cap)
    (first, last), _ = _EVES.span_covering(int(days[0]), int(days[-1]))
    first, last = max(first, _FIRST_DAY), min(last, _LAST_DAY)
    tally, tuesday = _date_table(first, last, p.month_end_days).take(days - first, axis=1)
    # turnaround Tuesday: a Tuesday after a red bar
    tally[1:] += tuesday[1:] * (c.close[:-1] < c.open[:-1])
    ahead = default_schedules().next_event_day("fomc", c.time) - days
    tally += ((ahead >= p.fomc_min_days) & (ahead <= p.fomc_max_days)) * np.uint8(combine.TALLY_BUY)
    return combine.fold_tally(tally, _SUB_VOTES, "calendar_rule", p.min_votes, p.cap)


CALENDAR = SignalSpec(
    name="calendar",
    family="composite",
    params_model=CalendarParams,
    compute=calendar,
    warmup=lambda p: 2,
    summary="Calendar effects (weekday, month end, Sell in May, holidays, FOMC eve, Santa rally): 2+ agreeing votes",
    window=lambda p: 2,
)

SIGNALS: tuple[SignalSpec, ...] = (CALENDAR,)
