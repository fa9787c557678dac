"""The service in live mode (the app `pia run` builds), pointed at the fakes on 127.0.0.1 by config
only: it backfills and streams every configured Binance instrument and timeframe, its stored bars
equal the fake's source data, funding / Fear & Greed / FX events flow, and stocks without Alpaca keys
are skipped with one log line. The app runs on the fake venue's clock (the fake replays 2018)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from pia import topics
from pia.app import build
from pia.clock import LiveClock
from pia.config import load_config
from pia.intervals import HOUR
from pia.store.bars import read_bars
from pia.testing.fake_binance import FakeBinance
from pia.testing.fake_external import FakeExternal
from pia.testing.harness_binance import BinanceMarket, VirtualClock, recorded_minutes

VENUE = {"BTC-USD": "BTCUSDT", "ETH-USD": "ETHUSDT", "XAU-USD": "XAUUSDT", "XAG-USD": "XAGUSDT"}
MARKET = {"BTC-USD": "spot", "ETH-USD": "spot", "XAU-USD": "futures", "XAG-USD": "futures"}
INTERVALS = ["15m", "1h", "4h", "1d", "3d", "1w", "1M"]
MINUTES = 40


def market() -> BinanceMarket:
    minutes = recorded_minutes()
    start = max(int(a["open_time"][0]) for a in minutes.values())
    start = (start // HOUR + 1) * HOUR
    btc = minutes["BTCUSDT"][minutes["BTCUSDT"]["open_time"] >= start]
    eth = minutes["ETHUSDT"][minutes["ETHUSDT"]["open_time"] >= start]
    data = {
        "spot": {"BTCUSDT": btc, "ETHUSDT": eth},
        "futures": {"XAUUSDT": btc, "XAGUSDT": eth, "BTCUSDT": btc, "ETHUSDT": eth},
    }
    return BinanceMarket(data, start + 3 * HOUR)  # type: ignore[arg-type]


def stored(db_path: Path, symbol: str, interval: str) -> np.ndarray:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return read_bars(db, symbol, interval)
    finally:
        db.close()


async def test_live_service_against_fakes_stores_exactly_the_source(
    make_config: Callable[[str], Path], tmp_path: Path, shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with FakeBinance(market(), ping_interval=1.0, pong_timeout=5.0) as fake, FakeExternal() as ext:
        clock = VirtualClock(fake.market, LiveClock())  # the venue's time: the fake replays 2018
        today = datetime.fromtimestamp(clock.now_ns() / 1e9, UTC).date()
        ext.fear_greed.publish(18, day=today)
        ext.vix.add_close(today - timedelta(days=1), 32.0)
        ext.frankfurter.set_rate("USD", "SEK", 10.61, day=today)
        path = make_config(
            f"""symbols = ["BTC-USD", "ETH-USD", "XAU-USD", "XAG-USD", "NVDA"]
heartbeat_seconds = 1
[feed]
kind = "live"
[feed.live]
history_bars = 200
[feed.live.http]
backoff_seconds = 0.05
[feed.live.reconnect]
initial_seconds = 0.05
max_seconds = 0.5
[feed.live.binance]
spot_rest_url = "{fake.rest_url("spot")}"
spot_ws_url = "{fake.ws_url("spot")}"
futures_rest_url = "{fake.rest_url("futures")}"
futures_ws_url = "{fake.ws_url("futures")}"
[feed.live.fear_greed]
crypto_url = "{ext.fear_greed_url}"
vix_url = "{ext.vix_url}"
[feed.live.fx]
url = "{ext.frankfurter_url}"
[notifier.console]
enabled = false
"""
        )
        settings = load_config(path, env={})  # no Alpaca keys: the stock is skipped
        app = build(settings, clock=clock)
        funding = app.bus.subscribe(topics.funding(), "probe")
        fng = app.bus.subscribe(topics.fear_greed(), "probe")
        fx = app.bus.subscribe(topics.fx(), "probe")
        run = asyncio.create_task(app.run())
        try:
            for _ in range(MINUTES):
                await fake.wait_for_connection("spot", within=30.0)
                await fake.wait_for_connection("futures", within=30.0)
                await fake.advance(1)
            db = tmp_path / "data" / "pia.sqlite3"
            last_15m = {s: int(fake.market.closed(MARKET[s], VENUE[s], "15m")["open_time"][-1]) for s in VENUE}

            def caught_up() -> bool:
                try:
                    return all(len(b := stored(db, s, "15m")) and int(b["open_time"][-1]) == last_15m[s] for s in VENUE)
                except sqlite3.Error:
                    return False

            for _ in range(200):
                if caught_up():
                    break
                await asyncio.sleep(0.05)
            assert caught_up(), "the service never stored the last streamed candle"
            spot = next(r for r in app.runners if r.name == "binance_spot").statistics()
        finally:
            app.request_stop("test over")
            summary = await asyncio.wait_for(run, 10)
    assert summary.reason == "test over"
    assert summary.rejected_bars == 0

    for symbol, venue in VENUE.items():
        for iv in INTERVALS:
            truth = fake.market.closed(MARKET[symbol], venue, iv)[-200:]
            got = stored(db, symbol, iv)
            assert got["open_time"].tolist() == truth["open_time"].tolist(), (symbol, iv)
            for f in ("open", "high", "low", "close", "volume"):
                np.testing.assert_array_equal(got[f], truth[f], err_msg=f"{symbol} {iv} {f}")
    assert summary.bars["15m"] >= 4 * 2  # streamed, not only backfilled

    rates = {e.symbol: e.funding_rate for e in iter(funding.receive_nowait, None)}
    assert rates == {"BTC-USD": 0.0001, "ETH-USD": 0.0001}
    readings = {e.asset_class: e.value for e in iter(fng.receive_nowait, None)}
    assert readings == {"crypto": 18, "stocks": 17.0, "metals": 17.0}  # VIX 32: 5 + (40 - 32) * 1.5
    [rate] = list(iter(fx.receive_nowait, None))
    assert (rate.base, rate.quote, rate.rate, rate.stale) == ("USD", "SEK", 10.61, False)
    assert len([r for r in caplog.records if "Alpaca keys not set" in r.getMessage()]) == 1
    assert spot["feed"]["connected"] is True
    assert spot["feed"]["source"]["http"]["breaker"]["state"] == "closed"


async def test_live_service_streams_stocks_from_the_fake_alpaca(
    make_config: Callable[[str], Path], tmp_path: Path, shared_data: Path
) -> None:
    from pia.testing.harness_alpaca import KEY_ID, SECRET_KEY, AlpacaHarness
    from pia.testing.harness_alpaca import VirtualClock as AlpacaClock

    harness = AlpacaHarness(("AAPL", "NVDA"), close_grace_s=0.3)
    async with harness.running() as h:
        fake = h.fake
        path = make_config(
            f"""symbols = ["NVDA", "AAPL"]
[feed]
kind = "live"
[feed.live.binance]
enabled = false
[feed.live.fear_greed]
enabled = false
[feed.live.fx]
enabled = false
[feed.live.reconnect]
initial_seconds = 0.05
max_seconds = 0.5
[feed.live.alpaca]
rest_url = "{fake.url}"
ws_url = "{fake.ws_url}"
[notifier.console]
enabled = false
"""
        )
        settings = load_config(path, env={"PIA_ALPACA_KEY_ID": KEY_ID, "PIA_ALPACA_SECRET_KEY": SECRET_KEY})
        app = build(settings, clock=AlpacaClock(fake.market, LiveClock()))
        run = asyncio.create_task(app.run())
        try:
            await h.advance(120)  # two hours of the session
            db = tmp_path / "data" / "pia.sqlite3"
            last = {s: int(h.expected(s, "15m")["open_time"][-1]) for s in h.symbols}

            def caught_up() -> bool:
                try:
                    return all(len(b := stored(db, s, "15m")) and int(b["open_time"][-1]) == last[s] for s in last)
                except sqlite3.Error:
                    return False

            for _ in range(200):
                if caught_up():
                    break
                await asyncio.sleep(0.05)
            assert caught_up(), "the service never stored the last streamed stock candle"
        finally:
            app.request_stop("test over")
            summary = await asyncio.wait_for(run, 10)
        truths = {(s, iv): h.expected(s, iv) for s in h.symbols for iv in ("15m", "1h", "1d")}
    assert summary.rejected_bars == 0
    assert summary.bars["15m"] >= 2 * 7
    for symbol in ("AAPL", "NVDA"):
        for iv in ("15m", "1h", "1d"):
            truth = truths[(symbol, iv)]
            got = stored(db, symbol, iv)
            truth = truth[truth["open_time"] >= got["open_time"][0]]
            assert got["open_time"].tolist() == truth["open_time"].tolist(), (symbol, iv)
            for f in ("open", "high", "low", "close"):
                np.testing.assert_array_equal(got[f], truth[f], err_msg=f"{symbol} {iv} {f}")
