"""The consensus rules, one test (or a few) per numbered rule of ``pia.signals.consensus``.

Expected figures are worked out by hand in the comments. With :class:`PriorWeights` every signal's
accuracy is the prior 0.5, so a vote weighs 0.5 x its regime multiplier.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pia import topics
from pia.bus import Bus
from pia.clock import FakeClock
from pia.config import REGIMES, ConsensusConfig, load_config
from pia.errors import ConfigError
from pia.events import Action, ConsensusChanged, SignalsComputed, TimeframeConsensus, Vote, log_fields
from pia.intervals import NS
from pia.signals.consensus import (
    GATE_CORE,
    GATE_QUORUM,
    ConsensusActor,
    InstrumentDecision,
    PriorWeights,
    TimeframeDecision,
    decide_instrument,
    decide_timeframe,
    hour_of,
    in_quiet_hours,
    shrunk_accuracy,
    signal_weight,
)

B, S, H = Action.BUY, Action.SELL, Action.HOLD
CORE = frozenset({"rsi", "macd", "ema", "bb", "fear_greed", "sentiment", "funding", "volume"})
POLICY = ConsensusConfig()
FLAT = ConsensusConfig(regime_multipliers={})  # every multiplier 1.0: weighted shares = raw shares
NOON = 12
REPO = Path(__file__).resolve().parents[3]


def v(signal: str, action: Action, confidence: float = 0.7) -> Vote:
    return Vote(signal=signal, action=action, confidence=confidence)


class FakeWeights:
    def __init__(
        self, accuracy: dict[str, tuple[int, int]] | None = None, activation: dict[str, float] | None = None
    ) -> None:
        self._accuracy = accuracy or {}
        self._activation = activation or {}

    def accuracy(self, signal: str) -> tuple[int, int]:
        return self._accuracy.get(signal, (0, 0))

    def activation(self, signal: str) -> float:
        return self._activation.get(signal, 1.0)


def decide(
    *votes: Vote,
    regime: str = "trending_up",
    hour: int = NOON,
    policy: ConsensusConfig = POLICY,
    prev_sentiment: Action = H,
    weights: FakeWeights | PriorWeights | None = None,
) -> TimeframeDecision:
    return decide_timeframe(
        votes,
        core=CORE,
        regime=regime,
        hour_utc=hour,
        weights=weights or PriorWeights(),
        policy=policy,
        prev_sentiment=prev_sentiment,
    )


# ----------------------------------------------------------------------------- rule 1: active voters
def test_rule1_hold_abstains_and_buy_sell_are_counted() -> None:
    d = decide(v("rsi", B), v("macd", B), v("ema", H), v("bb", S), v("volume", B))
    assert (d.buy, d.sell, d.voters) == (3, 1, 4)


def test_rule1_three_active_voters_including_a_core_one_buy() -> None:
    # the original's HEAD broke "3 voters => BUY"; trending_up: rsi 0.5 x 0.7 = 0.35, others 0.5 each
    d = decide(v("rsi", B), v("trend", B), v("momentum", B), v("calendar", H))
    assert (d.action, d.confidence, d.gate) == (B, 1.0, None)
    assert (d.raw_action, d.raw_confidence) == (B, 1.0)
    assert d.weighted_buy == pytest.approx(1.35)
    assert d.weighted_sell == 0.0


def test_rule1_all_hold_is_hold() -> None:
    d = decide(v("rsi", H), v("macd", H), v("ema", H))
    assert (d.action, d.confidence, d.voters) == (H, 0.0, 0)


# ----------------------------------------------------------------------- rule 2: sentiment hysteresis
def test_rule2_low_confidence_flip_is_dropped() -> None:
    d = decide(v("rsi", B), v("macd", B), v("ema", B), v("sentiment", S, 0.5), prev_sentiment=B)
    assert (d.buy, d.sell, d.voters, d.sentiment_used) == (3, 0, 3, H)
    assert (d.action, d.confidence) == (B, 1.0)


def test_rule2_same_direction_is_kept_at_low_confidence() -> None:
    d = decide(v("rsi", B), v("macd", B), v("sentiment", B, 0.42), prev_sentiment=B)
    assert (d.buy, d.voters, d.sentiment_used, d.gate) == (3, 3, B, None)


def test_rule2_flip_at_the_flip_confidence_is_kept() -> None:
    d = decide(v("rsi", B), v("macd", B), v("sentiment", S, 0.55), prev_sentiment=B)
    assert (d.buy, d.sell, d.sentiment_used) == (2, 1, S)


def test_rule2_no_previous_direction_means_no_hysteresis() -> None:
    d = decide(v("rsi", B), v("macd", B), v("sentiment", S, 0.41), prev_sentiment=H)
    assert (d.sell, d.sentiment_used) == (1, S)


def test_rule2_dropped_sentiment_does_not_count_for_the_core_gate() -> None:
    d = decide(v("trend", B), v("momentum", B), v("calendar", B), v("sentiment", B, 0.5), prev_sentiment=S)
    assert (d.action, d.gate, d.voters) == (H, GATE_CORE, 3)


# ------------------------------------------------------------------------------ rule 3: core gate
def test_rule3_enhanced_only_is_hold() -> None:
    d = decide(v("trend", B), v("momentum", B), v("candles", B), v("calendar", B), v("rsi", H))
    assert (d.action, d.confidence, d.raw_action, d.raw_confidence, d.gate) == (H, 0.0, H, 0.0, GATE_CORE)
    assert (d.buy, d.voters) == (4, 4)  # still reported


def test_rule3_one_active_core_signal_opens_the_gate() -> None:
    d = decide(v("trend", B), v("momentum", B), v("candles", B), v("fear_greed", B))
    assert (d.action, d.gate) == (B, None)


# -------------------------------------------------------------------------------- rule 4: quorum
def test_rule4_two_voters_is_hold() -> None:
    d = decide(v("rsi", B), v("macd", B), v("ema", H))
    assert (d.action, d.confidence, d.raw_action, d.raw_confidence, d.gate) == (H, 0.0, H, 0.0, GATE_QUORUM)
    assert (d.buy, d.voters) == (2, 2)


def test_rule4_quorum_is_configurable() -> None:
    d = decide(v("rsi", B), v("macd", B), policy=ConsensusConfig(min_voters=2))
    assert (d.action, d.confidence, d.gate) == (B, 1.0, None)


@pytest.mark.parametrize("regime", REGIMES)
def test_rule4_one_quorum_for_every_regime(regime: str) -> None:
    d = decide(v("rsi", B), v("macd", B), v("ema", B), regime=regime)
    assert (d.action, d.confidence, d.gate) == (B, 1.0, None)


# ------------------------------------------------------------------------------- rule 5: raw consensus
def test_rule5_raw_majority_share() -> None:
    d = decide(v("rsi", B), v("macd", B), v("ema", S), v("bb", S), v("volume", B), policy=FLAT)
    assert (d.raw_action, d.raw_confidence) == (B, pytest.approx(0.6))


def test_rule5_tie_is_hold_at_one_half() -> None:
    d = decide(v("rsi", B), v("macd", S), v("ema", B), v("bb", S), policy=FLAT)
    assert (d.raw_action, d.raw_confidence, d.action, d.confidence) == (H, 0.5, H, 0.5)
    assert d.gate is None


def test_rule5_and_6_action_threshold() -> None:
    # 3 of 5 = 0.6 < 0.7: HOLD, reporting the share that fell short
    d = decide(
        v("rsi", B),
        v("macd", B),
        v("ema", S),
        v("bb", S),
        v("volume", B),
        policy=FLAT.model_copy(update={"action_threshold": 0.7}),
    )
    assert (d.raw_action, d.raw_confidence) == (H, pytest.approx(0.6))
    assert (d.action, d.confidence) == (H, pytest.approx(0.6))


# ----------------------------------------------------------------------------- rule 6: weighted
def test_rule6_accuracy_is_shrunk_toward_the_prior() -> None:
    assert shrunk_accuracy(15, 20, 0.5, 20) == pytest.approx(0.625)  # (15 + 10) / (20 + 20)
    assert shrunk_accuracy(60, 100, 0.5, 20) == pytest.approx(70 / 120)
    assert shrunk_accuracy(0, 0, 0.5, 20) == 0.5  # no data: exactly the prior
    assert shrunk_accuracy(3, 3, 0.5, 20) == pytest.approx(13 / 23)  # 3 of 3 is no 100 %
    assert shrunk_accuracy(0, 0, 0.5, 0) == 0.5  # k = 0 and no data: the prior, not 0/0


def test_rule6_weight_is_accuracy_times_regime_times_activation() -> None:
    w = FakeWeights({"rsi": (15, 20)}, {"rsi": 2.0})
    assert signal_weight("rsi", "trending_up", w, POLICY) == pytest.approx(0.625 * 0.7 * 2.0)
    assert signal_weight("rsi", "ranging", w, POLICY) == pytest.approx(0.625 * 1.5 * 2.0)
    assert signal_weight("funding", "high_vol", PriorWeights(), POLICY) == pytest.approx(0.5 * 1.3)
    assert signal_weight("trend", "high_vol", PriorWeights(), POLICY) == 0.5  # not listed: 1.0
    assert signal_weight("ema", "unknown_regime", PriorWeights(), POLICY) == 0.5


def test_rule6_ranging_regime_flips_the_winner() -> None:
    votes = (v("ema", B), v("macd", B), v("rsi", S))
    # trending_up: ema 0.75 + macd 0.65 = 1.40 BUY vs rsi 0.35 SELL -> BUY 1.40 / 1.75 = 0.8
    d = decide(*votes, regime="trending_up")
    assert (d.action, d.confidence) == (B, pytest.approx(0.8))
    assert (d.weighted_buy, d.weighted_sell) == (pytest.approx(1.4), pytest.approx(0.35))
    # ranging: ema 0.25 + macd 0.25 = 0.50 BUY vs rsi 0.75 SELL -> SELL 0.75 / 1.25 = 0.6; raw still BUY 2/3
    d = decide(*votes, regime="ranging")
    assert (d.action, d.confidence) == (S, pytest.approx(0.6))
    assert (d.raw_action, d.raw_confidence) == (B, pytest.approx(2 / 3))


def test_rule6_ranging_rsi_and_bb_outvote_ema_and_macd() -> None:
    votes = (v("ema", B), v("macd", B), v("rsi", S), v("bb", S))
    d = decide(*votes, regime="ranging")  # 0.25 + 0.25 = 0.5 BUY vs 0.75 + 0.75 = 1.5 SELL
    assert (d.raw_action, d.action, d.confidence) == (H, S, pytest.approx(0.75))
    d = decide(*votes, regime="trending_down")  # 0.75 + 0.65 = 1.4 BUY vs 0.35 + 0.35 = 0.7 SELL
    assert (d.action, d.confidence) == (B, pytest.approx(2 / 3))


def test_rule6_high_vol_multipliers() -> None:
    # SELL: bb 0.75 + volume 0.65 = 1.40; BUY: ema 0.25 + macd 0.5 + rsi 0.5 = 1.25 -> SELL 1.4 / 2.65
    d = decide(v("bb", S), v("volume", S), v("ema", B), v("macd", B), v("rsi", B), regime="high_vol")
    assert (d.action, d.confidence) == (S, pytest.approx(1.4 / 2.65))
    assert (d.raw_action, d.raw_confidence) == (B, pytest.approx(0.6))


def test_rule6_uses_the_weight_source() -> None:
    # trending_up: rsi 0.625 x 0.7 x 2.0 = 0.875 BUY; macd 0.65 + ema 0.75 = 1.40 SELL -> SELL 1.4 / 2.275
    w = FakeWeights({"rsi": (15, 20)}, {"rsi": 2.0})
    d = decide(v("rsi", B), v("macd", S), v("ema", S), weights=w)
    assert d.weighted_buy == pytest.approx(0.875)
    assert (d.action, d.confidence) == (S, pytest.approx(1.4 / 2.275))


def test_rule6_weak_signal_is_gated_not_inverted() -> None:
    # rsi 2 of 40: (2 + 10) / (40 + 20) = 0.2 < 0.45 -> weight 0 (not a negative weight, not a BUY)
    w = FakeWeights({"rsi": (2, 40)})
    d = decide(v("rsi", S), v("macd", B), v("ema", B), regime="ranging", weights=w)
    assert (d.weighted_buy, d.weighted_sell) == (pytest.approx(0.5), 0.0)
    assert (d.action, d.confidence) == (B, 1.0)
    # without data rsi would have outweighed them: 0.75 SELL vs 0.5 BUY
    d = decide(v("rsi", S), v("macd", B), v("ema", B), regime="ranging")
    assert (d.action, d.confidence) == (S, pytest.approx(0.6))


def test_rule6_min_accuracy_boundary_and_prior() -> None:
    assert signal_weight("x", "ranging", FakeWeights({"x": (8, 20)}), POLICY) == pytest.approx(0.45)  # 18/40
    assert signal_weight("x", "ranging", FakeWeights({"x": (7, 20)}), POLICY) == 0.0  # 17/40 = 0.425
    assert signal_weight("x", "ranging", PriorWeights(), ConsensusConfig(min_accuracy=0.5)) == 0.5


def test_rule6_no_weight_at_all_is_hold() -> None:
    w = FakeWeights({"rsi": (0, 100), "macd": (0, 100), "ema": (0, 100)})
    d = decide(v("rsi", B), v("macd", B), v("ema", B), weights=w)
    assert (d.action, d.confidence, d.gate) == (H, 0.0, None)
    assert (d.raw_action, d.raw_confidence) == (B, 1.0)


def test_rule6_gates_force_hold_whatever_the_weights() -> None:
    d = decide(v("rsi", B), v("macd", B), weights=FakeWeights(activation={"rsi": 50.0}))
    assert (d.action, d.confidence, d.gate) == (H, 0.0, GATE_QUORUM)
    assert d.weighted_buy == pytest.approx(0.35 * 50 + 0.65)  # reported all the same


# ---------------------------------------------------------------------------- rule 7: time of day
@pytest.mark.parametrize(("hour", "damped"), [(1, False), (2, True), (4, True), (6, True), (7, False), (23, False)])
def test_rule7_quiet_hours_damp_both_confidences(hour: int, damped: bool) -> None:
    # trending_up: rsi 0.35 + macd 0.65 = 1.0 BUY vs ema 0.75 SELL -> BUY 1/1.75; raw BUY 2/3
    d = decide(v("rsi", B), v("macd", B), v("ema", S), hour=hour)
    f = 0.8 if damped else 1.0
    assert (d.action, d.confidence) == (B, pytest.approx(f / 1.75))
    assert (d.raw_action, d.raw_confidence) == (B, pytest.approx(f * 2 / 3))


def test_rule7_quiet_hours_are_configurable_and_wrap() -> None:
    policy = ConsensusConfig(quiet_hours_utc=(22, 3), quiet_hours_factor=0.5)
    assert [h for h in range(24) if in_quiet_hours(h, policy.quiet_hours_utc)] == [0, 1, 2, 3, 22, 23]
    d = decide(v("rsi", B), v("macd", B), v("ema", B), hour=23, policy=policy)
    assert d.confidence == 0.5


def test_rule7_hour_is_the_utc_hour_of_the_timestamp() -> None:
    assert hour_of((86400 * 20_000 + 3 * 3600 + 59 * 60) * NS) == 3


# ----------------------------------------------------------------------------- rule 8: confluence
def test_rule8_confluence() -> None:
    assert decide(v("rsi", B), v("macd", B), v("ema", S), v("volume", B)).confluence == pytest.approx(0.85)
    assert decide(v("rsi", B), v("macd", B), v("ema", B), v("volume", S)).confluence == pytest.approx(0.75)
    assert decide(v("rsi", B), v("macd", B), v("ema", B), v("volume", B)).confluence == 1.0  # capped
    assert decide(v("rsi", B), v("macd", S), v("ema", B), v("volume", S)).confluence == 0.5  # tie: no majority
    assert decide(v("rsi", H)).confluence == 0.0
    # reported only: not damped by the quiet hours, not zeroed by the gates
    assert decide(v("rsi", B), v("volume", B), hour=3).confluence == 1.0


# ------------------------------------------------------------------------ rule 9: timeframe blend
def tfd(action: Action, confidence: float, voters: int = 3) -> TimeframeDecision:
    buy = voters if action is B else 0
    sell = voters if action is S else 0
    return TimeframeDecision(action, confidence, action, confidence, buy, sell, voters, 0.0, 0.0, 0.0, "x", None, H)


W = POLICY.timeframe_weights


def test_rule9_default_weights_now_leads() -> None:
    assert list(W.items()) == [
        ("Now", 0.35),
        ("12h", 0.20),
        ("2d", 0.15),
        ("7d", 0.12),
        ("1mo", 0.08),
        ("3mo", 0.06),
        ("6mo", 0.04),
    ]


def test_rule9_now_buy_outweighs_a_6mo_sell() -> None:
    # (0.35 x 0.8 - 0.04 x 1.0) / (0.35 + 0.04) = 0.24 / 0.39
    d = decide_instrument({"Now": tfd(B, 0.8), "6mo": tfd(S, 1.0), "12h": tfd(H, 0.0)}, W)
    assert (d.action, d.confidence, d.score) == (B, pytest.approx(0.24 / 0.39), pytest.approx(0.24 / 0.39))


def test_rule9_quiet_timeframes_abstain() -> None:
    d = decide_instrument({"Now": tfd(H, 0.0), "12h": tfd(H, 0.5), "6mo": tfd(S, 0.9)}, W)
    assert (d.action, d.confidence) == (S, pytest.approx(0.9))


def test_rule9_weighted_mix() -> None:
    # (0.35 x 0.6 - 0.2 x 0.9 - 0.15 x 0.9) / (0.35 + 0.2 + 0.15) = -0.105 / 0.7 = -0.15
    d = decide_instrument({"Now": tfd(B, 0.6), "12h": tfd(S, 0.9), "2d": tfd(S, 0.9)}, W)
    assert (d.action, d.confidence, d.score) == (S, pytest.approx(0.15), pytest.approx(-0.15))
    assert (d.buy, d.sell, d.voters) == (3, 6, 9)


def test_rule9_hold_when_nothing_active_or_balanced() -> None:
    assert decide_instrument({}, W) == InstrumentDecision(H, 0.0)
    assert decide_instrument({"Now": tfd(H, 0.5)}, W).action is H
    d = decide_instrument({"a": tfd(B, 0.5), "b": tfd(S, 0.5)}, {"a": 1.0, "b": 1.0})
    assert (d.action, d.confidence) == (H, 0.0)


def test_rule9_zero_and_unknown_weights_are_ignored() -> None:
    d = decide_instrument({"Now": tfd(B, 0.4), "12h": tfd(S, 1.0), "odd": tfd(S, 1.0)}, {"Now": 1.0, "12h": 0.0})
    assert (d.action, d.confidence) == (B, pytest.approx(0.4))


# ---------------------------------------------------------------------------- rule 10: publishing
TS_NOON = (86400 * 20_000 + 12 * 3600) * NS


def ev(symbol: str, tf: str, *votes: Vote, close: float = 10.0, regime: str = "ranging") -> SignalsComputed:
    return SignalsComputed(
        ts_event=TS_NOON,
        ts_recv=TS_NOON,
        symbol=symbol,
        timeframe=tf,
        interval="15m",
        close=close,
        votes=votes,
        regime=regime,
    )


def actor_for(bus: Bus, policy: ConsensusConfig = FLAT) -> ConsensusActor:
    return ConsensusActor(bus, FakeClock(), policy, ["Now", "12h"], core=CORE)


async def test_rule10_publishes_only_on_action_or_bucket_change() -> None:
    bus = Bus(64)
    actor = actor_for(bus)
    out = bus.subscribe(topics.consensus(), "test")
    r, m, e, b, vol = "rsi", "macd", "ema", "bb", "volume"
    await actor.on_signals(ev("BTC-USD", "Now", v(r, B), v(m, B), v(e, H)))  # quorum: HOLD, no change
    assert out.depth == 0
    await actor.on_signals(ev("BTC-USD", "12h", v(r, B), v(m, B), v(e, B)))  # 12h BUY 1.0 -> BUY 1.0
    await actor.on_signals(ev("BTC-USD", "12h", v(r, B), v(m, B), v(e, B)))  # same: nothing
    # Now BUY 2/3: (0.35 x 2/3 + 0.2) / 0.55 = 0.788 -> bucket 7
    await actor.on_signals(ev("BTC-USD", "Now", v(r, B), v(m, B), v(e, S)))
    # Now BUY 3/4: (0.2625 + 0.2) / 0.55 = 0.841 -> bucket 8
    await actor.on_signals(ev("BTC-USD", "Now", v(r, B), v(m, B), v(e, S), v(b, B)))
    # Now BUY 4/5: (0.28 + 0.2) / 0.55 = 0.873 -> still bucket 8: nothing
    await actor.on_signals(ev("BTC-USD", "Now", v(r, B), v(m, B), v(e, S), v(b, B), v(vol, B)))
    assert actor.current()["BTC-USD"].confidence == pytest.approx(0.48 / 0.55)
    await actor.on_signals(ev("ETH-USD", "Now", v(r, S), v(m, S), v(e, S)))  # another instrument
    # Now SELL 1.0: (-0.35 + 0.2) / 0.55 = -0.273
    await actor.on_signals(ev("BTC-USD", "Now", v(r, S), v(m, S), v(e, S), close=11.0, regime="trending_down"))
    events = [out.receive_nowait() for _ in range(out.depth)]
    got = [(x.symbol, x.previous_action, x.action, round(x.confidence, 3)) for x in events if x]
    assert got == [
        ("BTC-USD", H, B, 1.0),
        ("BTC-USD", B, B, 0.788),
        ("BTC-USD", B, B, 0.841),
        ("ETH-USD", H, S, 1.0),
        ("BTC-USD", B, S, 0.273),
    ]
    assert actor.changes == 5
    last = events[-1]
    assert last is not None
    assert last.detail == (("Now", S), ("12h", B))
    assert (last.buy, last.sell, last.voters, last.price, last.regime) == (3, 3, 6, 11.0, "trending_down")
    assert last.timeframes == (
        TimeframeConsensus(
            label="Now", action=S, confidence=1.0, raw_action=S, regime="trending_down", gate=None, voters=3
        ),
        TimeframeConsensus(label="12h", action=B, confidence=1.0, raw_action=B, regime="ranging", gate=None, voters=3),
    )
    assert list(actor.timeframes("BTC-USD")) == ["Now", "12h"]
    assert actor.timeframes("BTC-USD")["Now"].action is S
    assert actor.timeframes("DOGE-USD") == {}
    assert {k: d.action for k, d in actor.current().items()} == {"BTC-USD": S, "ETH-USD": S}


async def test_rule10_actor_keeps_sentiment_hysteresis_per_instrument() -> None:
    bus = Bus(64)
    actor = actor_for(bus)
    sym = "MSTR"
    await actor.on_signals(ev(sym, "Now", v("rsi", B), v("macd", B), v("sentiment", B, 0.6)))
    assert actor.timeframes(sym)["Now"].sentiment_used is B
    await actor.on_signals(ev(sym, "Now", v("rsi", B), v("macd", B), v("sentiment", S, 0.5)))  # flip dropped
    assert actor.timeframes(sym)["Now"].gate == GATE_QUORUM
    await actor.on_signals(ev(sym, "Now", v("rsi", B), v("macd", B), v("sentiment", S, 0.6)))  # strong flip
    assert actor.timeframes(sym)["Now"].sentiment_used is S
    await actor.on_signals(ev(sym, "Now", v("rsi", B), v("macd", B), v("sentiment", B, 0.5)))  # back: dropped now
    assert actor.timeframes(sym)["Now"].sentiment_used is H
    await actor.on_signals(ev("OTHER", "Now", v("rsi", B), v("macd", B), v("sentiment", S, 0.45)))  # own state
    assert actor.timeframes("OTHER")["Now"].sentiment_used is S


async def test_rule10_actor_applies_quiet_hours_from_the_bar_close() -> None:
    bus = Bus(64)
    actor = actor_for(bus)
    night = SignalsComputed(
        ts_event=(86400 * 20_000 + 3 * 3600) * NS,
        ts_recv=0,
        symbol="X",
        timeframe="Now",
        interval="15m",
        close=1.0,
        votes=(v("rsi", B), v("macd", B), v("ema", B)),
    )
    await actor.on_signals(night)
    assert actor.current()["X"].confidence == pytest.approx(0.8)


def test_consensus_changed_logs_as_json() -> None:
    event = ConsensusChanged(
        ts_event=1,
        ts_recv=2,
        symbol="X",
        action=B,
        confidence=0.5,
        previous_action=H,
        previous_confidence=0.0,
        buy=3,
        sell=0,
        voters=3,
        price=1.0,
        detail=(("Now", B),),
        timeframes=(
            TimeframeConsensus(
                label="Now", action=B, confidence=0.5, raw_action=B, regime="ranging", gate=None, voters=3
            ),
        ),
        regime="ranging",
    )
    fields = orjson.loads(orjson.dumps(log_fields(event)))
    assert fields["regime"] == "ranging"
    assert fields["detail"] == {"Now": "BUY"}
    assert fields["timeframes"] == {
        "Now": {"action": "BUY", "confidence": 0.5, "raw_action": "BUY", "regime": "ranging", "gate": None, "voters": 3}
    }


# ---------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "bad",
    [
        {"min_voters": 0},
        {"action_threshold": 0.4},
        {"sentiment_flip_confidence": 1.5},
        {"accuracy_prior_strength": -1},
        {"min_accuracy": 2},
        {"quiet_hours_utc": (2, 24)},
        {"quiet_hours_factor": 1.2},
        {"timeframe_weights": {"Now": -0.1}},
        {"regime_multipliers": {"sideways": {"rsi": 1.0}}},
        {"regime_multipliers": {"ranging": {"rsi": -1.0}}},
    ],
)
def test_config_rejects_out_of_range_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ConsensusConfig.model_validate(bad)


def test_config_multiplier_defaults_are_seed_spec() -> None:
    m = POLICY.regime_multipliers
    assert m["trending_up"] == m["trending_down"] == {"ema": 1.5, "macd": 1.3, "rsi": 0.7, "bb": 0.7}
    assert m["ranging"] == {"rsi": 1.5, "bb": 1.5, "ema": 0.5, "macd": 0.5}
    assert m["high_vol"] == {"bb": 1.5, "volume": 1.3, "funding": 1.3, "ema": 0.5}


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pia.toml"
    path.write_text(f'[service]\ninstruments = "{REPO / "configs" / "instruments.toml"}"\n' + body)
    return path


def test_config_unknown_timeframe_weight_label_lists_the_known_ones(tmp_path: Path) -> None:
    path = _config(tmp_path, "[consensus.timeframe_weights]\nNow = 1.0\n'1y' = 0.5\n")
    with pytest.raises(
        ConfigError, match=r"consensus.timeframe_weights: unknown timeframe label '1y' \(known: Now, 12h"
    ):
        load_config(path, env={})


def test_config_needs_a_positive_timeframe_weight(tmp_path: Path) -> None:
    path = _config(tmp_path, "[consensus.timeframe_weights]\nNow = 0.0\n")
    with pytest.raises(ConfigError, match="no timeframe of the instruments file has a positive weight"):
        load_config(path, env={})


def test_config_timeframe_weights_replace_the_table(tmp_path: Path) -> None:
    settings = load_config(_config(tmp_path, "[consensus.timeframe_weights]\nNow = 1.0\n12h = 0.5\n"), env={})
    assert settings.config.consensus.timeframe_weights == {"Now": 1.0, "12h": 0.5}


# -------------------------------------------------------------------------------------- property
SIGNALS = ["rsi", "macd", "ema", "bb", "volume", "sentiment", "trend", "momentum", "candles", "calendar"]
actions = st.sampled_from([B, S, H])
vote_sets = st.dictionaries(
    st.sampled_from(SIGNALS), st.tuples(actions, st.floats(0.0, 1.0)), max_size=len(SIGNALS)
).map(lambda d: tuple(v(name, a, c) for name, (a, c) in d.items()))
weight_sources = st.builds(
    FakeWeights,
    st.dictionaries(
        st.sampled_from(SIGNALS), st.integers(0, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))
    ),
    st.dictionaries(st.sampled_from(SIGNALS), st.floats(0.0, 10.0)),
)


@settings(max_examples=300, deadline=None)
@given(
    votes=vote_sets,
    regime=st.sampled_from([*REGIMES, "other"]),
    hour=st.integers(0, 23),
    weights=weight_sources,
    prev=actions,
    min_voters=st.integers(1, 6),
    threshold=st.floats(0.5, 1.0),
)
def test_property_confidence_in_unit_interval_and_gates_hold(
    votes: tuple[Vote, ...],
    regime: str,
    hour: int,
    weights: FakeWeights,
    prev: Action,
    min_voters: int,
    threshold: float,
) -> None:
    policy = ConsensusConfig(min_voters=min_voters, action_threshold=threshold)
    d = decide(*votes, regime=regime, hour=hour, policy=policy, prev_sentiment=prev, weights=weights)
    for x in (d.confidence, d.raw_confidence, d.confluence):
        assert 0.0 <= x <= 1.0 and math.isfinite(x)
    counted = [
        x
        for x in votes
        if x.action is not H
        and not (x.signal == "sentiment" and prev is not H and x.action is not prev and x.confidence < 0.55)
    ]
    assert d.voters == len(counted) == d.buy + d.sell
    core_fails = not any(x.signal in CORE for x in counted)
    quorum_fails = len(counted) < min_voters
    if core_fails or quorum_fails:
        assert (d.action, d.confidence, d.raw_action, d.raw_confidence) == (H, 0.0, H, 0.0)
        assert d.gate == (GATE_CORE if core_fails else GATE_QUORUM)
    else:
        assert d.gate is None
    if d.action is not H:
        assert d.confidence >= threshold * (0.8 if 2 <= hour <= 6 else 1.0) - 1e-9
    inst = decide_instrument({"Now": d, "12h": tfd(S, 0.3)}, POLICY.timeframe_weights)
    assert 0.0 <= inst.confidence <= 1.0
