"""``econ_calendar``: de-risk before scheduled US macro releases (FOMC, CPI, NFP).

The original system's later addition #27 (SEED-SPEC §2.3 *Later*). The release times come from the
shipped, dated schedules (:mod:`pia.signals.schedules`); where a schedule is unknown the signal abstains.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from pia.signals import ta
from pia.signals.base import F64, Bool, Context, Params, SignalOutput, SignalSpec
from pia.signals.schedules import HOUR_NS, I64, UNKNOWN, Schedules, default_schedules

SPACING_BARS = 20
"""Bar spacings the bar length is taken from (see :func:`bar_close_ns`)."""

Kind = Literal["fomc", "cpi", "nfp"]


def _spacing_min(spacing: I64) -> I64:
    """At each spacing, the smallest of the last :data:`SPACING_BARS` spacings up to it (all of them for
    the first ones)."""
    if len(spacing) <= SPACING_BARS:
        return np.minimum.accumulate(spacing)
    out = np.empty_like(spacing)
    head = SPACING_BARS - 1
    out[:head] = np.minimum.accumulate(spacing[:head])
    # TA-Lib's MIN on floats is exact: the spacings are far below 2**53 ns
    out[head:] = ta.MIN(spacing.astype(np.float64), SPACING_BARS)[head:]
    return out


def bar_length_ns(time_ns: np.ndarray) -> F64:
    """Each bar's nominal length: the smallest spacing between consecutive open times among the last
    :data:`SPACING_BARS` spacings up to that bar (all of them for the first bars); NaN for bar 0.

    The smallest, not the median: stock bars skip nights, weekends and holidays (4h stock candles
    alternate 4 h and 20 h spacings), but the bars of one interval are never closer than its length.
    """
    t = np.asarray(time_ns, dtype=np.int64)
    out = np.empty(len(t))
    out[:1] = np.nan
    out[1:] = _spacing_min(t[1:] - t[:-1])
    return out


def bar_close_ns(c: Context) -> tuple[I64, Bool]:
    """Each bar's close time (int ns): open time + :func:`bar_length_ns`, and where it is known (not bar 0).

    The Context holds open times only; a truncated last candle of a session (a 4h stock candle ending
    at the 16:00 close) is taken to close one nominal length after its open.
    """

    def build() -> tuple[I64, Bool]:
        t = c.time
        close = t.copy()
        close[1:] += _spacing_min(t[1:] - t[:-1])
        ok = np.empty(c.n, dtype=np.bool_)
        ok[:] = True
        ok[:1] = False
        return close, ok

    return c.cached(("bar_close",), build)


def hours_to_next_release(c: Context, kinds: tuple[str, ...], schedules: Schedules | None = None) -> tuple[F64, Bool]:
    """Hours from each bar's close to the nearest upcoming *known* release of any of ``kinds`` (inf when
    none is known), and where every one of those schedules knows its next release. Both NaN / False
    where the close time is unknown (bar 0)."""
    s = schedules or default_schedules()
    close, _ = bar_close_ns(c)
    nxt, complete = s.next_of_any(kinds, close)
    hours = np.where(nxt != UNKNOWN, (nxt - close) / HOUR_NS, np.inf)
    hours[:1] = np.nan  # bar 0: no close time (see bar_close_ns)
    complete[:1] = False
    return hours, complete


class EconCalendarParams(Params):
    kinds: Annotated[
        tuple[Kind, ...],
        Field(min_length=1, description="Release schedules watched (drop one whose shipped list has run out)."),
    ] = ("fomc", "cpi", "nfp")
    near_hours: Annotated[
        float, Field(gt=0, le=48, description="SELL when a release is less than this many hours away.")
    ] = 4.0
    far_hours: Annotated[
        float, Field(gt=0, le=168, description="Cautious SELL when a release is near_hours to this many hours away.")
    ] = 24.0
    near_confidence: Annotated[float, Field(gt=0, le=1, description="Confidence of the near SELL (the cap).")] = 0.7
    far_confidence: Annotated[float, Field(gt=0, le=1, description="Confidence of the cautious SELL.")] = 0.4

    @model_validator(mode="after")
    def _ordered(self) -> EconCalendarParams:
        if self.near_hours >= self.far_hours:
            raise ValueError("near_hours must be below far_hours")
        if len(set(self.kinds)) != len(self.kinds):
            raise ValueError("kinds: a release kind is listed twice")
        return self


def econ_calendar(c: Context, p: EconCalendarParams) -> SignalOutput:
    """Scheduled US macro releases ahead: FOMC statements (14:00 New York), CPI and the Employment
    Situation / NFP (08:30 New York), from the shipped dated schedules.

    - The time reference is the bar's close: its open time plus the bar length (the smallest spacing
      between the last 20 consecutive open times; the first bar has none and abstains).
    - A release less than 4 hours after the close (or exactly at it) → SELL, confidence 0.7 (the cap).
    - The nearest release 4 to 24 hours away → cautious SELL, confidence 0.4.
    - Otherwise HOLD. The signal never votes BUY.
    - Schedules that run out: a schedule is unknown before its `valid_from`, after its `valid_until`,
      and from its last listed release on (its next release lies past `valid_until`). A known release
      less than 4 hours away still gives the SELL at 0.7 (no unknown release could make it stronger);
      otherwise the signal abstains (HOLD) wherever any watched schedule (FOMC, CPI and NFP by
      default) is unknown, since a run-out list is not "nothing scheduled".
    """
    h, complete = hours_to_next_release(c, tuple(p.kinds))
    near = h < p.near_hours
    far = complete & (h >= p.near_hours) & (h < p.far_hours)  # never together with near
    sell = near | far
    return SignalOutput(-sell.view(np.int8), near * p.near_confidence + far * p.far_confidence)


ECON_CALENDAR = SignalSpec(
    name="econ_calendar",
    family="calendar",
    params_model=EconCalendarParams,
    compute=econ_calendar,
    warmup=lambda p: 2,
    summary="FOMC, CPI or NFP release within 4 h → SELL (0.7), within 24 h → cautious SELL (0.4)",
    window=lambda p: SPACING_BARS + 1,
)

SIGNALS: tuple[SignalSpec, ...] = (ECON_CALENDAR,)
