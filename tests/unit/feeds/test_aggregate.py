"""Aggregation correctness: against the exchange's own candles, an independent implementation
(polars ``group_by_dynamic``), and between the vectorised and streaming aggregators."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pia.events import BAR_DTYPE, Bar
from pia.feeds.aggregate import BarAggregator, aggregate, split_closed
from pia.feeds.base import BarArray, array_to_bars
from pia.intervals import MINUTE, NS, parse_interval


def octobot(shared: Path, name: str) -> dict[str, BarArray]:
    raw = json.loads(gzip.decompress((shared / "candles/binance/octobot" / name).read_bytes()))
    out = {}
    for tf, (t, o, h, lo, c, v) in raw.items():
        arr = np.empty(len(t), dtype=BAR_DTYPE)
        times = np.asarray(t, dtype=np.float64)
        scale = 1_000_000 if times[0] > 1e11 else NS  # ms in one file, seconds in the others
        arr["open_time"] = (times * scale).astype(np.int64)
        arr["open"], arr["high"], arr["low"], arr["close"], arr["volume"] = o, h, lo, c, v
        out[tf] = arr[:-1]  # the last candle of each timeframe was still open at capture
    return out


def full_coverage(base: BarArray, candles: BarArray, base_iv: str, target: str) -> np.ndarray:
    """Mask of candles whose every base bar is present."""
    b, t = parse_interval(base_iv), parse_interval(target)
    bucket = t.floor_array(base["open_time"])
    counts = {int(k): int(n) for k, n in zip(*np.unique(bucket, return_counts=True), strict=True)}
    expected = (t.next_open_array(candles["open_time"]) - candles["open_time"]) // b.step_ns
    have = np.array([counts.get(int(k), 0) for k in candles["open_time"]])
    return have == expected


def assert_same(ours: BarArray, theirs: BarArray, vol_rtol: float = 1e-9) -> None:
    assert len(ours) == len(theirs) > 0
    np.testing.assert_array_equal(ours["open_time"], theirs["open_time"])
    for f in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(ours[f], theirs[f], err_msg=f)
    np.testing.assert_allclose(ours["volume"], theirs["volume"], rtol=vol_rtol)


@pytest.mark.parametrize("target", ["5m", "15m", "30m", "1h"])
def test_minutes_aggregate_to_binance_own_candles(shared_data: Path, target: str) -> None:
    data = octobot(shared_data, "binance_ETH_USDT_20180716_131148.json.gz")
    ours = aggregate(data["1m"], target)
    ours = ours[full_coverage(data["1m"], ours, "1m", target)]
    theirs = data[target][np.isin(data[target]["open_time"], ours["open_time"])]
    ours = ours[np.isin(ours["open_time"], theirs["open_time"])]
    assert len(ours) >= 5
    assert_same(ours, theirs, vol_rtol=1e-6)


@pytest.mark.parametrize("target", ["1w", "1M"])
def test_days_aggregate_to_binance_weeks_and_months(shared_data: Path, target: str) -> None:
    data = octobot(shared_data, "binance_ETH_USDT_20180716_131148.json.gz")
    ours = aggregate(data["1d"], target)
    ours = ours[full_coverage(data["1d"], ours, "1d", target)]
    theirs = data[target][np.isin(data[target]["open_time"], ours["open_time"])]
    ours = ours[np.isin(ours["open_time"], theirs["open_time"])]
    assert len(ours) >= 9
    assert_same(ours, theirs, vol_rtol=1e-6)


def test_days_aggregate_to_binance_3d_with_listing_anchor(shared_data: Path) -> None:
    data = octobot(shared_data, "binance_NEO_BTC_20180716_131148.json.gz")
    anchor = int(data["1d"]["open_time"][0])
    three = parse_interval("3d").with_anchor(anchor)
    ours = aggregate(data["1d"], three)
    theirs = data["3d"]
    common = np.intersect1d(ours["open_time"], theirs["open_time"])
    assert len(common) >= 100
    assert_same(ours[np.isin(ours["open_time"], common)], theirs[np.isin(theirs["open_time"], common)], 1e-6)


def ftx(shared: Path) -> BarArray:
    df = pl.read_csv(shared / "candles/ftx/nautilus/btc-perp-20211231-20220201_1m.csv")
    ts = df["timestamp"].str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_zone="UTC").dt.epoch("ns")
    arr = np.empty(df.height, dtype=BAR_DTYPE)
    arr["open_time"] = ts.to_numpy()
    for f in ("open", "high", "low", "close", "volume"):
        arr[f] = df[f].to_numpy()
    return arr


@pytest.mark.parametrize("target", ["15m", "1h", "4h", "1d", "1w"])
def test_against_polars_group_by_dynamic(shared_data: Path, target: str) -> None:
    base = ftx(shared_data)
    ours = aggregate(base, target)
    every = {"15m": "15m", "1h": "1h", "4h": "4h", "1d": "1d", "1w": "1w"}[target]
    df = pl.DataFrame({f: base[f] for f in BAR_DTYPE.names}).with_columns(
        pl.from_epoch(pl.col("open_time"), time_unit="ns").dt.replace_time_zone("UTC").alias("t")
    )
    ref = (
        df.sort("t")
        .group_by_dynamic("t", every=every, closed="left", label="left", start_by="window")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
    )
    theirs = np.empty(ref.height, dtype=BAR_DTYPE)
    theirs["open_time"] = ref["t"].dt.epoch("ns").to_numpy()
    for f in ("open", "high", "low", "close", "volume"):
        theirs[f] = ref[f].to_numpy()
    assert_same(ours, theirs)


def test_streaming_equals_vectorised_on_real_minutes(shared_data: Path) -> None:
    base = ftx(shared_data)[:20_000]
    targets = ["15m", "1h", "4h", "1d", "3d", "1w"]
    agg = BarAggregator("BTC-USD", "1m", targets)
    emitted: dict[str, list[Bar]] = {t: [] for t in targets}
    for bar in array_to_bars("BTC-USD", "1m", base):
        for out in agg.add(bar):
            emitted[out.interval].append(out)
    end = int(base["open_time"][-1]) + MINUTE
    first = int(base["open_time"][0])
    for t in targets:
        iv = parse_interval(t)
        closed, _ = split_closed(aggregate(base, t), t, end)
        closed = closed[closed["open_time"] >= first]  # a candle the stream began inside is never emitted
        got = [(b.open_time, b.open, b.high, b.low, b.close) for b in emitted[t]]
        want = [(int(r["open_time"]), r["open"], r["high"], r["low"], r["close"]) for r in closed]
        assert got == want, t
        assert all(iv.is_aligned(b.open_time) for b in emitted[t])


def test_stream_started_mid_candle_publishes_no_partial_candle() -> None:
    agg = BarAggregator("X", "1m", ["15m"])
    t0 = 1_700_000_100 * NS // (15 * MINUTE) * (15 * MINUTE)
    out = []
    for i in range(7, 31):  # starts 7 minutes into a 15m candle
        px = 100.0 + i
        out += agg.add(
            Bar(
                symbol="X",
                interval="1m",
                open_time=t0 + i * MINUTE,
                open=px,
                high=px + 1,
                low=px - 1,
                close=px,
                volume=1.0,
            )
        )
    assert [b.open_time for b in out] == [t0 + 15 * MINUTE]  # only the complete one
    assert agg.partial_discarded == 1
    assert out[0].open == 115.0 and out[0].close == 129.0 and out[0].volume == 15.0


def test_seeded_partial_candle_completes_from_the_stream() -> None:
    t0 = 1_700_000_100 * NS // (15 * MINUTE) * (15 * MINUTE)
    agg = BarAggregator("X", "1m", ["15m"])
    agg.seed(Bar(symbol="X", interval="15m", open_time=t0, open=90.0, high=200.0, low=80.0, close=95.0, volume=7.0))
    out = []
    for i in range(7, 15):
        out += agg.add(
            Bar(
                symbol="X",
                interval="1m",
                open_time=t0 + i * MINUTE,
                open=96.0,
                high=97.0,
                low=94.0,
                close=96.5,
                volume=1.0,
            )
        )
    assert len(out) == 1
    assert (out[0].open, out[0].high, out[0].low, out[0].close, out[0].volume) == (
        90.0,
        200.0,
        80.0,
        96.5,
        15.0,
    )


def test_missing_last_minute_closes_on_the_next_candle_or_on_flush() -> None:
    t0 = 1_700_000_100 * NS // (15 * MINUTE) * (15 * MINUTE)
    agg = BarAggregator("X", "1m", ["15m"])

    def bar(i: int) -> Bar:
        return Bar(
            symbol="X",
            interval="1m",
            open_time=t0 + i * MINUTE,
            open=1.0,
            high=1.0,
            low=1.0,
            close=1.0,
            volume=1.0,
        )

    assert [agg.add(bar(i)) for i in range(13)] == [[]] * 13  # minutes 13 and 14 never come
    assert agg.flush_until(t0 + 14 * MINUTE) == []
    [closed] = agg.flush_until(t0 + 15 * MINUTE)
    assert closed.open_time == t0 and closed.volume == 13.0
    agg2 = BarAggregator("X", "1m", ["15m"])
    for i in range(13):
        agg2.add(bar(i))
    [closed2] = agg2.add(bar(16))
    assert closed2 == closed


def test_cannot_build_from_incompatible_base() -> None:
    with pytest.raises(ValueError, match="cannot build 1M candles from 1w"):
        BarAggregator("X", "1w", ["1M"])
