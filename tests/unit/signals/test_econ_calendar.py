"""econ_calendar: bar close times, the 4 h / 24 h SELL rules on crafted times, abstaining where the
schedules are unknown, live == vectorised on real candles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.signals.base import Context, Ohlcv
from pia.signals.econ_calendar import (
    ECON_CALENDAR,
    SPACING_BARS,
    EconCalendarParams,
    bar_length_ns,
    econ_calendar,
    hours_to_next_release,
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

MIN = 60 * 10**9
HOUR = 60 * MIN


def ns(text: str) -> int:
    return int(np.datetime64(text, "ns").astype(np.int64))


def bars_from(start: str, n: int, step: int) -> Ohlcv:
    t = ns(start) + np.arange(n, dtype=np.int64) * step
    c = np.full(n, 100.0)
    return Ohlcv(t, c, c + 1, c - 1, c, np.ones(n))


def run(o: Ohlcv, **kw: Any) -> tuple[list[int], list[float]]:
    out = econ_calendar(Context(o), EconCalendarParams(**kw))
    assert_valid_output(out, len(o.close))
    return out.action.tolist(), out.confidence.tolist()


def test_bar_length_is_the_smallest_recent_spacing() -> None:
    t = np.array([0, 5, 10, 20, 25], dtype=np.int64) * MIN
    np.testing.assert_array_equal(bar_length_ns(t), [np.nan, 5 * MIN, 5 * MIN, 5 * MIN, 5 * MIN])
    # 4h stock candles: 09:30 and 13:30 New York, nights and weekends between
    day = 24 * HOUR
    opens = np.array([0, 4 * HOUR, day, day + 4 * HOUR, 4 * day, 4 * day + 4 * HOUR], dtype=np.int64)
    assert bar_length_ns(opens)[1:].tolist() == [4 * HOUR] * 5
    # a short spacing counts for the next SPACING_BARS spacings, then drops out of the window
    t2 = np.r_[0, np.cumsum(np.r_[1, np.full(30, 2)])].astype(np.int64)
    got = bar_length_ns(t2)
    assert got[1 : SPACING_BARS + 1].tolist() == [1.0] * SPACING_BARS
    assert got[SPACING_BARS + 1 :].tolist() == [2.0] * (len(t2) - SPACING_BARS - 1)
    assert np.isnan(bar_length_ns(np.array([7], dtype=np.int64))).all()


def test_sell_within_4h_cautious_within_24h_2025() -> None:
    # 2025-06-11: CPI at 12:30 UTC (08:30 EDT). Hourly bars from 2025-06-10 10:00 UTC: closes 11:00 ..
    o = bars_from("2025-06-10T10:00", 30, HOUR)
    actions, conf = run(o)
    for i in range(1, 30):
        h = (ns("2025-06-11T12:30") - (int(o.open_time[i]) + HOUR)) / HOUR  # hours from the close to the CPI
        if 0 <= h < 4:
            assert (actions[i], conf[i]) == (-1, 0.7), (i, h)
        elif 4 <= h < 24:
            assert (actions[i], conf[i]) == (-1, 0.4), (i, h)
        else:
            # after the release the next ones are the FOMC on 06-18 and NFP on 07-03: nothing near
            assert (actions[i], conf[i]) == (0, 0.0), (i, h)
    assert actions[0] == 0  # the first bar has no close time
    assert actions[1] == 0 and actions[2] == -1  # closes 24.5 h, then 23.5 h before the CPI
    assert (actions[22], conf[22], actions[26]) == (-1, 0.7, 0)  # 3.5 h before; 30 min after


def test_boundaries_on_5_minute_bars_around_a_fomc_statement() -> None:
    # 2025-06-18 FOMC at 18:00 UTC; 5m bars opening 13:50 .. 18:10
    o = bars_from("2025-06-18T13:45", 54, 5 * MIN)
    actions, conf = run(o)
    close = o.open_time + 5 * MIN
    i4 = int(np.flatnonzero(close == ns("2025-06-18T14:00"))[0])  # exactly 4 h before: cautious
    assert (actions[i4], conf[i4]) == (-1, 0.4)
    assert (actions[i4 + 1], conf[i4 + 1]) == (-1, 0.7)  # 3 h 55 min
    at = int(np.flatnonzero(close == ns("2025-06-18T18:00"))[0])  # the statement at the close itself
    assert (actions[at], conf[at]) == (-1, 0.7)
    # the bar spanning the statement closes after it: the next release (NFP 07-03) is far away
    assert actions[at + 1] == 0


def test_nearest_release_wins_and_params_apply() -> None:
    # 2025-01-29 FOMC 19:00 UTC; NFP 2025-02-07; bars that close 2025-01-28 20:00 are 23 h before
    o = bars_from("2025-01-28T18:00", 3, HOUR)
    assert run(o) == ([0, -1, -1], [0.0, 0.4, 0.4])
    assert run(o, far_hours=22.5)[0] == [0, 0, -1]
    assert run(o, near_hours=22.5, far_confidence=0.3) == ([0, -1, -1], [0.0, 0.3, 0.7])
    with pytest.raises(ValueError, match="near_hours must be below far_hours"):
        EconCalendarParams(near_hours=30)
    with pytest.raises(ValueError, match="listed twice"):
        EconCalendarParams(kinds=("fomc", "fomc"))


def test_abstains_where_any_watched_schedule_is_unknown() -> None:
    # CPI and NFP lists run out after 2025-12-31: the FOMC of 2026-01-28 19:00 UTC is known, but with
    # all three kinds watched the signal cannot say what else is scheduled, so it abstains
    o = bars_from("2026-01-28T12:00", 10, HOUR)
    assert run(o)[0] == [0, 0, 0, -1, -1, -1, -1, 0, 0, 0]  # only the near SELL is certain
    h, complete = hours_to_next_release(Context(o), ("fomc", "cpi", "nfp"))
    assert not complete.any() and np.isnan(h[0])
    assert h[1:].tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 1174.0, 1173.0, 1172.0]  # then FOMC 03-18 18:00
    actions, conf = run(o, kinds=("fomc",))
    assert actions[1:] == [-1] * 6 + [0] * 3  # closes 14:00 .. 19:00: 5 h before the statement .. at it
    assert conf[1:7] == [0.4, 0.4, 0.7, 0.7, 0.7, 0.7]
    # before the lists start (2023-01-01): the 2022-12-14 FOMC (19:00 UTC) is not known
    before = bars_from("2022-12-14T12:00", 6, HOUR)
    assert set(run(before)[0]) == {0}
    # 2025-12-18 13:30 UTC, the last CPI listed, after the last NFP (12-16) of its list: the next NFP
    # is unknown, so only the near SELL is voted; watching CPI alone, the cautious SELL too
    end = bars_from("2025-12-17T15:00", 23, HOUR)  # bar i closes 21.5 - i hours before the CPI
    actions, conf = run(end)
    assert actions == [0] * 18 + [-1] * 4 + [0] and conf[18:22] == [0.7] * 4
    assert run(end, kinds=("cpi",))[0] == [0] + [-1] * 21 + [0]  # after the last CPI: unknown


def test_live_matches_vectorised_on_real_candles(shared_data: Path) -> None:
    sig = ResolvedSignal(ECON_CALENDAR, ECON_CALENDAR.default_params())
    assert sig.window == SPACING_BARS + 1 and sig.warmup == 2
    btc = tail(load_btc_5m(shared_data), 3_000)  # 2023-01-30 .. 02-09: FOMC 02-01, NFP 02-03
    out = assert_live_matches_vectorised(sig, btc)
    assert_valid_output(out, len(btc.close))
    assert (out.action == -1).any() and not (out.action == 1).any()
    spy = tail(load_spy_daily(shared_data), 400)  # 2019-2020: before the schedules start
    assert (assert_live_matches_vectorised(sig, spy).action == 0).all()


def test_vote_rates_on_real_btc(shared_data: Path) -> None:
    btc = load_btc_5m(shared_data)  # 2023-01-02 .. 02-09: NFP 01-06, CPI 01-12, FOMC 02-01, NFP 02-03
    out = econ_calendar(Context(btc), EconCalendarParams())
    sell = out.action == -1
    assert 0.08 < sell.mean() < 0.13  # measured 10.5 %: 4 releases x ~24 h of 5-minute bars
    assert set(np.round(out.confidence[sell], 6).tolist()) == {0.7, 0.4}
    # the FOMC of 2023-02-01 19:00 UTC: the 5m bar closing 16:00 (3 h before) is a strong SELL
    i = int(np.flatnonzero(btc.open_time == ns("2023-02-01T15:55"))[0])
    assert (int(out.action[i]), float(out.confidence[i])) == (-1, 0.7)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(30, 300), step_min=st.sampled_from([5, 15, 60, 240]))
def test_live_matches_vectorised_on_random_series(seed: int, n: int, step_min: int) -> None:
    o = random_ohlcv(seed, n, step_ns=step_min * MIN)  # from 2025-01-01: NFP 01-10, CPI 01-15, FOMC 01-29
    sig = ResolvedSignal(ECON_CALENDAR, ECON_CALENDAR.default_params())
    assert_valid_output(assert_live_matches_vectorised(sig, o, start=0), n)
