"""`pia backfill` against the fake Binance: exact, idempotent, resumable."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pia.backfill import backfill
from pia.clock import LiveClock
from pia.config import load_config
from pia.intervals import HOUR
from pia.store.bars import read_bars
from pia.testing.fake_binance import FakeBinance
from pia.testing.harness_binance import BinanceMarket, VirtualClock, recorded_minutes


async def test_backfill_is_exact_idempotent_and_resumable(
    make_config: Callable[[str], Path], tmp_path: Path, shared_data: Path
) -> None:
    minutes = recorded_minutes()
    btc = minutes["BTCUSDT"]
    start = int(btc["open_time"][0]) // HOUR * HOUR + HOUR
    market = BinanceMarket({"spot": {"BTCUSDT": btc}}, int(btc["open_time"][-1]))  # type: ignore[dict-item]
    async with FakeBinance(market) as fake:
        path = make_config(
            f"""symbols = ["BTC-USD"]
[feed.live.binance]
spot_rest_url = "{fake.rest_url("spot")}"
spot_ws_url = "{fake.ws_url("spot")}"
futures_rest_url = "{fake.rest_url("futures")}"
futures_ws_url = "{fake.ws_url("futures")}"
"""
        )
        settings = load_config(path, env={})
        clock = VirtualClock(fake.market, LiveClock())
        end = clock.now_ns()
        mid = start + 3 * HOUR

        def run(until: int) -> object:
            return backfill(
                settings, symbols=["BTC-USD"], intervals=["15m", "1h"], start_ns=start, end_ns=until, clock=clock,
                chunk_bars=7, progress=False,
            )  # fmt: skip

        first = await run(mid)  # an interrupted run: only the first part
        resumed = await run(end)
        again = await run(end)
        truth = {iv: fake.market.closed("spot", "BTCUSDT", iv) for iv in ("15m", "1h")}

    assert sum(first.inserted.values()) == 12 + 3  # type: ignore[attr-defined]
    assert set(resumed.resumed_from) == {"BTC-USD 15m", "BTC-USD 1h"}  # type: ignore[attr-defined]
    assert sum(again.inserted.values()) == 0  # type: ignore[attr-defined]
    db = sqlite3.connect(f"file:{tmp_path / 'data' / 'pia.sqlite3'}?mode=ro", uri=True)
    try:
        for iv, want in truth.items():
            want = want[want["open_time"] >= start]
            got = read_bars(db, "BTC-USD", iv)
            assert len(got) == len(want) > 5
            np.testing.assert_array_equal(got, want)
    finally:
        db.close()
