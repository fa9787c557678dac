"""Vectorised history: every signal's vote series over a whole bar array, in one call per signal.

This is what evaluation and backtests use; the service evaluates the very same functions on its live
windows (``pia.signals.worker``). A signal that raises here is reported with its name: history has
no bar to skip, so the error propagates as :class:`SignalComputeError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pia.signals.base import NO_INPUTS, Context, Inputs, Ohlcv, SignalOutput
from pia.signals.registry import ResolvedSignal


class SignalComputeError(RuntimeError):
    def __init__(self, signal: str, exc: Exception) -> None:
        super().__init__(f"signal {signal!r} failed on the history: {exc!r}")
        self.signal = signal


def compute_history(
    o: Ohlcv, signals: Sequence[ResolvedSignal], asset_class: str, inputs: Inputs = NO_INPUTS
) -> dict[str, SignalOutput]:
    """Each applicable signal's action and confidence for every bar of ``o``."""
    ctx = Context(o, inputs)
    out: dict[str, SignalOutput] = {}
    for sig in signals:
        if asset_class not in sig.spec.asset_classes:
            continue
        try:
            out[sig.name] = sig.compute(ctx)
        except Exception as exc:
            raise SignalComputeError(sig.name, exc) from exc
    return out
