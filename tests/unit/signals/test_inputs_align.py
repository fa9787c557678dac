"""align_asof: hand-worked cases, and input signals over real funding rates aligned onto real futures bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pia.signals.base import Context, Inputs, Ohlcv
from pia.signals.core_inputs import FEAR_GREED, FUNDING, FearGreedParams, FundingParams, fear_greed, funding
from pia.signals.inputs_align import align_asof
from pia.signals.registry import ResolvedSignal
from pia.testing.signals import assert_live_matches_vectorised, assert_valid_output

FUTURES = "candles/binance/freqtrade/futures"
MIN = 60_000_000_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def i64(*xs: int) -> np.ndarray:
    return np.asarray(xs, dtype=np.int64)


def test_each_bar_gets_the_latest_event_at_or_before_its_close() -> None:
    events = i64(10, 20, 30)
    values = np.array([1.0, 2.0, 3.0])
    bars = i64(5, 9, 10, 11, 19, 20, 29, 30, 1000)
    got = align_asof(events, values, bars)
    # before the first event: NaN; an event exactly at a bar's close counts for that bar
    np.testing.assert_array_equal(got, [np.nan, np.nan, 1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    assert got.dtype == np.float64 and got.shape == bars.shape


def test_max_age_makes_stale_values_nan() -> None:
    events = i64(10, 20)
    values = np.array([1.0, 2.0])
    bars = i64(9, 10, 13, 14, 15, 20, 24, 25)
    got = align_asof(events, values, bars, max_age_ns=4)
    # age = close - event time; NaN when age > 4 (an age of exactly 4 is still fresh)
    np.testing.assert_array_equal(got, [np.nan, 1.0, 1.0, 1.0, np.nan, 2.0, 2.0, np.nan])
    np.testing.assert_array_equal(
        align_asof(events, values, bars, max_age_ns=0), [np.nan, 1, np.nan] + [np.nan] * 2 + [2, np.nan, np.nan]
    )


def test_ties_nan_values_empty_events_and_bad_input() -> None:
    # two events at one time: the later entry wins; a NaN value stays NaN
    got = align_asof(i64(10, 10, 20), np.array([1.0, 5.0, np.nan]), i64(10, 15, 20))
    np.testing.assert_array_equal(got, [5.0, 5.0, np.nan])
    np.testing.assert_array_equal(align_asof(i64(), np.array([]), i64(1, 2)), [np.nan, np.nan])
    assert align_asof(i64(1), np.array([1.0]), i64()).shape == (0,)
    with pytest.raises(ValueError, match="sorted ascending"):
        align_asof(i64(20, 10), np.array([1.0, 2.0]), i64(30))
    with pytest.raises(ValueError, match="one length"):
        align_asof(i64(10, 20), np.array([1.0]), i64(30))
    with pytest.raises(ValueError, match="max_age_ns"):
        align_asof(i64(10), np.array([1.0]), i64(30), max_age_ns=-1)


def load_feather(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    import polars as pl

    df = pl.read_ipc(path)
    times = df["date"].dt.epoch("ns").to_numpy().astype(np.int64)
    return times, {k: df[k].cast(pl.Float64).to_numpy().copy() for k in ("open", "high", "low", "close", "volume")}


def xrp_bars(shared_data: Path) -> Ohlcv:
    t, c = load_feather(shared_data / FUTURES / "XRP_USDT_USDT-5m-futures.feather")
    assert (np.diff(t) == 5 * MIN).all()
    return Ohlcv(t, c["open"], c["high"], c["low"], c["close"], c["volume"])


def asof_loop(events: np.ndarray, values: np.ndarray, closes: np.ndarray, max_age: int | None) -> np.ndarray:
    """The alignment the slow, obvious way: scan the events for each bar."""
    out = np.full(len(closes), np.nan)
    for i, close in enumerate(closes):
        best = -1
        for j, e in enumerate(events):
            if e <= close:
                best = j
        if best >= 0 and (max_age is None or close - events[best] <= max_age):
            out[i] = values[best]
    return out


def test_real_funding_rates_aligned_onto_real_5m_bars(shared_data: Path) -> None:
    bars = xrp_bars(shared_data)
    ev, cols = load_feather(shared_data / FUTURES / "XRP_USDT_USDT-8h-funding_rate.feather")
    rates = cols["open"]  # freqtrade stores the funding rate in the `open` column
    closes = bars.open_time + 5 * MIN
    for max_age in (None, 9 * HOUR, 3 * HOUR):
        aligned = align_asof(ev, rates, closes, max_age)
        np.testing.assert_array_equal(aligned, asof_loop(ev, rates, closes, max_age))
    aligned = align_asof(ev, rates, closes, 9 * HOUR)
    # the bars start 2021-11-15, the funding history 2021-11-18 00:00:00.017: the bar closing at 00:00:00.000
    # must not see the event published 17 ms after it
    first = int(np.flatnonzero(~np.isnan(aligned))[0])
    assert closes[first - 1] < ev[0] <= closes[first]
    assert closes[first] - closes[first - 1] == 5 * MIN and np.isnan(aligned[:first]).all()

    inputs = Inputs(funding_rate=aligned)
    ctx = Context(bars, inputs)

    def expected(sell_above: float, buy_below: float) -> np.ndarray:
        want = np.zeros(len(aligned), dtype=np.int8)
        for i, r in enumerate(aligned.tolist()):
            if r == r:  # not NaN
                want[i] = -1 if r > sell_above else (1 if r < buy_below else 0)
        return want

    # the defaults (0.03 % / -0.01 %): the rates in these five days stay in 0.0001 .. 0.000199, so no vote
    default = funding(ctx, FundingParams())
    np.testing.assert_array_equal(default.action, expected(0.0003, -0.0001))
    assert (default.action == 0).all()
    # a tighter SELL threshold: the 0.0199 % rate of 2021-11-21 16:00 votes SELL until the bars end
    tight = funding(ctx, FundingParams(sell_above=0.00015))
    want = expected(0.00015, -0.0001)
    np.testing.assert_array_equal(tight.action, want)
    sells = np.flatnonzero(want == -1)
    assert len(sells) > 50 and sells[-1] == len(want) - 1
    assert ev[np.searchsorted(ev, closes[sells[0]], side="right") - 1] == ev[np.argmax(rates > 0.00015)]
    np.testing.assert_allclose(tight.confidence[sells], 0.5 + 0.5 * (aligned[sells] - 0.00015) / 0.00015)
    assert_valid_output(tight, len(want))
    assert_live_matches_vectorised(ResolvedSignal(FUNDING, FundingParams(sell_above=0.00015)), bars, inputs)


def test_daily_fear_greed_aligned_onto_real_5m_bars(shared_data: Path) -> None:
    bars = xrp_bars(shared_data)
    closes = bars.open_time + 5 * MIN
    # one reading per day at 00:00 UTC, from 2021-11-15 (the first bar's open) on; there is no real
    # Fear & Greed history in the shared data, so the readings are made up to cover every rule
    day0 = int(bars.open_time[0])
    assert day0 % DAY == 0
    readings = np.array([50.0, 20.0, 21.0, 80.0, 79.0, np.nan, 0.0])
    events = day0 + np.arange(7, dtype=np.int64) * DAY
    aligned = align_asof(events, readings, closes, max_age_ns=DAY + HOUR)
    out = fear_greed(Context(bars, Inputs(fear_greed=aligned)), FearGreedParams())
    day = (closes - day0) // DAY  # the bar closing at midnight sees that midnight's reading
    want = np.array([0, 1, 0, -1, 0, 0, 1], dtype=np.int8)[day]
    want_conf = np.array([0.0, 0.5, 0.0, 0.5, 0.0, 0.0, 1.0])[day]
    np.testing.assert_array_equal(out.action, want)
    np.testing.assert_allclose(out.confidence, want_conf)
    assert set(day.tolist()) == set(range(7))
    assert_live_matches_vectorised(ResolvedSignal(FEAR_GREED, FearGreedParams()), bars, Inputs(fear_greed=aligned))
