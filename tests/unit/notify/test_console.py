from __future__ import annotations

import io

from pia import topics
from pia.bus import Bus
from pia.config import ConsoleNotifierConfig
from pia.events import Action, ConsensusChanged, SignalsComputed, Vote
from pia.notify.console import ConsoleNotifier, format_consensus, format_signals

TS = 1_767_571_200 * 10**9 + (13 * 60 + 45) * 60 * 10**9  # 2026-01-05 13:45 UTC


def test_consensus_line_is_readable() -> None:
    ev = ConsensusChanged(
        ts_event=TS,
        ts_recv=TS,
        symbol="BTC-USD",
        action=Action.BUY,
        confidence=0.75,
        previous_action=Action.HOLD,
        previous_confidence=0.0,
        buy=6,
        sell=2,
        voters=8,
        price=95123.4,
        detail=(("Now", Action.BUY), ("12h", Action.HOLD)),
    )
    assert format_consensus(ev) == (
        "13:45 ▲ BTC-USD   HOLD 0.00 → BUY 0.75   (6 buy / 2 sell)  95,123.40  [Now BUY · 12h ·]"
    )


def test_signals_line_shows_close_and_votes() -> None:
    ev = SignalsComputed(
        ts_event=TS,
        ts_recv=TS,
        symbol="NVDA",
        timeframe="Now",
        interval="15m",
        close=181.5,
        votes=(
            Vote(signal="rsi", action=Action.SELL, confidence=0.6),
            Vote(signal="macd", action=Action.HOLD, confidence=0.0),
        ),
    )
    assert format_signals(ev) == "13:45 NVDA      Now        181.50  rsi SELL  macd ·   "


async def test_notifier_prints_a_line_per_change_and_chosen_timeframes_only() -> None:
    bus = Bus(100)
    out = io.StringIO()
    notifier = ConsoleNotifier(bus, ConsoleNotifierConfig(show_signals=("Now",)), out)
    for tf in ("Now", "12h", "Now"):
        await bus.publish(
            topics.signals(),
            SignalsComputed(ts_event=TS, ts_recv=TS, symbol="X", timeframe=tf, interval="15m", close=1.0, votes=()),
        )
    await bus.publish(
        topics.consensus(),
        ConsensusChanged(
            ts_event=TS,
            ts_recv=TS,
            symbol="X",
            action=Action.SELL,
            confidence=1.0,
            previous_action=Action.HOLD,
            previous_confidence=0.0,
            buy=0,
            sell=3,
            voters=3,
            price=1.0,
            detail=(),
        ),
    )
    bus.close()
    await notifier.run()
    lines = out.getvalue().splitlines()
    assert lines[0] == "── 2026-01-05 (UTC) ──"
    assert sum(" Now " in line for line in lines) == 2
    assert sum(" 12h " in line for line in lines) == 0
    assert sum("→" in line for line in lines) == 1
    assert notifier.lines == 3
