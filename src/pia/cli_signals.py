"""``pia signals``: the current votes and consensus from the stored bars; ``pia signals --list``: the registry."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import orjson

from pia.events import Action
from pia.signals.snapshot import InstrumentSnapshot, TimeframeSnapshot

_MARK = {Action.BUY: "BUY", Action.SELL: "SELL", Action.HOLD: "·"}


def list_signals(out: TextIO) -> int:
    from pia.signals.registry import REGISTRY

    rows = [(s.name, s.family, str(s.warmup(s.default_params())), s.summary) for s in REGISTRY]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    for name, family, warm, summary in rows:
        out.write(f"{name:<{w0}}  {family:<{w1}}  warm-up {warm:>{w2}}  {summary}\n")
    return 0


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%MZ")


def _decision(action: Action, confidence: float) -> str:
    return f"{action.name} {confidence:.2f}" if action is not Action.HOLD else "HOLD"


def _tf_line(t: TimeframeSnapshot) -> str:
    if t.decision is None or t.regime is None:
        return f"  {t.label:<4} {t.interval:>4}  {t.bars} bars stored: not enough to vote"
    d, r = t.decision, t.regime
    gate = f", held by the {d.gate}" if d.gate else ""
    return (
        f"  {t.label:<4} {t.interval:>4}  {t.bars:>4} bars to {_when(t.last_open_ns)}  close {t.close:,.6g}  "
        f"{r.regime.value:<13} RSI {r.rsi:5.1f}  ATR {r.atr_pct:.2f}%  -> {_decision(d.action, d.confidence)} "
        f"(raw {_decision(d.raw_action, d.raw_confidence)}; {d.buy} buy / {d.sell} sell of {len(t.votes)}; "
        f"confluence {d.confluence:.2f}{gate})"
    )


def render_instrument(snap: InstrumentSnapshot, out: TextIO) -> None:
    inst = snap.instrument
    consensus = _decision(snap.decision.action, snap.decision.confidence)
    out.write(f"{inst.symbol} ({inst.asset_class.value})  consensus {consensus}\n")
    for t in snap.timeframes:
        out.write(_tf_line(t) + "\n")
    shown = [t for t in snap.timeframes if t.decision is not None]
    if not shown:
        return
    out.write("\n")
    header = f"  {'signal':<17}" + "".join(f"{t.label:>11}" for t in shown)
    out.write(header + "\n")
    for name in snap.signals:
        cells = []
        for t in shown:
            vote = next((v for v in t.votes if v.signal == name), None)
            err = next((e for s, e in t.errors if s == name), None)
            if err is not None:
                cells.append("error")
            elif vote is None:
                cells.append("n/a")
            elif vote.action is Action.HOLD:
                cells.append(_MARK[Action.HOLD])
            else:
                cells.append(f"{_MARK[vote.action]} {vote.confidence:.2f}")
        out.write(f"  {name:<17}" + "".join(f"{c:>11}" for c in cells) + "\n")
    for t in shown:
        for name, err in t.errors:
            out.write(f"  error: {name} on {t.label}: {err}\n")


def render_summary(snaps: list[InstrumentSnapshot], out: TextIO) -> None:
    labels = [t.label for t in snaps[0].timeframes] if snaps else []
    out.write(f"{'instrument':<10} {'consensus':<10}" + "".join(f"{lbl:>6}" for lbl in labels) + "\n")
    for s in snaps:
        cells = []
        for t in s.timeframes:
            cells.append("-" if t.decision is None else {1: "B", -1: "S", 0: "·"}[int(t.decision.action)])
        out.write(
            f"{s.instrument.symbol:<10} {_decision(s.decision.action, s.decision.confidence):<10}"
            + "".join(f"{c:>6}" for c in cells)
            + "\n"
        )
    out.write("B = BUY, S = SELL, · = HOLD, - = not enough bars stored\n")


def run(config: Path, symbol: str | None, tf: str | None, as_json: bool, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    from pia.config import load_config
    from pia.signals.registry import REGISTRY
    from pia.signals.snapshot import snapshot_instrument, to_json
    from pia.store.db import open_db, store_path

    settings = load_config(config)
    universe = settings.universe
    instruments = list(universe.instruments)
    if symbol is not None:
        match = [i for i in instruments if i.symbol == symbol.upper()]
        if not match:
            known = ", ".join(i.symbol for i in instruments)
            sys.stderr.write(f"pia signals: unknown instrument {symbol!r} (known: {known})\n")
            return 2
        instruments = match
    timeframes = list(universe.timeframes)
    if tf is not None:
        timeframes = [t for t in timeframes if t.label == tf]
        if not timeframes:
            known = ", ".join(t.label for t in universe.timeframes)
            sys.stderr.write(f"pia signals: unknown timeframe {tf!r} (known: {known})\n")
            return 2
    cfg = settings.config
    path = store_path(settings.data_dir, cfg.store)
    signals = REGISTRY.resolve(cfg.signals)
    conn = open_db(path, cfg.store, readonly=True)
    try:
        snaps = [snapshot_instrument(conn, i, timeframes, signals, cfg.consensus) for i in instruments]
    finally:
        conn.close()
    if as_json:
        payload = [to_json(s) for s in snaps]
        out.write(orjson.dumps(payload[0] if symbol else payload, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif symbol is not None or len(snaps) == 1:
        render_instrument(snaps[0], out)
    else:
        render_summary(snaps, out)
    return 0
