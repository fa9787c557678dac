"""The current votes and consensus of instruments, computed from stored bars (``pia signals``).

The same pure pieces the service runs: every applicable signal on the newest window of bars of each
timeframe, the regime, the per-timeframe weighted consensus and the instrument-level consensus.
External inputs (Fear & Greed, funding) are not in the store, so those signals abstain here.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pia.config import ConsensusConfig
from pia.events import Action, Vote
from pia.feeds.base import BarArray
from pia.instruments import Instrument, Timeframe
from pia.intervals import parse_interval
from pia.signals.base import NO_INPUTS, Context, Inputs, Ohlcv
from pia.signals.consensus import (
    InstrumentDecision,
    PriorWeights,
    TimeframeDecision,
    decide_instrument,
    decide_timeframe,
)
from pia.signals.regime import RegimeReading, detect_regime
from pia.signals.registry import ResolvedSignal
from pia.store.bars import read_bars


@dataclass(frozen=True, slots=True)
class TimeframeSnapshot:
    label: str
    interval: str
    bars: int
    last_open_ns: int | None
    close: float
    votes: tuple[Vote, ...]
    errors: tuple[tuple[str, str], ...]  # (signal, error) for signals that raised on these bars
    regime: RegimeReading | None
    decision: TimeframeDecision | None


@dataclass(frozen=True, slots=True)
class InstrumentSnapshot:
    instrument: Instrument
    timeframes: tuple[TimeframeSnapshot, ...]
    decision: InstrumentDecision
    signals: tuple[str, ...] = field(default=())


def ohlcv(bars: BarArray) -> Ohlcv:
    return Ohlcv(
        bars["open_time"].copy(),
        bars["open"].copy(),
        bars["high"].copy(),
        bars["low"].copy(),
        bars["close"].copy(),
        bars["volume"].copy(),
    )


def evaluate(
    bars: BarArray, signals: Sequence[ResolvedSignal], asset_class: str, inputs: Inputs = NO_INPUTS
) -> tuple[tuple[Vote, ...], tuple[tuple[str, str], ...], RegimeReading]:
    """Every applicable signal's vote on the last of ``bars`` (a signal that raises is reported, not fatal)."""
    ctx = Context(ohlcv(bars), inputs)
    votes: list[Vote] = []
    errors: list[tuple[str, str]] = []
    for sig in signals:
        if asset_class not in sig.spec.asset_classes:
            continue
        try:
            out = sig.compute(ctx)
            votes.append(
                Vote(signal=sig.name, action=Action(int(out.action[-1])), confidence=float(out.confidence[-1]))
            )
        except Exception as exc:  # the plugin boundary, as in the worker
            errors.append((sig.name, repr(exc)))
    return tuple(votes), tuple(errors), detect_regime(ctx, asset_class)


def snapshot_instrument(
    conn: sqlite3.Connection,
    instrument: Instrument,
    timeframes: Sequence[Timeframe],
    signals: Sequence[ResolvedSignal],
    policy: ConsensusConfig,
) -> InstrumentSnapshot:
    core = frozenset(s.name for s in signals if s.spec.core)
    capacity = max((s.window for s in signals), default=2)
    min_bars = max(2, min((s.warmup for s in signals), default=2))
    weights = PriorWeights()
    out: list[TimeframeSnapshot] = []
    decisions: dict[str, TimeframeDecision] = {}
    asset_class = instrument.asset_class.value
    for tf in timeframes:
        bars = read_bars(conn, instrument.symbol, tf.interval, limit=max(tf.window, capacity))
        if len(bars) < min_bars:
            out.append(TimeframeSnapshot(tf.label, tf.interval, len(bars), None, math.nan, (), (), None, None))
            continue
        votes, errors, regime = evaluate(bars, signals, asset_class)
        last_open = int(bars["open_time"][-1])
        close_ns = parse_interval(tf.interval).next_open(last_open)
        hour = (close_ns // 3_600_000_000_000) % 24
        decision = decide_timeframe(
            votes,
            core=core,
            regime=regime.regime.value,
            hour_utc=int(hour),
            weights=weights,
            policy=policy,
            prev_sentiment=Action.HOLD,
        )
        decisions[tf.label] = decision
        out.append(
            TimeframeSnapshot(
                tf.label, tf.interval, len(bars), last_open, float(bars["close"][-1]), votes, errors, regime, decision
            )
        )
    instrument_decision = decide_instrument(decisions, policy.timeframe_weights)
    return InstrumentSnapshot(instrument, tuple(out), instrument_decision, tuple(s.name for s in signals))


def to_json(snap: InstrumentSnapshot) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return x if math.isfinite(x) else None

    tfs: dict[str, Any] = {}
    for t in snap.timeframes:
        entry: dict[str, Any] = {"interval": t.interval, "bars": t.bars}
        if t.decision is not None and t.regime is not None and t.last_open_ns is not None:
            d = t.decision
            entry.update(
                last_open_ns=t.last_open_ns,
                close=t.close,
                regime=t.regime.regime.value,
                rsi=num(t.regime.rsi),
                atr_pct=num(t.regime.atr_pct),
                ema_gap_pct=num(t.regime.ema_gap_pct),
                votes={v.signal: {"action": v.action.name, "confidence": round(v.confidence, 4)} for v in t.votes},
                errors=dict(t.errors),
                consensus={
                    "action": d.action.name,
                    "confidence": round(d.confidence, 4),
                    "raw_action": d.raw_action.name,
                    "raw_confidence": round(d.raw_confidence, 4),
                    "buy": d.buy,
                    "sell": d.sell,
                    "voters": d.voters,
                    "weighted_buy": round(d.weighted_buy, 4),
                    "weighted_sell": round(d.weighted_sell, 4),
                    "confluence": round(d.confluence, 4),
                    "gate": d.gate,
                },
            )
        tfs[t.label] = entry
    return {
        "symbol": snap.instrument.symbol,
        "asset_class": snap.instrument.asset_class.value,
        "consensus": {"action": snap.decision.action.name, "confidence": round(snap.decision.confidence, 4)},
        "timeframes": tfs,
    }
