"""The whole offline pipeline in-process: simulated market -> aggregation -> signals -> consensus ->
console and store, with asserted counts."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pia import topics
from pia.app import build
from pia.config import load_config
from pia.events import Action
from pia.feeds.aggregate import aggregate
from pia.store.bars import read_bars

SYMBOLS = ["BTC-USD", "XAU-USD", "NVDA"]
MINUTES = 240  # 00:00 -> 04:00 on a Monday: 16 x 15m, 4 x 1h, 1 x 4h candles close

BODY = f"""symbols = {SYMBOLS!r}
heartbeat_seconds = 0.05
[logging]
level = "DEBUG"
[feed.simulated]
seed = 11
speed = 0
start = 2026-01-05T00:00:00Z
max_minutes = {MINUTES}
[notifier.console]
show_signals = ["Now"]
"""


async def test_demo_pipeline_counts(make_config: Callable[[str], Path]) -> None:
    settings = load_config(make_config(BODY), env={})
    out = io.StringIO()
    app = build(settings, console=out)
    probe = app.bus.subscribe(topics.consensus(), "probe", maxsize=100_000)
    summary = await app.run(duration=120)

    n = len(SYMBOLS)
    assert summary.reason == "all feeds ended"
    assert dict(summary.bars) == {"1m": MINUTES * n, "15m": 16 * n, "1h": 4 * n, "4h": 1 * n}
    # one evaluation per (symbol, timeframe) from warm-up history, then one per streamed candle
    assert summary.signal_sets == n * 7 + n * (16 + 4 + 1)
    assert summary.rejected_bars == 0
    assert summary.dropped_events == 0

    changes = []
    while (ev := probe.receive_nowait()) is not None:
        changes.append(ev)
    assert summary.consensus_changes == len(changes) >= n
    assert {c.symbol for c in changes} == set(SYMBOLS)
    for c in changes:
        assert c.action is not c.previous_action or abs(c.confidence - c.previous_confidence) > 1e-9
        assert c.voters == c.buy + c.sell
        if c.action is not Action.HOLD:
            assert c.voters >= settings.config.consensus.min_voters

    text = out.getvalue()
    assert text.count(" Now ") == 16 * n + n  # one votes line per Now candle (+ the warm-up evaluation)
    assert sum(1 for line in text.splitlines() if " → " in line) == len(changes)

    db = sqlite3.connect(f"file:{settings.data_dir / 'pia.sqlite3'}?mode=ro", uri=True)
    try:
        for sym in SYMBOLS:
            minutes = read_bars(db, sym, "1m")
            assert len(minutes) == 10 * 1440 + MINUTES  # minute history + streamed
            assert np.all(np.diff(minutes["open_time"]) == 60_000_000_000)
            quarter = read_bars(db, sym, "15m")
            # every stored 15m candle equals the aggregate of the stored minutes it covers
            rebuilt = aggregate(minutes, "15m")
            rebuilt = rebuilt[np.isin(rebuilt["open_time"], quarter["open_time"])]
            assert len(rebuilt) == len(quarter) == 10 * 96 + 16
            for f in ("open", "high", "low", "close"):
                np.testing.assert_array_equal(rebuilt[f], quarter[f])
            np.testing.assert_allclose(rebuilt["volume"], quarter["volume"], rtol=1e-9)
            for iv in ("1h", "4h", "1d", "3d", "1w", "1M"):
                assert len(read_bars(db, sym, iv)) > 0, iv
    finally:
        db.close()
