"""The simulated market: determinism, bar invariants, history layout, stream continuity and pacing, realism."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import talib

from pia.clock import FakeClock
from pia.config import SimulatedFeedConfig
from pia.events import Bar
from pia.feeds.aggregate import aggregate, split_closed
from pia.feeds.base import BarArray, Feed, History, bars_to_array
from pia.feeds.simulated import SimulatedMarket
from pia.instruments import AssetClass, Instrument, Universe, read_universe_toml
from pia.intervals import DAY, MINUTE, NS, parse_interval

UNIVERSE = Universe.model_validate(
    read_universe_toml(Path(__file__).resolve().parents[3] / "configs" / "instruments.toml")
)
INSTRUMENTS = UNIVERSE.instruments
INTERVALS = [t.interval for t in UNIVERSE.timeframes]  # 15m 1h 4h 1d 3d 1w 1M
START = datetime(2024, 6, 12, 15, 37, tzinfo=UTC)  # a Wednesday, mid-session for US stocks
START_NS = int(START.timestamp()) * NS
D0 = START_NS // DAY * DAY - 10 * DAY
SMALL = [UNIVERSE.instrument(s) for s in ("BTC-USD", "XAU-USD", "AAPL")]


def _cfg(**kw: object) -> SimulatedFeedConfig:
    base: dict[str, object] = {"start": START, "speed": 0.0, "history_days": 60}
    return SimulatedFeedConfig.model_validate(base | kw)


def _market(cfg: SimulatedFeedConfig, instruments: Sequence[Instrument] = SMALL) -> SimulatedMarket:
    return SimulatedMarket(cfg, instruments, FakeClock(START_NS + 12345 * NS))


def _by_key(histories: Sequence[History]) -> dict[tuple[str, str], History]:
    return {(h.symbol, h.interval): h for h in histories}


async def _take(market: SimulatedMarket) -> list[Bar]:
    return [bar async for bar in market.stream()]


def _check_ohlc(bars: BarArray) -> None:
    o, h, lo, c, v = (bars[f] for f in ("open", "high", "low", "close", "volume"))
    assert np.all(np.isfinite(np.stack([o, h, lo, c, v])))
    assert np.all(lo > 0)
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(np.maximum(o, c) <= h)
    assert np.all(v >= 0)


@pytest.fixture(scope="module")
def full() -> dict[tuple[str, str], History]:
    """History of all 31 instruments with the default depth (1600 days + 10 days of minutes)."""
    market = SimulatedMarket(SimulatedFeedConfig(start=START), INSTRUMENTS, FakeClock())
    return _by_key(asyncio.run(market.history(INTERVALS)))


# ----------------------------------------------------------------------------------------- contract
def test_is_a_feed_with_a_start() -> None:
    market: Feed = _market(_cfg())
    assert (market.name, market.base_interval) == ("simulated", "1m")
    assert market.instruments == tuple(SMALL)
    assert isinstance(market, SimulatedMarket)
    assert market.start_ns == START_NS


def test_start_defaults_to_the_clock_floored_to_the_minute() -> None:
    clock = FakeClock(START_NS + 42 * NS + 17)
    market = SimulatedMarket(SimulatedFeedConfig(), SMALL, clock)
    assert market.start_ns == START_NS
    assert market.statistics()["start_ns"] == START_NS


def test_rejects_duplicate_or_missing_instruments() -> None:
    with pytest.raises(ValueError, match="unique"):
        _market(_cfg(), [SMALL[0], SMALL[0]])
    with pytest.raises(ValueError, match="at least one"):
        _market(_cfg(), [])


async def test_rejects_unknown_interval() -> None:
    with pytest.raises(ValueError, match="not an interval"):
        await _market(_cfg()).history(["15x"])


# ------------------------------------------------------------------------------------- determinism
async def test_same_seed_same_bars_and_different_seed_different_bars() -> None:
    a = await _market(_cfg(seed=3, max_minutes=50)).history(["15m", "1d"])
    b = await _market(_cfg(seed=3, max_minutes=50)).history(["15m", "1d"])
    c = await _market(_cfg(seed=4, max_minutes=50)).history(["15m", "1d"])
    assert [(h.symbol, h.interval) for h in a] == [(h.symbol, h.interval) for h in b]
    for ha, hb, hc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(ha.bars, hb.bars)
        assert ha.partial == hb.partial
        assert not np.array_equal(ha.bars["close"], hc.bars["close"])
    s1 = await _take(_market(_cfg(seed=3, max_minutes=50)))
    s2 = await _take(_market(_cfg(seed=3, max_minutes=50)))
    s3 = await _take(_market(_cfg(seed=4, max_minutes=50)))
    assert s1 == s2
    assert s1 != s3


async def test_each_instrument_path_is_independent_of_the_others() -> None:
    alone = _by_key(await _market(_cfg(), [SMALL[2]]).history(["1h"]))
    together = _by_key(await _market(_cfg(), SMALL).history(["1h"]))
    for key, hist in alone.items():
        np.testing.assert_array_equal(hist.bars, together[key].bars)


# ----------------------------------------------------------------------------------------- history
def test_history_has_every_interval_and_valid_bars(full: dict[tuple[str, str], History]) -> None:
    assert set(full) == {(i.symbol, iv) for i in INSTRUMENTS for iv in ["1m", *INTERVALS]}
    for hist in full.values():
        _check_ohlc(hist.bars)
        assert np.all(np.diff(hist.bars["open_time"]) > 0)
        assert not hist.bars.flags.writeable
        if hist.partial is not None:
            _check_ohlc(bars_to_array([hist.partial]))


def test_minute_history_is_contiguous_from_d0_to_start(full: dict[tuple[str, str], History]) -> None:
    for inst in INSTRUMENTS:
        hist = full[(inst.symbol, "1m")]
        t = hist.bars["open_time"]
        assert t[0] == D0
        assert t[-1] == START_NS - MINUTE
        assert np.all(np.diff(t) == MINUTE)
        assert hist.partial is None
        assert hist.bars["close"][-1] == pytest.approx(100.0, rel=1e-12)  # the start price


def test_closed_candles_end_by_the_start_and_partial_opens_at_its_floor(
    full: dict[tuple[str, str], History],
) -> None:
    for (_, code), hist in full.items():
        iv = parse_interval(code)
        assert iv.next_open(int(hist.bars["open_time"][-1])) <= START_NS
        if code == "1m":
            continue
        assert hist.partial is not None
        assert hist.partial.interval == code
        assert hist.partial.open_time == iv.floor(START_NS)
        assert hist.partial.open_time == iv.next_open(int(hist.bars["open_time"][-1]))


def test_daily_history_is_deep_then_minute_days(full: dict[tuple[str, str], History]) -> None:
    daily = full[("BTC-USD", "1d")].bars
    assert len(daily) == 1600 + 10
    assert daily["open_time"][0] == D0 - 1600 * DAY
    assert np.all(np.diff(daily["open_time"]) == DAY)


def test_intraday_candles_are_the_aggregate_of_the_minute_path(full: dict[tuple[str, str], History]) -> None:
    for inst in INSTRUMENTS[:8]:
        minute = full[(inst.symbol, "1m")].bars
        for code in ("15m", "1h", "4h", "1d"):
            hist = full[(inst.symbol, code)]
            closed, still_open = split_closed(aggregate(minute, code), code, START_NS)
            overlap = hist.bars[hist.bars["open_time"] >= D0]
            np.testing.assert_array_equal(overlap, closed)
            np.testing.assert_array_equal(bars_to_array([hist.partial]), still_open)  # type: ignore[list-item]


def test_coarse_candles_are_the_aggregate_of_the_daily_series(full: dict[tuple[str, str], History]) -> None:
    for inst in INSTRUMENTS[:8]:
        h1d = full[(inst.symbol, "1d")]
        days = np.concatenate([h1d.bars, bars_to_array([h1d.partial])])  # type: ignore[list-item]
        for code in ("3d", "1w", "1M"):
            hist = full[(inst.symbol, code)]
            candles = aggregate(days, code)
            candles = candles[candles["open_time"] >= days["open_time"][0]]  # whole candles only
            np.testing.assert_array_equal(hist.bars, candles[:-1])
            np.testing.assert_array_equal(bars_to_array([hist.partial]), candles[-1:])  # type: ignore[list-item]


def test_deep_daily_path_joins_the_minute_path(full: dict[tuple[str, str], History]) -> None:
    for inst in INSTRUMENTS:
        daily, minute = full[(inst.symbol, "1d")].bars, full[(inst.symbol, "1m")].bars
        last_deep = daily[daily["open_time"] == D0 - DAY][0]
        assert minute["open"][0] == pytest.approx(last_deep["close"], rel=1e-9)


async def test_no_partial_when_the_start_is_on_a_boundary() -> None:
    monday = datetime(2024, 6, 10, tzinfo=UTC)  # a Monday midnight, not a month start
    hist = _by_key(await _market(_cfg(start=monday)).history(INTERVALS))
    for code in ("15m", "1h", "4h", "1d", "1w"):
        assert hist[("BTC-USD", code)].partial is None
    assert hist[("BTC-USD", "1M")].partial is not None
    assert hist[("BTC-USD", "1d")].bars["open_time"][-1] == int(monday.timestamp()) * NS - DAY


async def test_configured_start_price() -> None:
    hist = _by_key(await _market(_cfg(prices={"BTC-USD": 65000.0})).history([]))
    assert hist[("BTC-USD", "1m")].bars["close"][-1] == pytest.approx(65000.0)
    assert hist[("AAPL", "1m")].bars["close"][-1] == pytest.approx(100.0)


async def test_history_runs_off_the_event_loop() -> None:
    market = SimulatedMarket(SimulatedFeedConfig(start=START), INSTRUMENTS, FakeClock())
    ticks = 0
    task = asyncio.create_task(market.history(INTERVALS))
    while not task.done():
        ticks += 1
        await asyncio.sleep(0.001)
    await task
    assert ticks > 3
    assert market.statistics()["history_generated"]


# ------------------------------------------------------------------------------------------ stream
async def test_stream_continues_the_history_in_time_order() -> None:
    market = _market(_cfg(max_minutes=600))  # crosses midnight: a new generated day
    hist = _by_key(await market.history(["15m"]))
    bars = await _take(market)
    assert len(bars) == 600 * len(SMALL)
    assert [b.symbol for b in bars[: len(SMALL)]] == [i.symbol for i in SMALL]
    for inst in SMALL:
        mine = [b for b in bars if b.symbol == inst.symbol]
        times = np.array([b.open_time for b in mine])
        assert times[0] == START_NS
        assert np.all(np.diff(times) == MINUTE)
        assert all(b.interval == "1m" for b in mine)
        _check_ohlc(bars_to_array(mine))
        opens, closes = np.array([b.open for b in mine]), np.array([b.close for b in mine])
        last = hist[(inst.symbol, "1m")].bars["close"][-1]
        assert opens[0] == pytest.approx(last, rel=1e-12)  # 15:37 UTC: no gap
        if inst.asset_class is not AssetClass.STOCKS:  # no gaps at all: open == previous close
            np.testing.assert_allclose(opens[1:], closes[:-1], rtol=1e-12)
    stats = market.statistics()
    assert stats["minutes_streamed"] == 600
    assert stats["bars_yielded"] == 600 * len(SMALL)
    assert stats["sim_time_ns"] == START_NS + 600 * MINUTE


async def test_stream_from_a_midnight_start_generates_the_next_day() -> None:
    midnight = datetime(2024, 6, 13, tzinfo=UTC)
    market = _market(_cfg(start=midnight, max_minutes=3))
    last = _by_key(await market.history([]))[("BTC-USD", "1m")].bars[-1]
    bars = [b for b in await _take(market) if b.symbol == "BTC-USD"]
    assert [b.open_time for b in bars] == [int(midnight.timestamp()) * NS + k * MINUTE for k in range(3)]
    assert bars[0].open == pytest.approx(last["close"], rel=1e-12)


async def test_statistics_is_a_snapshot() -> None:
    market = _market(_cfg(max_minutes=2))
    stats = market.statistics()
    stats["bars_yielded"] = 99
    assert market.statistics()["bars_yielded"] == 0
    assert market.statistics()["history_generated"] is False
    await _take(market)
    assert market.statistics()["bars_yielded"] == 2 * len(SMALL)


async def test_stream_without_history_is_the_same_stream() -> None:
    with_history = _market(_cfg(max_minutes=30))
    await with_history.history(INTERVALS)
    assert await _take(with_history) == await _take(_market(_cfg(max_minutes=30)))


async def test_stream_can_be_iterated_once() -> None:
    market = _market(_cfg(max_minutes=1))
    await _take(market)
    with pytest.raises(RuntimeError, match="once"):
        await _take(market)


async def _until_sleeping(clock: FakeClock) -> None:
    for _ in range(1000):
        if clock.sleepers:
            return
        await asyncio.sleep(0)
    raise AssertionError("the stream never slept on the clock")


async def test_pacing_follows_the_fake_clock() -> None:
    clock = FakeClock(START_NS)
    market = SimulatedMarket(_cfg(speed=60.0, max_minutes=100), SMALL, clock)
    await market.history([])
    got: list[Bar] = []

    async def consume() -> None:
        async for bar in market.stream():
            got.append(bar)

    task = asyncio.create_task(consume())
    await _until_sleeping(clock)
    assert got == []
    await clock.advance(10)  # 10 wall seconds at 60x: 10 simulated minutes
    assert len(got) == 10 * len(SMALL)
    assert got[-1].open_time == START_NS + 9 * MINUTE
    await clock.advance(0.5)
    assert len(got) == 10 * len(SMALL)
    await clock.advance(4.5)
    assert len(got) == 15 * len(SMALL)
    assert clock.sleepers == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_max_minutes_stops_the_stream_at_speed_zero() -> None:
    clock = FakeClock(START_NS)
    market = SimulatedMarket(_cfg(speed=0.0, max_minutes=7), SMALL, clock)
    bars = await _take(market)
    assert len(bars) == 7 * len(SMALL)
    assert bars[-1].open_time == START_NS + 6 * MINUTE
    assert clock.now_ns() == START_NS  # never waited on the clock


# ----------------------------------------------------------------------------------------- realism
def test_volatility_clusters(full: dict[tuple[str, str], History]) -> None:
    for sym in ("BTC-USD", "ETH-USD", "XAU-USD", "XAG-USD"):  # 24/7: no session pattern to confuse it
        r = np.diff(np.log(full[(sym, "1m")].bars["close"]))
        a = np.abs(r - r.mean())
        lag = [np.corrcoef(a[:-k], a[k:])[0, 1] for k in (1, 5, 30)]
        assert min(lag) > 0.04, (sym, lag)
        shuffled = np.random.default_rng(0).permutation(a)
        assert abs(np.corrcoef(shuffled[:-1], shuffled[1:])[0, 1]) < 0.03


def test_fat_tails(full: dict[tuple[str, str], History]) -> None:
    r = np.diff(np.log(full[("BTC-USD", "1m")].bars["close"]))
    z = (r - r.mean()) / r.std()
    assert np.mean(z**4) > 5.0  # a normal has kurtosis 3


def test_trends_push_rsi_to_both_extremes(full: dict[tuple[str, str], History]) -> None:
    both = 0
    for inst in INSTRUMENTS:
        rsi = talib.RSI(full[(inst.symbol, "15m")].bars["close"], timeperiod=14)
        both += bool(np.nanmin(rsi) < 30 and np.nanmax(rsi) > 70)
    assert both >= 0.8 * len(INSTRUMENTS)


def test_volatility_by_asset_class(full: dict[tuple[str, str], History]) -> None:
    def median_vol(cls: AssetClass) -> float:
        stds = [
            np.diff(np.log(full[(i.symbol, "1d")].bars["close"])).std() for i in INSTRUMENTS if i.asset_class is cls
        ]
        return float(np.median(stds))

    assert median_vol(AssetClass.CRYPTO) > median_vol(AssetClass.STOCKS) > median_vol(AssetClass.METALS)


def test_volume_is_higher_on_big_moves(full: dict[tuple[str, str], History]) -> None:
    bars = full[("BTC-USD", "1m")].bars
    move = np.abs(np.log(bars["close"] / bars["open"]))
    big = move > np.quantile(move, 0.99)
    assert bars["volume"][big].mean() > 2 * np.median(bars["volume"])


def test_stocks_gap_at_the_us_open_and_trade_quietly_overnight(full: dict[tuple[str, str], History]) -> None:
    bars = full[("AAPL", "1m")].bars
    t = bars["open_time"]
    jumps = np.abs(np.log(bars["open"][1:] / bars["close"][:-1]))
    gapped = t[1:][jumps > 1e-12]
    minute_of_day = (gapped % DAY) // MINUTE
    weekday = (gapped // DAY + 3) % 7
    assert len(gapped) == 8  # weekdays in [D0, start): Jun 3-7 and 10-12
    assert set(minute_of_day) == {13 * 60 + 30}  # June: daylight saving time in New York
    assert set(weekday) <= {0, 1, 2, 3, 4}
    r = np.diff(np.log(bars["close"]))
    mod = (t[1:] % DAY) // MINUTE
    session = (mod >= 810) & (mod < 1200)
    assert r[session].std() > 3 * r[(mod >= 2 * 60) & (mod < 8 * 60)].std()


def test_crypto_prices_stay_positive_over_a_long_daily_history(full: dict[tuple[str, str], History]) -> None:
    for inst in INSTRUMENTS:
        closes = full[(inst.symbol, "1d")].bars["close"]
        assert np.all(closes > 0)
        assert math.isfinite(float(np.max(closes)))
        assert 0.01 < closes[0] / closes[-1] < 100  # the long path wanders, but within reason
