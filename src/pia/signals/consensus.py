"""Consensus: the weighted vote of SEED-SPEC §2.4, one timeframe at a time, then across timeframes.

Every rule lives in two pure functions, :func:`decide_timeframe` and :func:`decide_instrument`; the
numbers below are the rule numbers the tests (``tests/unit/signals/test_consensus.py``) name. The policy
figures come from :class:`~pia.config.ConsensusConfig` (defaults in brackets).

Per (instrument, timeframe), from the latest vote of each signal on that timeframe's last closed bar:

1. **Active voters.** The votes that are BUY or SELL; B and S count them, active = B + S. HOLD abstains,
   and a signal that does not apply to the asset class is simply not among the votes.
2. **Sentiment hysteresis.** If the ``sentiment`` vote points against the direction sentiment last
   contributed for this instrument (``prev_sentiment``; HOLD = none yet, so no hysteresis) and its
   confidence is below ``sentiment_flip_confidence`` [0.55], it is treated as HOLD. The direction actually
   counted is returned as ``sentiment_used`` so the caller can keep that state.
3. **Core gate.** At least one of the ``core`` signals must be active; otherwise HOLD, confidence 0,
   ``gate = "core"``. Enhanced signals cannot make a consensus on their own.
4. **Quorum.** active >= ``min_voters`` [3]; otherwise HOLD, confidence 0, ``gate = "quorum"``. One quorum
   for every asset class and regime (the original's regime-dependent quorum silently kept crypto on HOLD).
5. **Raw consensus** (reported only). BUY if B/active > S/active and B/active >= ``action_threshold``
   [0.5]; SELL likewise; otherwise HOLD. The confidence is the larger share (0.5 on a tie).
6. **Weighted consensus** (the output). Each active vote weighs
   ``accuracy x regime multiplier x activation``, where

   - accuracy is shrunk toward ``accuracy_prior`` [0.5] by sample size:
     ``(hits + prior x k) / (samples + k)`` with k = ``accuracy_prior_strength`` [20], so with no data it
     is exactly the prior and there is no hard sample cut-off;
   - a signal whose shrunk accuracy is below ``min_accuracy`` [0.45] weighs 0: it is gated, never
     inverted (SEED-SPEC §10);
   - the regime multiplier comes from ``regime_multipliers`` (trending: ema 1.5, macd 1.3, rsi 0.7,
     bb 0.7; ranging: rsi 1.5, bb 1.5, ema 0.5, macd 0.5; high_vol: bb 1.5, volume 1.3, funding 1.3,
     ema 0.5; anything else 1.0);
   - activation is the :class:`WeightSource`'s figure (1.0 from :class:`PriorWeights`).

   With wB, wS the BUY and SELL weight sums and total = wB + wS: BUY if wB/total > wS/total and
   wB/total >= ``action_threshold``; SELL likewise; otherwise HOLD. The confidence is the larger share.
   total = 0 gives HOLD, confidence 0. The gates of rules 3 and 4 force HOLD here too.
7. **Time of day.** Both confidences are multiplied by ``quiet_hours_factor`` [0.8] when the UTC hour of
   the bar close is within ``quiet_hours_utc`` [2..6, inclusive].
8. **Confluence** (reported only) = max(B, S)/active, + 0.1 when the ``volume`` vote is active and agrees
   with that majority, capped at 1.0 (0 with no active voter).

Per instrument, from the latest decision of each of its timeframes:

9. **Timeframe blend.** S = sum(w_tf x a_tf x c_tf) / sum(w_tf over the timeframes whose action is not
   HOLD), with a = +1 BUY / -1 SELL / 0 HOLD, c the timeframe's confidence and w its
   ``timeframe_weights`` entry [Now 0.35, 12h 0.20, 2d 0.15, 7d 0.12, 1mo 0.08, 3mo 0.06, 6mo 0.04].
   Quiet timeframes abstain like HOLD votes; a timeframe with weight 0 (or none) is ignored. BUY if S > 0,
   SELL if S < 0, HOLD when S = 0 or no timeframe is active; the confidence is |S|.

Publishing (:class:`ConsensusActor`):

10. A ``ConsensusChanged`` is published only when the instrument's action or its confidence bucket
    (``floor(confidence / confidence_bucket)``) changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.config import ConsensusConfig
from pia.events import Action, ConsensusChanged, SignalsComputed, TimeframeConsensus, Vote
from pia.intervals import NS

GATE_CORE = "core"
GATE_QUORUM = "quorum"
SENTIMENT = "sentiment"
VOLUME = "volume"
CONFLUENCE_VOLUME_BONUS = 0.1
_EPS = 1e-12


class WeightSource(Protocol):
    """Where the per-signal figures of rule 6 come from."""

    def accuracy(self, signal: str) -> tuple[int, int]:
        """(hits, samples) of the signal's scored votes."""
        ...

    def activation(self, signal: str) -> float:
        """The signal's activation weight (>= 0)."""
        ...


class PriorWeights:
    """No data yet: every signal has (0 hits, 0 samples), so its accuracy is the prior, and activation 1.0."""

    def accuracy(self, signal: str) -> tuple[int, int]:
        return (0, 0)

    def activation(self, signal: str) -> float:
        return 1.0


@dataclass(frozen=True, slots=True)
class TimeframeDecision:
    """The consensus of one (instrument, timeframe) (rules 1-8)."""

    action: Action  # weighted (rule 6), after the gates and the time-of-day factor
    confidence: float
    raw_action: Action  # rule 5
    raw_confidence: float
    buy: int
    sell: int
    voters: int  # active voters, B + S
    weighted_buy: float
    weighted_sell: float
    confluence: float  # rule 8
    regime: str
    gate: str | None  # GATE_CORE | GATE_QUORUM when a gate forced HOLD
    sentiment_used: Action  # the sentiment direction counted (HOLD: none)


@dataclass(frozen=True, slots=True)
class InstrumentDecision:
    """The consensus of an instrument across its timeframes (rule 9)."""

    action: Action
    confidence: float  # |score|
    score: float = 0.0  # signed blend S in [-1, 1]
    buy: int = 0  # summed over the timeframes
    sell: int = 0
    voters: int = 0


NO_DECISION = InstrumentDecision(Action.HOLD, 0.0)


def shrunk_accuracy(hits: int, samples: int, prior: float, strength: float) -> float:
    """Rule 6: (hits + prior x k) / (samples + k); the prior when there is nothing to go on."""
    denominator = samples + strength
    if denominator <= 0:
        return prior
    return (hits + prior * strength) / denominator


def signal_weight(signal: str, regime: str, weights: WeightSource, policy: ConsensusConfig) -> float:
    """Rule 6: accuracy x regime multiplier x activation, or 0 for a signal below ``min_accuracy``."""
    hits, samples = weights.accuracy(signal)
    accuracy = shrunk_accuracy(hits, samples, policy.accuracy_prior, policy.accuracy_prior_strength)
    if accuracy < policy.min_accuracy:
        return 0.0
    multiplier = policy.regime_multipliers.get(regime, {}).get(signal, 1.0)
    weight = accuracy * multiplier * weights.activation(signal)
    return weight if math.isfinite(weight) and weight > 0 else 0.0


def in_quiet_hours(hour_utc: int, quiet: tuple[int, int]) -> bool:
    """Rule 7: ``first <= hour <= last``, wrapping past midnight when first > last."""
    first, last = quiet
    if first <= last:
        return first <= hour_utc <= last
    return hour_utc >= first or hour_utc <= last


def _side(buy: float, sell: float, threshold: float) -> tuple[Action, float]:
    """Rules 5 and 6: the winning side of two non-negative amounts and its share of their sum."""
    total = buy + sell
    if total <= 0:
        return Action.HOLD, 0.0
    b, s = buy / total, sell / total
    if b > s and b >= threshold - _EPS:
        return Action.BUY, b
    if s > b and s >= threshold - _EPS:
        return Action.SELL, s
    return Action.HOLD, max(b, s)


def decide_timeframe(
    votes: Sequence[Vote],
    *,
    core: frozenset[str],
    regime: str,
    hour_utc: int,
    weights: WeightSource,
    policy: ConsensusConfig,
    prev_sentiment: Action,
) -> TimeframeDecision:
    """The consensus of one (instrument, timeframe) from its signals' votes: rules 1-8 of the module doc."""
    # 1 + 2: active voters, with the sentiment hysteresis applied
    active: list[Vote] = []
    sentiment_used = Action.HOLD
    for v in votes:
        if v.action == Action.HOLD:
            continue
        if v.signal == SENTIMENT:
            flips = prev_sentiment != Action.HOLD and v.action != prev_sentiment
            if flips and v.confidence < policy.sentiment_flip_confidence:
                continue
            sentiment_used = Action(v.action)
        active.append(v)
    buy = sum(1 for v in active if v.action == Action.BUY)
    sell = len(active) - buy
    voters = len(active)

    # 3 + 4: the gates
    gate: str | None = None
    if not any(v.signal in core for v in active):
        gate = GATE_CORE
    elif voters < policy.min_voters:
        gate = GATE_QUORUM

    # 5: raw majority
    raw_action, raw_confidence = _side(buy, sell, policy.action_threshold)

    # 6: weighted
    weighted_buy = weighted_sell = 0.0
    for v in active:
        w = signal_weight(v.signal, regime, weights, policy)
        if v.action == Action.BUY:
            weighted_buy += w
        else:
            weighted_sell += w
    action, confidence = _side(weighted_buy, weighted_sell, policy.action_threshold)

    if gate is not None:
        action, confidence, raw_action, raw_confidence = Action.HOLD, 0.0, Action.HOLD, 0.0

    # 7: time of day
    if in_quiet_hours(hour_utc, policy.quiet_hours_utc):
        confidence *= policy.quiet_hours_factor
        raw_confidence *= policy.quiet_hours_factor

    # 8: confluence
    confluence = 0.0
    if voters:
        majority = Action.BUY if buy > sell else Action.SELL if sell > buy else Action.HOLD
        confluence = max(buy, sell) / voters
        if majority != Action.HOLD and any(v.signal == VOLUME and v.action == majority for v in active):
            confluence = min(1.0, confluence + CONFLUENCE_VOLUME_BONUS)

    return TimeframeDecision(
        action=action,
        confidence=confidence,
        raw_action=raw_action,
        raw_confidence=raw_confidence,
        buy=buy,
        sell=sell,
        voters=voters,
        weighted_buy=weighted_buy,
        weighted_sell=weighted_sell,
        confluence=confluence,
        regime=regime,
        gate=gate,
        sentiment_used=sentiment_used,
    )


def decide_instrument(per_tf: Mapping[str, TimeframeDecision], tf_weights: Mapping[str, float]) -> InstrumentDecision:
    """The instrument's consensus from its timeframes' decisions: rule 9 of the module doc."""
    num = den = 0.0
    buy = sell = voters = 0
    for label, d in per_tf.items():
        buy += d.buy
        sell += d.sell
        voters += d.voters
        w = tf_weights.get(label, 0.0)
        if w <= 0 or d.action == Action.HOLD:
            continue
        num += w * int(d.action) * d.confidence
        den += w
    score = max(-1.0, min(1.0, num / den)) if den > 0 else 0.0
    action = Action.BUY if score > 0 else Action.SELL if score < 0 else Action.HOLD
    return InstrumentDecision(action, abs(score), score, buy, sell, voters)


def hour_of(ts_ns: int) -> int:
    """The UTC hour of a nanosecond timestamp."""
    return int(ts_ns // NS // 3600 % 24)


class ConsensusActor:
    """Keeps the latest decision per (symbol, timeframe) and publishes ``ConsensusChanged`` (rule 10).

    ``core`` names the core signals (rule 3); ``weights`` supplies accuracy and activation (rule 6);
    ``timeframe_order`` orders the per-timeframe detail, its first label being the leading timeframe.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        config: ConsensusConfig,
        timeframe_order: Iterable[str],
        *,
        core: frozenset[str],
        weights: WeightSource | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._config = config
        self._order = tuple(timeframe_order)
        self._core = core
        self._weights: WeightSource = weights if weights is not None else PriorWeights()
        self._per_tf: dict[str, dict[str, TimeframeDecision]] = {}
        self._prev_sentiment: dict[str, Action] = {}
        self._current: dict[str, InstrumentDecision] = {}
        self.changes = 0
        self._sub = bus.subscribe(topics.signals(), "consensus")

    def bucket(self, confidence: float) -> int:
        return math.floor(confidence / self._config.confidence_bucket + 1e-9)

    async def run(self) -> None:
        async for ev in self._sub:
            await self.on_signals(ev)

    async def on_signals(self, ev: SignalsComputed) -> None:
        symbol = ev.symbol
        decision = decide_timeframe(
            ev.votes,
            core=self._core,
            regime=ev.regime,
            hour_utc=hour_of(ev.ts_event),
            weights=self._weights,
            policy=self._config,
            prev_sentiment=self._prev_sentiment.get(symbol, Action.HOLD),
        )
        if decision.sentiment_used != Action.HOLD:
            self._prev_sentiment[symbol] = decision.sentiment_used
        per_tf = self._per_tf.setdefault(symbol, {})
        per_tf[ev.timeframe] = decision
        new = decide_instrument(per_tf, self._config.timeframe_weights)
        old = self._current.get(symbol, NO_DECISION)
        self._current[symbol] = new
        if new.action == old.action and self.bucket(new.confidence) == self.bucket(old.confidence):
            return
        self.changes += 1
        labels = self._labels(per_tf)
        await self._bus.publish(
            topics.consensus(),
            ConsensusChanged(
                ts_event=ev.ts_event,
                ts_recv=self._clock.now_ns(),
                symbol=symbol,
                action=new.action,
                confidence=new.confidence,
                previous_action=old.action,
                previous_confidence=old.confidence,
                buy=new.buy,
                sell=new.sell,
                voters=new.voters,
                price=ev.close,
                detail=tuple((label, per_tf[label].action) for label in labels),
                timeframes=tuple(
                    TimeframeConsensus(
                        label=label,
                        action=d.action,
                        confidence=d.confidence,
                        raw_action=d.raw_action,
                        regime=d.regime,
                        gate=d.gate,
                        voters=d.voters,
                    )
                    for label in labels
                    for d in (per_tf[label],)
                ),
                regime=per_tf[labels[0]].regime,
            ),
        )

    def _labels(self, per_tf: Mapping[str, TimeframeDecision]) -> list[str]:
        """The timeframes present, in the configured order (unknown labels last, as they came)."""
        known = [label for label in self._order if label in per_tf]
        return known + [label for label in per_tf if label not in self._order]

    def current(self) -> dict[str, InstrumentDecision]:
        """symbol -> the instrument's latest consensus."""
        return dict(self._current)

    def timeframes(self, symbol: str) -> dict[str, TimeframeDecision]:
        """timeframe label -> that timeframe's latest decision, in the configured order."""
        per_tf = self._per_tf.get(symbol, {})
        return {label: per_tf[label] for label in self._labels(per_tf)}
