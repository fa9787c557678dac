"""Consensus (first pass): a simple majority of every signal vote across an instrument's timeframes.

:func:`decide` is the whole rule, in one place:

1. Collect the latest votes of every timeframe of the instrument. B = BUY votes, S = SELL votes;
   active voters = B + S (HOLD abstains).
2. Quorum: fewer than ``min_voters`` active voters -> HOLD, confidence 0.
3. BUY if B > S, SELL if S > B, with confidence = winning count / active; a tie -> HOLD, confidence 0.5.

Per timeframe, the same majority (without quorum) gives that timeframe's action, reported in
``ConsensusChanged.detail``. An event is published only when the instrument's action or its
confidence bucket (``confidence_bucket`` wide) changes. The weighted consensus of SEED-SPEC §2.4
replaces this rule in the signals issue.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.config import ConsensusConfig
from pia.events import Action, ConsensusChanged, SignalsComputed, Vote


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    confidence: float
    buy: int
    sell: int

    @property
    def voters(self) -> int:
        return self.buy + self.sell


def majority(votes: Iterable[Vote]) -> tuple[Action, int, int]:
    buy = sell = 0
    for v in votes:
        if v.action is Action.BUY:
            buy += 1
        elif v.action is Action.SELL:
            sell += 1
    action = Action.BUY if buy > sell else Action.SELL if sell > buy else Action.HOLD
    return action, buy, sell


def decide(votes_by_tf: Mapping[str, Iterable[Vote]], min_voters: int) -> Decision:
    """The instrument's consensus from the latest votes of each timeframe (rules in the module doc)."""
    action, buy, sell = majority(v for votes in votes_by_tf.values() for v in votes)
    active = buy + sell
    if active < min_voters:
        return Decision(Action.HOLD, 0.0, buy, sell)
    if action is Action.HOLD:
        return Decision(Action.HOLD, 0.5, buy, sell)
    return Decision(action, max(buy, sell) / active, buy, sell)


class ConsensusActor:
    """Owns the latest votes per (symbol, timeframe) and publishes ``ConsensusChanged``."""

    def __init__(self, bus: Bus, clock: Clock, config: ConsensusConfig, timeframe_order: Iterable[str]) -> None:
        self._bus = bus
        self._clock = clock
        self._config = config
        self._order = tuple(timeframe_order)
        self._votes: dict[str, dict[str, tuple[Vote, ...]]] = {}
        self._current: dict[str, Decision] = {}
        self.changes = 0
        self._sub = bus.subscribe(topics.signals(), "consensus")

    def bucket(self, confidence: float) -> int:
        return math.floor(confidence / self._config.confidence_bucket + 1e-9)

    async def run(self) -> None:
        async for ev in self._sub:
            await self.on_signals(ev)

    async def on_signals(self, ev: SignalsComputed) -> None:
        per_tf = self._votes.setdefault(ev.symbol, {})
        per_tf[ev.timeframe] = ev.votes
        new = decide(per_tf, self._config.min_voters)
        old = self._current.get(ev.symbol, Decision(Action.HOLD, 0.0, 0, 0))
        self._current[ev.symbol] = new
        if new.action is old.action and self.bucket(new.confidence) == self.bucket(old.confidence):
            return
        self.changes += 1
        detail = tuple((label, majority(per_tf[label])[0]) for label in self._order if label in per_tf)
        await self._bus.publish(
            topics.consensus(),
            ConsensusChanged(
                ts_event=ev.ts_event,
                ts_recv=self._clock.now_ns(),
                symbol=ev.symbol,
                action=new.action,
                confidence=new.confidence,
                previous_action=old.action,
                previous_confidence=old.confidence,
                buy=new.buy,
                sell=new.sell,
                voters=new.voters,
                price=ev.close,
                detail=detail,
            ),
        )

    def current(self) -> dict[str, Decision]:
        return dict(self._current)
