"""calendar: each date rule on crafted bars, NYSE holiday eves against exchange_calendars, the
calendar_rule combination, live == vectorised on real candles, and both votes on real SPY data."""

from __future__ import annotations

import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.calendar import (
    CALENDAR,
    CalendarParams,
    bar_days,
    calendar,
    calendar_votes,
    is_holiday_eve,
    month_parts,
    weekday,
)
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

DAY = 86_400 * 10**9
HOUR = 3_600 * 10**9


def day_number(d: str) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def bars(days: list[str], hour: int = 14, red: list[bool] | None = None) -> Ohlcv:
    """One bar per date, opening at ``hour`` UTC; ``red`` bars close below their open."""
    t = np.array([day_number(d) * DAY + hour * HOUR for d in days], dtype=np.int64)
    n = len(days)
    down = np.array(red if red is not None else [False] * n)
    o = np.full(n, 100.0)
    c = np.where(down, 99.0, 101.0)
    return Ohlcv(t, o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c, np.ones(n))


def votes(days: list[str], red: list[bool] | None = None, **kw: Any) -> dict[str, list[int]]:
    o = bars(days, red=red)
    return {k: v.tolist() for k, v in calendar_votes(Context(o), CalendarParams(**kw)).items()}


def test_date_parts_match_the_standard_library() -> None:
    d0 = date(1999, 1, 1)
    all_days = [d0 + timedelta(days=i) for i in range(0, 12_000, 7)]
    nums = np.array([(d - date(1970, 1, 1)).days for d in all_days], dtype=np.int64)
    month, dom, length = month_parts(nums)
    assert month.tolist() == [d.month for d in all_days]
    assert dom.tolist() == [d.day for d in all_days]
    nxt = [date(d.year + d.month // 12, d.month % 12 + 1, 1) for d in all_days]
    assert length.tolist() == [(n - date(d.year, d.month, 1)).days for d, n in zip(all_days, nxt, strict=True)]
    assert weekday(nums).tolist() == [d.weekday() for d in all_days]
    # a bar's date is the UTC date of its open time, whatever the hour
    t = np.array([day_number("2026-03-02") * DAY, day_number("2026-03-02") * DAY + 23 * HOUR + 59 * 60 * 10**9])
    assert bar_days(t).tolist() == [day_number("2026-03-02")] * 2


def test_day_of_week_monday_sell_friday_buy() -> None:
    # 2026-03-02 Monday .. 2026-03-06 Friday
    got = votes(["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06", "2026-03-07"])
    assert got["day_of_week"] == [-1, 0, 0, 0, 1, 0]


def test_turnaround_tuesday_needs_a_red_bar_before() -> None:
    days = ["2026-03-09", "2026-03-10", "2026-03-16", "2026-03-17"]  # Mon, Tue, Mon, Tue
    got = votes(days, red=[True, False, False, False])
    assert got["turnaround_tuesday"] == [0, 1, 0, 0]
    # the first bar has no previous bar: no vote even on a Tuesday
    assert votes(["2026-03-10"])["turnaround_tuesday"] == [0]


def test_month_end_last_three_calendar_days() -> None:
    got = votes(["2024-02-26", "2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2025-02-26"])
    assert got["month_end"] == [0, 1, 1, 1, 0, 1]  # 2025 February has 28 days: the 26th is in its last 3
    assert votes(["2024-02-26"], month_end_days=4)["month_end"] == [1]


def test_sell_in_may_and_january_december() -> None:
    days = [f"2026-{m:02d}-10" for m in range(1, 13)]
    got = votes(days)
    assert got["sell_in_may"] == [1, 0, 0, 1, -1, -1, -1, -1, -1, -1, 1, 1]
    assert got["january_december"] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1]


def test_santa_rally_window() -> None:
    got = votes(["2025-12-24", "2025-12-25", "2025-12-31", "2026-01-01", "2026-01-03", "2026-01-04"])
    assert got["santa_rally"] == [0, 1, 1, 1, 1, 0]


def xnys_holidays(first: str, last: str) -> tuple[np.ndarray, np.ndarray]:
    """exchange_calendars' own XNYS sessions and regular (scheduled) weekday holidays as day numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import exchange_calendars as xc  # type: ignore[import-untyped]

        cal = xc.get_calendar("XNYS", start="2023-06-01", end="2027-06-30")
        sessions = np.asarray(cal.sessions_nanos, dtype=np.int64) // DAY
        hol = cal.regular_holidays.holidays(first, last)
        holidays = np.array([h.value // DAY for h in hol if h.weekday() < 5], dtype=np.int64)
    return sessions, holidays


def test_holiday_eves_are_the_sessions_before_xnys_holidays_2024_2026() -> None:
    sessions, holidays = xnys_holidays("2024-01-01", "2027-01-01")
    assert len(holidays) >= 30
    want = sessions[np.searchsorted(sessions, holidays) - 1]
    lo, hi = day_number("2024-01-01"), day_number("2026-12-31")
    all_days = np.arange(lo, hi + 1, dtype=np.int64)
    got = all_days[is_holiday_eve(all_days)]
    assert got.tolist() == sorted(set(want.tolist()) & set(range(lo, hi + 1)))
    # named cases: the day before Thanksgiving, the Thursday before Good Friday, Friday before Labor Day
    for eve in ("2026-11-25", "2026-04-02", "2026-09-04", "2026-12-31", "2024-07-03"):
        assert is_holiday_eve(np.array([day_number(eve)]))[0], eve
    # not eves: an ordinary Wednesday; 2025-01-08 (2025-01-09 was an ad-hoc closure, announced late)
    for plain in ("2026-11-18", "2025-01-08"):
        assert not is_holiday_eve(np.array([day_number(plain)]))[0], plain
    assert votes(["2026-11-24", "2026-11-25", "2026-11-27"])["holiday_eve"] == [0, 1, 0]


def test_holiday_eves_far_back_and_ahead_extend_the_cache() -> None:
    old = np.array([day_number("1999-11-24"), day_number("1999-11-23")])  # Thanksgiving 1999: Nov 25
    assert is_holiday_eve(old).tolist() == [True, False]
    ahead = np.array([day_number("2040-11-21")])  # Thanksgiving 2040: Nov 22
    assert is_holiday_eve(ahead).tolist() == [True]


def test_fomc_eve_one_to_two_days_before_and_abstains_where_unknown() -> None:
    # FOMC statement 2026-03-18 18:00 UTC
    got = votes(["2026-03-15", "2026-03-16", "2026-03-17", "2026-03-18", "2026-03-19"])
    assert got["fomc_eve"] == [0, 1, 1, 0, 0]
    # the shipped schedule starts 2023-01-01 and runs out after 2028-01-26: no vote outside it, even
    # on the eves of the real 2022-12-14 meeting or on dates a later meeting might fall on
    assert votes(["2022-12-12", "2022-12-13"])["fomc_eve"] == [0, 0]
    after = [str(np.datetime64("2028-01-27") + i) for i in range(120)]
    assert set(votes(after)["fomc_eve"]) == {0}
    assert votes(["2028-01-24", "2028-01-25"])["fomc_eve"] == [1, 1]  # the last listed meeting still counts
    assert votes(["2026-03-15"], fomc_min_days=1, fomc_max_days=3)["fomc_eve"] == [1]


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="fomc_min_days must not exceed fomc_max_days"):
        CalendarParams(fomc_min_days=3, fomc_max_days=2)


def test_calendar_rule_two_votes_and_more_than_the_other_side() -> None:
    o = bars(["2026-01-02", "2026-06-01", "2025-12-05", "2026-02-20", "2026-02-23"])
    out = calendar(Context(o), CalendarParams())
    sub = {k: v.tolist() for k, v in calendar_votes(Context(o), CalendarParams()).items()}
    # Fri 2026-01-02: day, Sell-in-May (Jan), January, Santa -> 4 BUY; Mon 2026-06-01: day + May-Oct -> 2 SELL
    # Fri 2025-12-05: day + Sell-in-May BUY, December SELL -> 2 vs 1 BUY; Fri 2026-02-20: one BUY -> HOLD
    # Mon 2026-02-23: one SELL -> HOLD
    assert [sum(v[i] == 1 for v in sub.values()) for i in range(5)] == [4, 0, 2, 1, 0]
    assert [sum(v[i] == -1 for v in sub.values()) for i in range(5)] == [0, 2, 1, 0, 1]
    assert out.action.tolist() == [1, -1, 1, 0, 0]
    assert out.confidence.tolist() == [0.6, 0.6, 0.6, 0.0, 0.0]
    uncapped = calendar(Context(o), CalendarParams(cap=1.0))
    assert uncapped.confidence.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 0.0, 0.0])
    assert calendar(Context(o), CalendarParams(min_votes=3)).action.tolist() == [1, 0, 0, 0, 0]


def test_live_matches_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(CALENDAR, CALENDAR.default_params())
    assert sig.window == 2 and sig.warmup == 2
    btc = tail(load_btc_5m(shared_data), 2_000)
    assert_valid_output(assert_live_matches_vectorised(sig, btc), 2_000)
    spy = tail(load_spy_daily(shared_data), 1_500)
    out = assert_live_matches_vectorised(sig, spy)
    assert (out.action == 1).any() and (out.action == -1).any()


def test_votes_both_ways_on_real_spy_daily(shared_data: Path) -> None:
    spy = load_spy_daily(shared_data)
    out = calendar(Context(spy), CalendarParams())
    assert_valid_output(out, len(spy.close))
    buy, sell = (out.action == 1).mean(), (out.action == -1).mean()
    assert 0.15 < buy < 0.30 and 0.05 < sell < 0.20, (buy, sell)  # measured: 21.5 % BUY, 10.8 % SELL
    # SELLs need Monday or December plus May-Oct: never a SELL in February or March
    month = month_parts(bar_days(spy.open_time))[0]
    assert not ((out.action == -1) & ((month == 2) | (month == 3))).any()
    # the FOMC sub-vote abstains on all of SPY's 1999-2020 history (before the shipped schedule)
    assert (calendar_votes(Context(spy), CalendarParams())["fomc_eve"] == 0).all()


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 400), step_h=st.sampled_from([1, 4, 24]))
def test_live_matches_vectorised_on_random_series(seed: int, n: int, step_h: int) -> None:
    o = random_ohlcv(seed, n, step_ns=step_h * HOUR)
    sig = ResolvedSignal(CALENDAR, CALENDAR.default_params())
    assert_valid_output(assert_live_matches_vectorised(sig, o, start=0), n)
