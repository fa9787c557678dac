"""The replay feed and its file loader, on the real recorded files (``shared_data``) and small bad files."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pia.clock import FakeClock
from pia.config import ReplayFeedConfig, ReplayFileConfig
from pia.errors import ConfigError
from pia.events import BAR_DTYPE, Bar
from pia.feeds.ohlcv_files import FileFormat, LoadedFile, load_ohlcv
from pia.feeds.replay import YIELD_EVERY, ReplayFeed
from pia.instruments import AssetClass, Instrument, Venue
from pia.intervals import DAY, MINUTE, NS

FTX = "candles/ftx/nautilus/btc-perp-20211231-20220201_1m.csv"
ADA_27 = "candles/binance/nautilus/ADABTC-1m-2021-11-27.csv"
ADA_28 = "candles/binance/nautilus/ADABTC-1m-2021-11-28.csv"
OCTO_BTC = "candles/binance/octobot/binance_BTC_USDT_20180428_121156.json.gz"
OCTO_ETH = "candles/binance/octobot/binance_ETH_USDT_20180716_131148.json.gz"
OCTO_ICX = "candles/binance/octobot/binance_ICX_BTC_20180716_131148.json.gz"


def ns(text: str) -> int:
    """``2021-12-31T23:01`` (UTC) as int ns."""
    return int(np.datetime64(text, "ns").astype(np.int64))


def inst(symbol: str) -> Instrument:
    return Instrument(
        symbol=symbol,
        asset_class=AssetClass.CRYPTO,
        venue=Venue.BINANCE_SPOT,
        venue_symbol=symbol.replace("-", ""),
        name=symbol,
    )


def feed_of(
    files: Sequence[tuple[Path, str]],
    *,
    speed: float = 0.0,
    clock: FakeClock | None = None,
    symbols: Sequence[str] | None = None,
) -> ReplayFeed:
    entries = tuple(ReplayFileConfig(path=path, symbol=symbol) for path, symbol in files)
    syms = symbols if symbols is not None else sorted({e.symbol for e in entries})
    return ReplayFeed(ReplayFeedConfig(speed=speed, files=entries), [inst(s) for s in syms], clock or FakeClock())


async def collect(feed: ReplayFeed) -> list[Bar]:
    return [bar async for bar in feed.stream()]


def assert_clean(lf: LoadedFile) -> None:
    assert lf.bars.dtype == BAR_DTYPE
    assert np.all(np.diff(lf.bars["open_time"]) > 0)


# ------------------------------------------------------------------------------------ real files
def test_ftx_csv_loads_every_row_exactly(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / FTX, interval="1m")
    assert_clean(lf)
    assert (lf.rows, len(lf.bars), dict(lf.dropped)) == (45031, 45031, {})
    t = lf.bars["open_time"]
    assert int(t[0]) == ns("2021-12-31T23:01") == 1_640_991_660 * NS
    assert int(t[-1]) == ns("2022-02-01T05:31")
    assert np.all(np.diff(t) == MINUTE)  # no gaps
    first = lf.bars[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        46319.0,
        46385.0,
        46319.0,
        46377.0,
    )
    assert first["volume"] == pytest.approx(2300413.7295)
    assert lf.bars[-1]["close"] == 38544.0


@pytest.mark.parametrize("fmt", ["auto", "binance_csv"])
def test_binance_headerless_csv_ms_times(shared_data: Path, fmt: FileFormat) -> None:
    lf = load_ohlcv(shared_data / ADA_27, fmt, interval="1m")
    assert_clean(lf)
    assert (lf.rows, len(lf.bars), dict(lf.dropped)) == (10, 10, {})
    assert int(lf.bars["open_time"][0]) == 1637971200000 * 1_000_000 == ns("2021-11-27T00:00")
    assert int(lf.bars["open_time"][-1]) == ns("2021-11-27T00:09")
    assert tuple(lf.bars[0].tolist())[1:] == (0.00002853, 0.00002854, 0.00002851, 0.00002854, 36304.2)


def test_freqtrade_feather(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / "candles/binance/freqtrade/spot/XRP_ETH-1m.feather", interval="1m")
    assert_clean(lf)
    assert (len(lf.bars), dict(lf.dropped)) == (2469, {})
    assert int(lf.bars["open_time"][0]) == ns("2019-10-11T00:00")
    assert int(lf.bars["open_time"][-1]) == ns("2019-10-13T11:19")
    assert lf.bars[0]["open"] == pytest.approx(0.00141342)
    assert lf.bars[0]["volume"] == 1482.0


def test_feather_mark_prices_without_volume_get_zero_volume(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / "candles/binance/freqtrade/futures/XRP_USDT_USDT-1h-mark.feather")
    assert (len(lf.bars), dict(lf.dropped)) == (100, {})
    assert np.all(lf.bars["volume"] == 0.0)


def test_funding_rate_file_is_not_bars(shared_data: Path) -> None:
    path = shared_data / "candles/binance/freqtrade/futures/XRP_USDT_USDT-8h-funding_rate.feather"
    lf = load_ohlcv(path, interval="8h")
    assert (len(lf.bars), dict(lf.dropped)) == (0, {"bad_price": 91})


def test_zipline_gzip_daily_dates_are_utc_midnight(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / "candles/us_equity/zipline/daily/AAPL.csv.gz", interval="1d")
    assert_clean(lf)
    assert (len(lf.bars), dict(lf.dropped)) == (754, {})
    t = lf.bars["open_time"]
    assert int(t[0]) == ns("2012-01-03")
    assert int(t[-1]) == ns("2014-12-31")
    assert np.all(t % DAY == 0)
    assert tuple(lf.bars[0].tolist())[1:] == (58.485714, 58.92857, 58.42857, 58.747143, 75555200.0)


def test_spy_csv_with_index_column(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / "candles/us_equity/pandas-ta/SPY_D.csv")
    assert_clean(lf)
    assert (len(lf.bars), dict(lf.dropped)) == (5241, {})
    assert int(lf.bars["open_time"][0]) == ns("1999-11-01")
    assert int(lf.bars["open_time"][-1]) == ns("2020-08-28")
    assert tuple(lf.bars[0].tolist())[1:] == (136.5, 137.0, 135.5625, 135.5625, 4006500.0)


def test_multi_ticker_table_is_refused(shared_data: Path) -> None:
    path = shared_data / "candles/us_equity/zipline/daily/QUANDL_SAMPLE_TABLE.csv"
    with pytest.raises(ConfigError, match=r"QUANDL_SAMPLE_TABLE\.csv: column 'ticker' holds several"):
        load_ohlcv(path)


def test_octobot_ms_times(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / OCTO_BTC, "octobot", interval="1m")
    assert_clean(lf)
    assert (len(lf.bars), dict(lf.dropped)) == (502, {})
    t = lf.bars["open_time"]
    assert int(t[0]) == 1524880320000 * 1_000_000 == ns("2018-04-28T01:52")
    assert int(t[-1]) == ns("2018-04-28T10:14")
    assert ns("2018-04-28T10:12") not in set(t.tolist())  # the one missing minute stays missing
    assert tuple(lf.bars[0].tolist())[1:] == (9094.18, 9098.0, 9090.0, 9097.12, 29.20769)


def test_octobot_seconds_times_and_other_timeframes(shared_data: Path) -> None:
    lf = load_ohlcv(shared_data / OCTO_ETH, interval="1m")  # auto-detected
    assert (len(lf.bars), dict(lf.dropped)) == (500, {})
    assert int(lf.bars["open_time"][0]) == 1531709520 * NS == ns("2018-07-16T02:52")
    assert int(lf.bars["open_time"][-1]) == ns("2018-07-16T11:11")
    assert lf.bars[0]["open"] == 445.41
    monthly = load_ohlcv(shared_data / OCTO_ETH, "octobot", interval="1M")
    assert_clean(monthly)
    assert int(monthly.bars["open_time"][0]) == ns("2017-08-01")


def test_octobot_needs_a_timeframe_it_has(shared_data: Path) -> None:
    with pytest.raises(ConfigError, match="holds timeframes 1m, 3m"):
        load_ohlcv(shared_data / OCTO_ETH)
    with pytest.raises(ConfigError, match=r"binance_ETH_USDT.*: no '6h' candles in this OctoBot file"):
        load_ohlcv(shared_data / OCTO_ETH, interval="6h")
    with pytest.raises(ConfigError, match="not an OctoBot file"):
        load_ohlcv(shared_data / "candles/unattributed/freqtrade/orderflow_candles_BTC_USDT-5m.json", "octobot")


# ------------------------------------------------------------------------------- validation
BAD_CSV = """\
timestamp,open,high,low,close,volume
2024-01-01 00:02:00,10,12,9,11,5
2024-01-01 00:00:00,10,11,9,10.5,1
2024-01-01 00:01:00,NaN,11,9,10,1
2024-01-01 00:01:00,10,11,9,10,2
2024-01-01 00:03:00,-1,11,9,10,1
2024-01-01 00:04:00,10,9,11,10,1
2024-01-01 00:05:00,12,11,9,10,1
2024-01-01 00:06:00,10,11,9,10,-3
2024-01-01 00:07:00,10,11,9,10,
2024-01-01 00:02:00,10,11,9,10,7
not a time,10,11,9,10,1
2024-01-01 00:08:00,10,inf,9,10,1
2024-01-01 00:08:30,10,11,9,10,1
2024-01-01 00:09:00,10,11,9,10,abc
2024-01-01 00:10:00,10,11,9,11,1
"""


def test_bad_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    lf = load_ohlcv(path, interval="1m")
    assert_clean(lf)
    assert lf.rows == 15
    assert lf.bars.tolist() == [
        (ns("2024-01-01T00:00"), 10.0, 11.0, 9.0, 10.5, 1.0),
        (ns("2024-01-01T00:01"), 10.0, 11.0, 9.0, 10.0, 2.0),
        (ns("2024-01-01T00:02"), 10.0, 12.0, 9.0, 11.0, 5.0),  # the first of the two 00:02 rows
        (ns("2024-01-01T00:10"), 10.0, 11.0, 9.0, 11.0, 1.0),
    ]
    assert dict(lf.dropped) == {
        "bad_time": 1,
        "bad_price": 3,
        "high_below_low": 1,
        "open_close_outside_range": 1,
        "bad_volume": 3,
        "misaligned": 1,
        "duplicate_time": 1,
    }
    without_interval = load_ohlcv(path)
    assert len(without_interval.bars) == 5
    assert "misaligned" not in without_interval.dropped


def test_missing_column_names_it_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "noclose.csv"
    path.write_text("timestamp,open,high,low,volume\n2024-01-01,1,2,1,5\n")
    with pytest.raises(ConfigError, match=r"noclose\.csv: missing column close \(one of: close, c\)"):
        load_ohlcv(path)
    path2 = tmp_path / "notime.csv"
    path2.write_text("when,open,high,low,close,volume\n2024-01-01,1,2,1,1,5\n")
    with pytest.raises(ConfigError, match=r"notime\.csv: missing column time \(one of: date, timestamp"):
        load_ohlcv(path2)


def test_unreadable_files_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.csv: file not found"):
        load_ohlcv(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"empty\.csv: file is empty"):
        load_ohlcv(empty)
    short = tmp_path / "short.csv"
    short.write_text("1700000000000,1,2,1,1\n")
    with pytest.raises(ConfigError, match=r"short\.csv: .*at least 6 columns"):
        load_ohlcv(short)
    us_dates = tmp_path / "us.csv"
    us_dates.write_text("Date,Open,High,Low,Close,Volume\n01/03/2012,1,2,1,1,5\n")
    with pytest.raises(ConfigError, match=r"us\.csv: cannot parse time '01/03/2012'"):
        load_ohlcv(us_dates)
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ConfigError, match=r"x\.parquet: cannot read OHLCV data"):
        load_ohlcv(not_parquet)


def test_epoch_units_by_magnitude_and_gzip(tmp_path: Path) -> None:
    base_s = 1_700_000_040  # 2023-11-14 22:14 UTC, a whole minute
    lines = ["t,o,h,l,c,v"]
    for k, scale in enumerate((1, 1_000, 1_000_000, 1_000_000_000)):
        lines.append(f"{(base_s + 60 * k) * scale},1,2,1,1,1")
    lines.append(f"{base_s + 240}.0,1,2,1,1,1")  # float seconds
    path = tmp_path / "units.csv.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    lf = load_ohlcv(path, interval="1m")
    assert lf.bars["open_time"].tolist() == [(base_s + 60 * k) * NS for k in range(5)]
    assert dict(lf.dropped) == {}


def test_parquet_and_feather_time_types(tmp_path: Path) -> None:
    ny = timezone(timedelta(hours=-5))
    frame = pl.DataFrame(
        {
            "Date": [datetime(2024, 1, 2, 19, 0, tzinfo=ny), datetime(2024, 1, 2, 19, 1, tzinfo=ny)],
            "Open": [1.0, 2.0],
            "High": [2.0, 3.0],
            "Low": [1.0, 1.5],
            "Close": [1.5, 2.5],
            "Volume": [10, 20],
        }
    )
    frame.write_ipc(tmp_path / "tz.feather")
    frame.write_ipc_stream(tmp_path / "tz.arrows")
    frame.with_columns(pl.col("Date").dt.timestamp("ms")).write_parquet(tmp_path / "ms.parquet")
    naive = frame.with_columns(pl.col("Date").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    naive.write_parquet(tmp_path / "naive.pq")
    want = [ns("2024-01-03T00:00"), ns("2024-01-03T00:01")]
    for name in ("tz.feather", "tz.arrows", "ms.parquet", "naive.pq"):
        lf = load_ohlcv(tmp_path / name, interval="1m")
        assert lf.bars["open_time"].tolist() == want, name
        assert lf.bars["volume"].tolist() == [10.0, 20.0]
    dated = frame.with_columns(Date=pl.Series([date(2024, 1, 2), date(2024, 1, 3)]))
    dated.write_parquet(tmp_path / "date.parquet")
    lf = load_ohlcv(tmp_path / "date.parquet", interval="1d")
    assert lf.bars["open_time"].tolist() == [ns("2024-01-02"), ns("2024-01-03")]


# ---------------------------------------------------------------------------------------- feed
async def test_history_is_empty_per_symbol_and_interval(shared_data: Path) -> None:
    feed = feed_of([(shared_data / ADA_27, "ADA-BTC")], symbols=["ADA-BTC", "ETH-BTC"])
    assert (feed.name, feed.base_interval) == ("replay", "1m")
    got = await feed.history(["15m", "1h", "15m"])
    assert [(h.symbol, h.interval, len(h.bars), h.partial) for h in got] == [
        ("ADA-BTC", "15m", 0, None),
        ("ADA-BTC", "1h", 0, None),
        ("ADA-BTC", "1m", 0, None),
    ]
    assert got[0].bars.dtype == BAR_DTYPE


async def test_stream_merges_symbols_in_time_order(shared_data: Path) -> None:
    feed = feed_of([(shared_data / OCTO_ICX, "ICX-BTC"), (shared_data / OCTO_ETH, "ETH-USDT")])
    bars = await collect(feed)
    assert len(bars) == 1000
    keys = [(b.open_time, b.symbol) for b in bars]
    assert keys == sorted(keys)
    assert {b.interval for b in bars} == {"1m"}
    # ETH starts a minute before ICX and ends a minute before it
    assert keys[:3] == [
        (ns("2018-07-16T02:52"), "ETH-USDT"),
        (ns("2018-07-16T02:53"), "ETH-USDT"),
        (ns("2018-07-16T02:53"), "ICX-BTC"),
    ]
    assert keys[-1] == (ns("2018-07-16T11:12"), "ICX-BTC")
    assert bars[0] == Bar(
        symbol="ETH-USDT",
        interval="1m",
        open_time=ns("2018-07-16T02:52"),
        open=445.41,
        high=445.64,
        low=445.34,
        close=445.51,
        volume=83.78394,
    )
    stats = feed.statistics()
    assert stats.yielded == {"ETH-USDT": 500, "ICX-BTC": 500}
    assert stats.bars == {"ETH-USDT": 500, "ICX-BTC": 500}


async def test_files_of_one_symbol_are_concatenated_and_deduplicated(shared_data: Path, tmp_path: Path) -> None:
    overlap = tmp_path / "overlap.csv"  # repeats 2021-11-28 00:10 (different prices) and adds 00:11
    overlap.write_text("open_time,open,high,low,close,volume\n1638058200000,1,1,1,1,1\n1638058260000,1,1,1,1,1\n")
    feed = feed_of([(shared_data / ADA_28, "ADA-BTC"), (shared_data / ADA_27, "ADA-BTC"), (overlap, "ADA-BTC")])
    bars = await collect(feed)
    assert len(bars) == 10 + 11 + 1
    assert bars[0].open_time == ns("2021-11-27T00:00")
    assert bars[-1].open_time == ns("2021-11-28T00:11")
    assert next(b for b in bars if b.open_time == ns("2021-11-28T00:10")).open == pytest.approx(2.814e-05)
    stats = feed.statistics()
    assert stats.dropped == {
        str(shared_data / ADA_28): {},
        str(shared_data / ADA_27): {},
        str(overlap): {"duplicate_time": 1},
    }
    assert stats.rows[str(overlap)] == 2


async def test_speed_zero_yields_everything_and_lets_others_run(shared_data: Path) -> None:
    clock = FakeClock()
    feed = feed_of([(shared_data / FTX, "BTC-USD")], clock=clock)
    await feed.load()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    count = 0
    async for _ in feed.stream():
        count += 1
    task.cancel()
    assert count == 45031
    assert ticks >= 45031 // YIELD_EVERY - 1
    assert clock.sleepers == 0
    assert feed.statistics().yielded == {"BTC-USD": 45031}


async def test_pacing_at_speed_60_is_one_minute_bar_per_second(shared_data: Path) -> None:
    clock = FakeClock()
    feed = feed_of([(shared_data / ADA_27, "ADA-BTC")], speed=60, clock=clock)
    await feed.load()
    got: list[Bar] = []

    async def consume() -> None:
        async for bar in feed.stream():
            got.append(bar)

    task = asyncio.create_task(consume())
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(got) == 1  # the first bar at once, then it waits
    assert clock.sleepers == 1
    await clock.advance(0.999)
    assert len(got) == 1
    await clock.advance(0.001)
    assert len(got) == 2
    await clock.advance(3)
    assert len(got) == 5
    await clock.advance(5)
    assert len(got) == 10
    await task
    assert [b.open_time for b in got] == [ns("2021-11-27T00:00") + k * MINUTE for k in range(10)]


async def test_pacing_waits_across_gaps_and_batches_same_time_bars(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(
        "date,open,high,low,close,volume\n2024-01-01 00:00,1,1,1,1,1\n2024-01-01 00:01,1,1,1,1,1\n"
        "2024-01-01 00:05,1,1,1,1,1\n"
    )
    b.write_text("date,open,high,low,close,volume\n2024-01-01 00:01,1,1,1,1,1\n")
    clock = FakeClock()
    feed = feed_of([(a, "AAA"), (b, "BBB")], speed=120, clock=clock)  # one minute per 0.5 s
    await feed.load()
    got: list[tuple[str, int]] = []

    async def consume() -> None:
        async for bar in feed.stream():
            got.append((bar.symbol, bar.open_time))

    task = asyncio.create_task(consume())
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(got) == 1
    await clock.advance(0.5)
    assert got[1:] == [("AAA", ns("2024-01-01T00:01")), ("BBB", ns("2024-01-01T00:01"))]
    await clock.advance(1.99)  # the 00:05 bar closes 4 minutes later: 2 s
    assert len(got) == 3
    await clock.advance(0.01)
    await task
    assert got[-1] == ("AAA", ns("2024-01-01T00:05"))


async def test_stream_can_be_cancelled_while_waiting(shared_data: Path) -> None:
    clock = FakeClock()
    feed = feed_of([(shared_data / ADA_27, "ADA-BTC")], speed=1, clock=clock)
    await feed.load()
    got: list[Bar] = []

    async def consume() -> None:
        async for bar in feed.stream():
            got.append(bar)

    task = asyncio.create_task(consume())
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(got) == 1


def test_config_errors_at_construction(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no files"):
        ReplayFeed(ReplayFeedConfig(), [inst("ADA-BTC")], FakeClock())
    mixed = ReplayFeedConfig(
        files=(
            ReplayFileConfig(path=shared_data / ADA_27, symbol="ADA-BTC", interval="1m"),
            ReplayFileConfig(path=shared_data / ADA_28, symbol="ADA-BTC", interval="5m"),
        )
    )
    with pytest.raises(ConfigError, match=r"same interval.*found 1m, 5m"):
        ReplayFeed(mixed, [inst("ADA-BTC")], FakeClock())
    with pytest.raises(ConfigError, match=r"files\.0\.symbol: unknown instrument 'ADA-BTC'"):
        feed_of([(shared_data / ADA_27, "ADA-BTC")], symbols=["BTC-USD"])


async def test_load_errors_surface_from_history(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("date,open,high,low\n2024-01-01,1,1,1\n")
    feed = feed_of([(path, "AAA")])
    with pytest.raises(ConfigError, match=r"broken\.csv: missing column close"):
        await feed.history(["1h"])
