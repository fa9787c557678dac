"""Real recorded candles replayed through the whole pipeline: what is stored equals the source."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pia.app import build
from pia.config import load_config
from pia.feeds.aggregate import aggregate, split_closed
from pia.feeds.ohlcv_files import load_ohlcv
from pia.intervals import MINUTE
from pia.store.bars import read_bars


async def test_replay_of_real_minutes_stores_exactly_the_source_and_its_candles(
    make_config: Callable[[str], Path], shared_data: Path
) -> None:
    src = shared_data / "candles/ftx/nautilus/btc-perp-20211231-20220201_1m.csv"
    body = f"""symbols = ["BTC-USD"]
[feed]
kind = "replay"
[feed.replay]
speed = 0
files = [{{ path = "{src}", symbol = "BTC-USD", interval = "1m" }}]
[notifier.console]
enabled = false
"""
    settings = load_config(make_config(body), env={})
    app = build(settings)
    summary = await app.run(duration=300)

    source = load_ohlcv(src).bars
    assert len(source) == 45031
    assert summary.reason == "all feeds ended"
    assert summary.bars["1m"] == 45031
    assert summary.rejected_bars == 0
    end = int(source["open_time"][-1]) + MINUTE
    db = sqlite3.connect(f"file:{settings.data_dir / 'pia.sqlite3'}?mode=ro", uri=True)
    try:
        stored = read_bars(db, "BTC-USD", "1m")
        np.testing.assert_array_equal(stored, source)
        for iv in ("15m", "1h", "4h", "1d", "1w"):
            want, _ = split_closed(aggregate(source, iv), iv, end)
            want = want[want["open_time"] >= source["open_time"][0]]  # the first candle starts mid-way
            got = read_bars(db, "BTC-USD", iv)
            assert summary.bars[iv] == len(got) == len(want) > 0, iv
            for f in ("open_time", "open", "high", "low", "close"):
                np.testing.assert_array_equal(got[f], want[f], err_msg=f"{iv} {f}")
            np.testing.assert_allclose(got["volume"], want["volume"], rtol=1e-12)  # summation order
    finally:
        db.close()
    # every Now (15m) candle after warm-up produced a signal set
    assert summary.signal_sets >= summary.bars["15m"] - 35
