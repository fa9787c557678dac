from __future__ import annotations

from pia import topics
from pia.bus import Bus
from pia.clock import FakeClock
from pia.config import ConsensusConfig
from pia.events import Action, SignalsComputed, Vote
from pia.signals.consensus import ConsensusActor, decide

B, S, H = Action.BUY, Action.SELL, Action.HOLD


def votes(*actions: Action) -> tuple[Vote, ...]:
    return tuple(Vote(signal=f"s{i}", action=a, confidence=0.7) for i, a in enumerate(actions))


def test_quorum_of_active_voters() -> None:
    d = decide({"Now": votes(B, B, H)}, min_voters=3)
    assert (d.action, d.confidence, d.buy, d.sell) == (H, 0.0, 2, 0)
    d = decide({"Now": votes(B, B, H), "12h": votes(B, H, H)}, min_voters=3)
    assert (d.action, d.confidence) == (B, 1.0)


def test_majority_and_confidence_is_winning_share() -> None:
    d = decide({"Now": votes(S, S, B), "12h": votes(S, H, H)}, min_voters=3)
    assert (d.action, d.confidence, d.buy, d.sell, d.voters) == (S, 0.75, 1, 3, 4)


def test_tie_holds_at_one_half() -> None:
    d = decide({"Now": votes(B, S), "12h": votes(B, S)}, min_voters=3)
    assert (d.action, d.confidence) == (H, 0.5)


def test_holds_abstain() -> None:
    d = decide({"Now": votes(H, H, H), "12h": votes(H, H, H)}, min_voters=1)
    assert (d.action, d.confidence, d.voters) == (H, 0.0, 0)


def ev(symbol: str, tf: str, *actions: Action, close: float = 10.0) -> SignalsComputed:
    return SignalsComputed(
        ts_event=1, ts_recv=1, symbol=symbol, timeframe=tf, interval="15m", close=close, votes=votes(*actions)
    )


async def test_publishes_only_on_action_or_bucket_change() -> None:
    bus = Bus(64)
    actor = ConsensusActor(bus, FakeClock(), ConsensusConfig(min_voters=3, confidence_bucket=0.1), ["Now", "12h"])
    out = bus.subscribe(topics.consensus(), "test")
    await actor.on_signals(ev("BTC-USD", "Now", B, B, H))  # 2 voters: below quorum, HOLD 0 -> no change
    assert out.depth == 0
    await actor.on_signals(ev("BTC-USD", "12h", B, H, H))  # BUY 1.0
    await actor.on_signals(ev("BTC-USD", "12h", B, H, H))  # same: nothing
    await actor.on_signals(ev("BTC-USD", "12h", S, H, H))  # 2 buy 1 sell: BUY 0.67, new bucket
    await actor.on_signals(ev("ETH-USD", "Now", S, S, S))  # another instrument
    await actor.on_signals(ev("BTC-USD", "Now", S, S, H))  # 0 buy 3 sell: SELL
    events = [out.receive_nowait() for _ in range(out.depth)]
    got = [(e.symbol, e.previous_action, e.action, round(e.confidence, 2)) for e in events if e]
    assert got == [
        ("BTC-USD", H, B, 1.0),
        ("BTC-USD", B, B, 0.67),
        ("ETH-USD", H, S, 1.0),
        ("BTC-USD", B, S, 1.0),
    ]
    last = events[-1]
    assert last is not None and last.detail == (("Now", S), ("12h", S))
    assert actor.changes == 4
