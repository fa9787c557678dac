"""NYSE market hours (XNYS via exchange_calendars) and the session-candle rules, checked by hand."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import numpy as np
import pytest

from pia.feeds.alpaca_wire import SUB_DTYPE, history_start, sub_step_for
from pia.intervals import MINUTE
from pia.market_hours import (
    SESSION_ANCHOR,
    NyseCalendar,
    SessionAggregator,
    calendar,
    expected_silence,
    is_open,
    next_open,
    session_bounds,
    session_candles,
    sessions_between,
)


def ns(text: str) -> int:
    """``2024-11-29T14:30`` (UTC) as int ns."""
    return int(np.datetime64(text, "ns").astype(np.int64))


@pytest.fixture(scope="module")
def cal() -> NyseCalendar:
    return calendar()


def test_exchange_calendars_is_imported_only_when_needed() -> None:
    code = "import sys, pia.market_hours; assert 'exchange_calendars' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_holidays_are_closed(cal: NyseCalendar) -> None:
    assert session_bounds(date(2024, 7, 4)) is None  # Independence Day
    assert session_bounds(date(2024, 12, 25)) is None
    assert session_bounds(date(2024, 11, 28)) is None  # Thanksgiving
    assert session_bounds(date(2024, 7, 6)) is None  # a Saturday
    assert not is_open(ns("2024-07-04T15:00"))
    assert cal.session_on(date(2024, 7, 4)) is None


def test_early_closes(cal: NyseCalendar) -> None:
    assert session_bounds(date(2024, 11, 29)) == (ns("2024-11-29T14:30"), ns("2024-11-29T18:00"))  # 13:00 EST
    assert session_bounds(date(2024, 7, 3)) == (ns("2024-07-03T13:30"), ns("2024-07-03T17:00"))  # 13:00 EDT
    day = cal.session_on(date(2024, 11, 29))
    assert day is not None and day.early_close
    normal = cal.session_on(date(2024, 11, 27))
    assert normal is not None and not normal.early_close
    assert is_open(ns("2024-11-29T17:59")) and not is_open(ns("2024-11-29T18:00"))


def test_daylight_saving_moves_the_open_in_utc() -> None:
    # DST began Sunday 2024-03-10 and ended Sunday 2024-11-03
    assert session_bounds(date(2024, 3, 8)) == (ns("2024-03-08T14:30"), ns("2024-03-08T21:00"))  # winter
    assert session_bounds(date(2024, 3, 11)) == (ns("2024-03-11T13:30"), ns("2024-03-11T20:00"))  # summer
    assert session_bounds(date(2024, 11, 1)) == (ns("2024-11-01T13:30"), ns("2024-11-01T20:00"))  # summer
    assert session_bounds(date(2024, 11, 4)) == (ns("2024-11-04T14:30"), ns("2024-11-04T21:00"))  # winter


def test_is_open_bounds_and_next_open(cal: NyseCalendar) -> None:
    assert is_open(ns("2024-03-11T13:30")) and not is_open(ns("2024-03-11T13:29:59"))
    assert not is_open(ns("2024-03-11T20:00"))
    assert next_open(ns("2024-03-08T22:00")) == ns("2024-03-11T13:30")  # Friday evening -> Monday (DST)
    assert next_open(ns("2024-07-03T17:30")) == ns("2024-07-05T13:30")  # over the holiday
    assert next_open(ns("2024-07-05T15:00")) == ns("2024-07-08T13:30")  # open now -> the next session
    assert cal.next_close(ns("2024-07-05T15:00")) == ns("2024-07-05T20:00")
    assert cal.next_close(ns("2024-07-04T15:00")) == ns("2024-07-05T20:00")


def test_sessions_between() -> None:
    week = sessions_between(ns("2024-07-01"), ns("2024-07-08"))  # Monday .. Sunday, 4th closed, 3rd early
    assert [s.day for s in week] == [date(2024, 7, d) for d in (1, 2, 3, 5)]
    assert [s.early_close for s in week] == [False, False, True, False]
    assert sessions_between(ns("2024-07-06"), ns("2024-07-07")) == []


def test_expected_silence() -> None:
    assert expected_silence(ns("2024-07-06T15:00"))  # Saturday
    assert expected_silence(ns("2024-07-04T15:00"))  # holiday
    assert expected_silence(ns("2024-07-05T21:00"))  # after the close
    assert expected_silence(ns("2024-07-05T13:31"))  # the first minute bars are not due yet
    assert not expected_silence(ns("2024-07-05T13:33"))
    assert not expected_silence(ns("2024-07-05T19:59"))
    assert expected_silence(ns("2024-07-05T13:33"), grace_s=600)


def test_intraday_candles_anchor_at_the_open_and_stop_at_the_close(cal: NyseCalendar) -> None:
    b = cal.candle_bounds
    # a summer day: 09:30 New York = 13:30 UTC
    assert b("15m", ns("2024-07-05T13:44")) == (ns("2024-07-05T13:30"), ns("2024-07-05T13:45"))
    assert b("1h", ns("2024-07-05T13:30")) == (ns("2024-07-05T13:30"), ns("2024-07-05T14:30"))
    assert b("1h", ns("2024-07-05T19:45")) == (ns("2024-07-05T19:30"), ns("2024-07-05T20:00"))  # 15:30-16:00
    assert b("4h", ns("2024-07-05T17:29")) == (ns("2024-07-05T13:30"), ns("2024-07-05T17:30"))
    assert b("4h", ns("2024-07-05T17:30")) == (ns("2024-07-05T17:30"), ns("2024-07-05T20:00"))
    # a winter day: 09:30 = 14:30 UTC
    assert b("1h", ns("2024-01-05T14:30")) == (ns("2024-01-05T14:30"), ns("2024-01-05T15:30"))
    # the early close 2024-11-29 (13:00 EST = 18:00 UTC)
    assert b("1h", ns("2024-11-29T17:45")) == (ns("2024-11-29T17:30"), ns("2024-11-29T18:00"))
    assert b("4h", ns("2024-11-29T17:59")) == (ns("2024-11-29T14:30"), ns("2024-11-29T18:00"))
    assert b("1h", ns("2024-11-29T18:00")) is None  # closed
    assert b("15m", ns("2024-07-05T12:00")) is None  # pre-market belongs to no candle


def test_session_group_candles(cal: NyseCalendar) -> None:
    b = cal.candle_bounds
    assert b("1d", ns("2024-11-29T15:00")) == (ns("2024-11-29T14:30"), ns("2024-11-29T18:00"))
    # 1w: Labor Day week starts on Tuesday; ends on Friday's close
    assert b("1w", ns("2024-09-05T15:00")) == (ns("2024-09-03T13:30"), ns("2024-09-06T20:00"))
    # 1M: November 2024 ends with the early close on the 29th
    assert b("1M", ns("2024-11-04T15:00")) == (ns("2024-11-01T13:30"), ns("2024-11-29T18:00"))
    # 3d: sessions counted in threes from 2000-01-03: (Jan 3, 4, 5), (Jan 6, 7, 10), ...
    assert date(2000, 1, 3) == SESSION_ANCHOR
    assert b("3d", ns("2000-01-04T15:00")) == (ns("2000-01-03T14:30"), ns("2000-01-05T21:00"))
    assert b("3d", ns("2000-01-06T15:00")) == (ns("2000-01-06T14:30"), ns("2000-01-10T21:00"))
    assert b("3d", ns("2000-01-10T15:00")) == (ns("2000-01-06T14:30"), ns("2000-01-10T21:00"))
    # the grouping is fixed: a 3d candle a quarter century later still spans three sessions
    o, e = b("3d", ns("2024-11-27T15:00")) or (0, 0)
    assert len(sessions_between(o, e)) == 3
    assert cal.candle_from("1d", ns("2024-07-04T12:00")) == (ns("2024-07-05T13:30"), ns("2024-07-05T20:00"))


def test_vectorised_bounds_match_scalar(cal: NyseCalendar) -> None:
    ts = np.arange(ns("2024-10-28"), ns("2024-12-03"), 7 * MINUTE, dtype=np.int64)
    for iv in ("15m", "1h", "4h", "1d", "3d", "1w", "1M"):
        opens, ends = cal.candles_of(iv, ts)
        for t, o, e in zip(ts[::97].tolist(), opens[::97].tolist(), ends[::97].tolist(), strict=True):
            assert cal.candle_bounds(iv, t) == (None if o < 0 else (o, e)), (iv, t)


def test_sub_bar_grid(cal: NyseCalendar) -> None:
    span = (ns("2024-01-02"), ns("2024-12-31"))
    assert sub_step_for(cal, ["1h", "4h", "1d", "3d", "1w", "1M"], *span) == 30 * MINUTE
    assert sub_step_for(cal, ["15m", "1h"], *span) == 15 * MINUTE
    assert sub_step_for(cal, ["5m"], *span) == 5 * MINUTE
    assert sub_step_for(cal, ["1m", "1d"], *span) == MINUTE


def test_history_start(cal: NyseCalendar) -> None:
    end = ns("2024-07-10T15:00")  # a Wednesday, mid-session
    # 1d: the newest 3 closed sessions (Jul 5, 8, 9), and the one in progress
    assert history_start(cal, "1d", end, 3, 100) == ns("2024-07-05T13:30")
    # 1h: 7 candles a session, one closed today: 10 closed candles reach back into Jul 8
    assert history_start(cal, "1h", end, 10, 100) == ns("2024-07-08T13:30")
    # capped: never more than max_sessions back (the cap lands on a group start)
    assert history_start(cal, "1M", end, 500, 30) == ns("2024-05-01T13:30")


def _subs(rows: list[tuple[str, float, float, float, float, float]]) -> np.ndarray:
    out = np.empty(len(rows), dtype=SUB_DTYPE)
    for i, (t, o, h, lo, c, v) in enumerate(rows):
        out[i] = (ns(t), ns(t) + MINUTE, o, h, lo, c, v)
    return out


def test_early_close_day_by_hand(cal: NyseCalendar) -> None:
    """2024-11-29 closes 13:00 EST: the last 1h candle is 12:30-13:00, the only 4h one 09:30-13:00."""
    subs = _subs(
        [
            ("2024-11-29T14:29", 9.0, 9.0, 9.0, 9.0, 5),  # pre-market: not part of any candle
            ("2024-11-29T14:30", 10.0, 10.5, 9.9, 10.2, 100),
            ("2024-11-29T14:31", 10.2, 10.3, 10.1, 10.3, 50),
            ("2024-11-29T15:29", 10.3, 11.0, 10.3, 10.9, 10),
            ("2024-11-29T15:30", 10.9, 10.9, 10.0, 10.1, 20),
            ("2024-11-29T17:30", 10.1, 10.4, 10.1, 10.4, 30),
            ("2024-11-29T17:59", 10.4, 10.6, 10.2, 10.5, 40),
            ("2024-11-29T18:00", 10.5, 10.5, 10.5, 10.5, 7),  # post-market
        ]
    )
    end = ns("2024-12-02")
    h1 = session_candles(subs, "1h", cal, end_ns=end)
    assert h1.tolist() == [
        (ns("2024-11-29T14:30"), 10.0, 11.0, 9.9, 10.9, 160.0),
        (ns("2024-11-29T15:30"), 10.9, 10.9, 10.0, 10.1, 20.0),
        (ns("2024-11-29T17:30"), 10.1, 10.6, 10.1, 10.5, 70.0),
    ]
    h4 = session_candles(subs, "4h", cal, end_ns=end)
    assert h4.tolist() == [(ns("2024-11-29T14:30"), 10.0, 11.0, 9.9, 10.5, 250.0)]
    d1 = session_candles(subs, "1d", cal, end_ns=end)
    assert d1.tolist() == h4.tolist()
    # not closed yet at 12:59 EST: nothing; the 1M candle (Nov) closes with this session
    assert len(session_candles(subs, "1d", cal, end_ns=ns("2024-11-29T17:59"))) == 0
    assert session_candles(subs, "1M", cal, end_ns=ns("2024-11-29T18:00"))["open_time"].tolist() == [
        ns("2024-11-01T13:30")
    ]


def _random_minutes(cal: NyseCalendar, seed: int, start: str, end: str) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for s in sessions_between(ns(start), ns(end)):
        t = np.arange(s.open_ns - 60 * MINUTE, s.close_ns + 60 * MINUTE, MINUTE)
        t = t[rng.random(len(t)) < 0.6]
        for x in t.tolist():
            c = float(rng.integers(100, 200))
            rows.append((x, x + MINUTE, c, c + 1, c - 1, c, float(rng.integers(1, 1000))))
    return np.array(rows, dtype=SUB_DTYPE)


@pytest.mark.parametrize("seed", [1, 2])
def test_streaming_matches_vectorised(cal: NyseCalendar, seed: int) -> None:
    """Across a DST switch, Thanksgiving and an early close, with sparse minutes: one rule, twice."""
    intervals = ["15m", "1h", "4h", "1d", "3d", "1w", "1M"]
    subs = _random_minutes(cal, seed, "2024-10-28", "2024-12-10")
    agg = SessionAggregator("X", intervals, cal)
    agg.start(int(subs["open_time"][0]))
    streamed: dict[str, list[tuple[int, float, float, float, float, float]]] = {iv: [] for iv in intervals}
    for t, e, o, h, lo, c, v in subs.tolist():
        outcome, bars = agg.ingest(t, e, o, h, lo, c, v)
        if outcome == "outside":
            bars = agg.flush(t)
        for b in bars:
            streamed[b.interval].append((b.open_time, b.open, b.high, b.low, b.close, b.volume))
    for b in agg.flush(ns("2025-01-01")):
        streamed[b.interval].append((b.open_time, b.open, b.high, b.low, b.close, b.volume))
    first = int(subs["open_time"][0])
    for iv in intervals:
        want = session_candles(subs, iv, cal, end_ns=ns("2025-01-01"))
        want = want[want["open_time"] >= first]  # those that began before the data are partial: never emitted
        assert streamed[iv] == want.tolist(), iv
    assert streamed["1d"][-1][0] == ns("2024-12-09T14:30")


def test_aggregator_corrections_and_late_bars(cal: NyseCalendar) -> None:
    agg = SessionAggregator("X", ["15m", "1h"], cal)
    t0 = ns("2024-07-05T13:30")
    agg.start(t0)

    def add(minute: int, c: float, v: float = 10.0) -> tuple[str, list[tuple[str, float, float]]]:
        t = t0 + minute * MINUTE
        outcome, bars = agg.ingest(t, t + MINUTE, c, c, c, c, v)
        return outcome, [(b.interval, b.high, b.volume) for b in bars]

    assert add(0, 10.0) == ("new", [])
    assert add(0, 10.0) == ("duplicate", [])
    assert add(1, 11.0) == ("new", [])
    assert add(1, 12.0, 20.0) == ("corrected", [])  # an updated bar: the candle in progress changes
    assert add(14, 10.5) == ("new", [("15m", 12.0, 40.0)])  # the bar that ends the candle closes it
    assert add(1, 13.0) == ("late", [])  # corrects an emitted 15m (counted, not re-emitted) ...
    assert add(20, 10.0) == ("new", [])
    out = agg.flush(t0 + 60 * MINUTE)  # ... and the 1h candle still in progress took the correction
    assert [(b.interval, b.high, b.volume) for b in out] == [("15m", 10.0, 10.0), ("1h", 13.0, 40.0)]
    assert agg.ingest(t0 - MINUTE, t0, 1, 1, 1, 1, 1)[0] == "outside"
    assert agg.next_deadline() is None
