"""What a signal is: a pure, vectorised function over OHLCV arrays, declared with its warm-up.

A signal takes the whole history (or a live window) and returns, for every bar, an action
(+1 BUY, -1 SELL, 0 HOLD = abstain) and a confidence in [0, 1]. No I/O, clock, bus or logging.
Live evaluation runs the same function on the window and reads the last element, so live and
vectorised results are the same by construction once the window covers the warm-up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]


class Ohlcv(NamedTuple):
    """Column views of a bar series, oldest first (contiguous float64; times as int64 ns)."""

    open_time: npt.NDArray[np.int64]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


class SignalOutput(NamedTuple):
    action: I8  # +1 BUY, -1 SELL, 0 HOLD, one per bar
    confidence: F64  # 0..1, 0 where HOLD


class Params(BaseModel):
    """Base of every signal's parameter model: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Compute = Callable[[Ohlcv, Any], SignalOutput]


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """A signal's declaration in the registry."""

    name: str
    family: str
    params_model: type[Params]
    compute: Compute
    warmup: Callable[[Any], int]  # bars needed before the first vote, given the params
    summary: str  # one line: what it measures and how it votes

    def default_params(self) -> Params:
        return self.params_model()


def hold(n: int) -> SignalOutput:
    return SignalOutput(np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.float64))


def from_masks(buy: npt.NDArray[np.bool_], sell: npt.NDArray[np.bool_], conf: F64) -> SignalOutput:
    """Actions from boolean masks (NaN comparisons are False, so warm-up bars HOLD)."""
    action = buy.astype(np.int8) - sell.astype(np.int8)
    confidence = np.where(action != 0, np.clip(np.nan_to_num(conf), 0.0, 1.0), 0.0)
    return SignalOutput(action, confidence)
