"""What a signal is: a pure, vectorised function over OHLCV arrays, declared with its warm-up.

A signal takes a :class:`Context` (the bars of the whole history or of a live window, the external
inputs aligned to those bars, and a memo of shared indicators) and returns, for every bar, an
action (+1 BUY, -1 SELL, 0 HOLD = abstain) and a confidence in [0, 1]. No I/O, clock, bus or
logging. Live evaluation runs the same function on the window and reads the last element, so live
and vectorised results agree once the window covers the warm-up and the indicators' convergence.

Signal code must be causal: the value at bar ``t`` may use bars ``0..t`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from pia.signals import ta

F64 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]
T = TypeVar("T")

ALL_CLASSES = frozenset({"crypto", "metals", "stocks"})
SETTLE_BARS = 400
"""Bars an exponential indicator needs to forget its seed: EMA/Wilder smoothing with period <= 30
decays the seed below 1e-11 of its weight within ~400 bars, so a live window of warm-up + 400 bars
reproduces the full-history values (checked by the live == vectorised property tests)."""


class Ohlcv(NamedTuple):
    """Column views of a bar series, oldest first (contiguous float64; times as int64 ns)."""

    open_time: npt.NDArray[np.int64]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64


class Inputs(NamedTuple):
    """External inputs, one value per bar (as of that bar's close), NaN where unknown.

    ``None`` means the input has no source at all (its feed or model is not wired): signals that
    depend on it abstain on every bar. The contracts:

    - ``fear_greed``: the asset class's Fear & Greed index, 0 (extreme fear) .. 100 (extreme greed).
    - ``funding_rate``: the perpetual's last funding rate per funding interval (0.0001 = 0.01 %).
    - ``sentiment``: news sentiment as a signed confidence: +p positive, -p negative (p in [0, 1], the
      averaged class probability of the winning label), 0 neutral.
    - ``ml``: the ML classifier's prediction as a signed class probability (+p BUY, -p SELL, 0 HOLD).
    - ``llm``: the LLM voter's parsed decision as a signed confidence (+c BUY, -c SELL, 0 HOLD).
    - ``dxy_change_pct``: the US dollar index's 5-day change, percent.
    - ``us10y_change_pct``: the 10-year Treasury yield's 5-day change, percent of the yield.
    - ``spread_2s10s``: the 10-year minus the 2-year Treasury yield, percentage points.
    """

    fear_greed: F64 | None = None
    funding_rate: F64 | None = None
    sentiment: F64 | None = None
    ml: F64 | None = None
    llm: F64 | None = None
    dxy_change_pct: F64 | None = None
    us10y_change_pct: F64 | None = None
    spread_2s10s: F64 | None = None


INPUT_NAMES: tuple[str, ...] = Inputs._fields
NO_INPUTS = Inputs()


class Context:
    """One evaluation: the bars, the aligned inputs, and a memo of indicators shared between signals.

    Signals ask the context for common indicators (``c.rsi(14)``, ``c.sma(200)`` ...) so that each is
    computed once per evaluation however many signals use it; anything else goes through
    :meth:`cached` with a key naming the indicator and its parameters.
    """

    __slots__ = ("_memo", "close", "high", "inputs", "low", "n", "o", "open", "time", "volume")

    def __init__(self, o: Ohlcv, inputs: Inputs = NO_INPUTS) -> None:
        self.o = o
        self.inputs = inputs
        self.n = len(o.close)
        self.time = o.open_time
        self.open, self.high, self.low, self.close, self.volume = o.open, o.high, o.low, o.close, o.volume
        self._memo: dict[Hashable, Any] = {}

    def cached(self, key: Hashable, fn: Callable[[], T]) -> T:
        memo = self._memo
        if key in memo:
            return cast(T, memo[key])
        value = memo[key] = fn()
        return value

    # --- shared indicators (TA-Lib definitions) ---------------------------------------------
    def rsi(self, period: int = 14) -> F64:
        return self.cached(("rsi", period), lambda: ta.RSI(self.close, timeperiod=period))

    def sma(self, period: int) -> F64:
        return self.cached(("sma", period), lambda: ta.SMA(self.close, timeperiod=period))

    def ema(self, period: int) -> F64:
        return self.cached(("ema", period), lambda: ta.EMA(self.close, timeperiod=period))

    def atr(self, period: int = 14) -> F64:
        return self.cached(("atr", period), lambda: ta.ATR(self.high, self.low, self.close, timeperiod=period))

    def macd(self, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[F64, F64, F64]:
        """(macd, signal, histogram)."""
        out: tuple[F64, F64, F64] = self.cached(
            ("macd", fast, slow, signal),
            lambda: ta.MACD(self.close, fastperiod=fast, slowperiod=slow, signalperiod=signal),
        )
        return out

    def bbands(self, period: int = 20, dev: float = 2.0) -> tuple[F64, F64, F64]:
        """(upper, middle, lower) Bollinger bands: SMA(period) ± dev population standard deviations."""
        out: tuple[F64, F64, F64] = self.cached(
            ("bbands", period, dev),
            lambda: ta.BBANDS(self.close, timeperiod=period, nbdevup=dev, nbdevdn=dev, matype=ta.MA_SMA),
        )
        return out

    def prev(self, a: F64, k: int = 1) -> F64:
        """``a`` shifted ``k`` bars later (NaN for the first ``k``): the previous bar's value at each bar."""
        out = np.empty_like(a, dtype=np.float64)
        k = min(k, len(a))
        out[:k] = np.nan
        out[k:] = a[: len(a) - k]
        return out


WINDOW_BUCKETS = (32, 128, 256, 512)
"""Live evaluation groups signals by window length: each signal sees the newest ``bucket`` bars, the
smallest bucket that covers its window (capped at the longest window). Short-window signals then skip
the work of a long window, and signals in one bucket still share their indicator memo."""


def window_bucket(window: int, longest: int) -> int:
    for b in WINDOW_BUCKETS:
        if window <= b:
            return min(b, longest)
    return longest


def tail_ohlcv(o: Ohlcv, n: int) -> Ohlcv:
    """Views of the newest ``n`` bars (no copy)."""
    if n >= len(o.close):
        return o
    return Ohlcv(o.open_time[-n:], o.open[-n:], o.high[-n:], o.low[-n:], o.close[-n:], o.volume[-n:])


def tail_inputs(x: Inputs, n: int) -> Inputs:
    """The inputs of the newest ``n`` bars (views; absent inputs stay absent)."""
    if x is NO_INPUTS:
        return x
    return Inputs(*[a if a is None or len(a) <= n else a[-n:] for a in x])


class SignalOutput(NamedTuple):
    action: I8  # +1 BUY, -1 SELL, 0 HOLD, one per bar
    confidence: F64  # 0..1, 0 where HOLD


class Params(BaseModel):
    """Base of every signal's parameter model: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Compute = Callable[[Context, Any], SignalOutput]


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """A signal's declaration in the registry.

    ``warmup`` is the bars needed before the first vote can be cast; ``window`` (default: warm-up
    plus :data:`SETTLE_BARS`) is the live window that reproduces full-history votes. ``inputs`` names
    the :class:`Inputs` fields the signal reads (besides the bars); ``asset_classes`` where it applies.
    """

    name: str
    family: str
    params_model: type[Params]
    compute: Compute
    warmup: Callable[[Any], int]  # bars needed before the first vote, given the params
    summary: str  # one line: what it measures and how it votes
    inputs: tuple[str, ...] = ()
    asset_classes: frozenset[str] = field(default=ALL_CLASSES)
    window: Callable[[Any], int] | None = None

    def __post_init__(self) -> None:
        bad = [i for i in self.inputs if i not in INPUT_NAMES]
        if bad:
            raise ValueError(f"signal {self.name!r}: unknown input(s) {bad} (known: {INPUT_NAMES})")

    def default_params(self) -> Params:
        return self.params_model()

    @property
    def core(self) -> bool:
        return self.family == "core"


def hold(n: int) -> SignalOutput:
    return SignalOutput(np.zeros(n, dtype=np.int8), np.zeros(n, dtype=np.float64))


def from_masks(buy: Bool, sell: Bool, conf: F64 | float) -> SignalOutput:
    """Actions from boolean masks (NaN comparisons are False, so warm-up bars HOLD).

    A bar that is both BUY and SELL holds. Confidence is clipped to [0, 1], NaN becomes 0, and it is
    0 where HOLD.
    """
    if buy.dtype == np.bool_ and sell.dtype == np.bool_:
        action = np.subtract(buy.view(np.int8), sell.view(np.int8))  # booleans are bytes 0/1: no cast
    else:
        action = np.subtract(buy, sell, dtype=np.int8)
    active = action != 0
    if isinstance(conf, float | int):
        v = float(conf)
        v = 0.0 if v != v else min(max(v, 0.0), 1.0)
        return SignalOutput(action, active * v)
    confidence = np.where(active, conf, 0.0).astype(np.float64, copy=False)
    np.fmax(confidence, 0.0, out=confidence)  # fmax/fmin: NaN gives way to the bound, so NaN -> 0
    np.fmin(confidence, 1.0, out=confidence)
    return SignalOutput(action, confidence)
