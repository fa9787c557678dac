"""The core signals voting from external inputs (SEED-SPEC §2.2): fear_greed, sentiment, llm, ml, funding.

Each reads one :class:`~pia.signals.base.Inputs` series (one value per bar, as of the bar's close;
see :func:`pia.signals.inputs_align.align_asof` for history). They never invent a vote: when the
input has no source (``None``) the signal abstains on every bar, and it abstains on every bar where
the input is NaN (unknown or stale). The bars themselves are not used.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals.base import F64, Context, Params, SignalOutput, SignalSpec, from_masks, hold

CRYPTO = frozenset({"crypto"})


def _input_window(_: object) -> int:
    return 2


def _input_warmup(_: object) -> int:
    return 1


def _input(c: Context, name: str) -> F64 | None:
    """The named input, None when it has no source; ValueError when it is not one value per bar."""
    x: F64 | None = getattr(c.inputs, name)
    if x is not None and x.shape != (c.n,):
        raise ValueError(f"input {name!r} has shape {x.shape}, expected one value per bar ({c.n},)")
    return x


def _signed_vote(x: F64, min_abs: float) -> SignalOutput:
    """Vote the sign of a signed confidence when |x| >= ``min_abs`` (a zero never votes); confidence |x|."""
    strong = np.abs(x) >= min_abs
    return from_masks(strong & (x > 0), strong & (x < 0), np.abs(x))


class FearGreedParams(Params):
    buy_at: Annotated[
        float, Field(gt=0, lt=100, description="BUY (contrarian) when the index is at or below this value.")
    ] = 20.0
    sell_at: Annotated[
        float, Field(gt=0, lt=100, description="SELL (contrarian) when the index is at or above this value.")
    ] = 80.0

    @model_validator(mode="after")
    def _ordered(self) -> FearGreedParams:
        if self.buy_at >= self.sell_at:
            raise ValueError("buy_at must be below sell_at")
        return self


def fear_greed(c: Context, p: FearGreedParams) -> SignalOutput:
    """The asset class's Fear & Greed index (0 extreme fear .. 100 extreme greed), contrarian.

    - BUY when the index is <= `buy_at` (20, extreme fear); SELL when it is >= `sell_at` (80, extreme greed).
    - No index source: HOLD on every bar; an unknown (NaN) reading: HOLD on that bar.

    Confidence grows linearly from 0.5 at the bound to 1.0 at the extreme: 0.5 + 0.5 * (20 - index) / 20
    for BUY, 0.5 + 0.5 * (index - 80) / 20 for SELL.
    """
    fg = _input(c, "fear_greed")
    if fg is None:
        return hold(c.n)
    buy = fg <= p.buy_at
    sell = fg >= p.sell_at
    conf = np.where(buy, 0.5 + 0.5 * (p.buy_at - fg) / p.buy_at, 0.5 + 0.5 * (fg - p.sell_at) / (100.0 - p.sell_at))
    return from_masks(buy, sell, conf)


class FundingParams(Params):
    sell_above: Annotated[
        float,
        Field(gt=0, le=0.01, description="SELL when the funding rate per interval is above this (0.0003 = 0.03 %)."),
    ] = 0.0003
    buy_below: Annotated[
        float, Field(ge=-0.01, lt=0, description="BUY when the funding rate per interval is below this (-0.0001).")
    ] = -0.0001


def funding(c: Context, p: FundingParams) -> SignalOutput:
    """The perpetual's last funding rate, contrarian: crowded longs pay, crowded shorts are paid.

    - SELL when the rate is > `sell_above` (0.0003 = 0.03 % per funding interval);
      BUY when it is < `buy_below` (-0.0001 = -0.01 %); otherwise HOLD.
    - No funding source (spot-only instrument, feed not wired): HOLD on every bar; NaN: HOLD on that bar.

    Confidence is 0.5 at the threshold, rising linearly to 1.0 at twice it (0.06 % for SELL,
    -0.02 % for BUY): 0.5 + 0.5 * (rate - threshold) / |threshold|, capped at 1.
    """
    rate = _input(c, "funding_rate")
    if rate is None:
        return hold(c.n)
    sell = rate > p.sell_above
    buy = rate < p.buy_below
    conf = np.where(
        sell, 0.5 + 0.5 * (rate - p.sell_above) / p.sell_above, 0.5 + 0.5 * (p.buy_below - rate) / -p.buy_below
    )
    return from_masks(buy, sell, conf)


class SentimentParams(Params):
    threshold: Annotated[
        float, Field(ge=0, lt=1, description="Vote when the signed sentiment confidence exceeds this in magnitude.")
    ] = 0.40


def sentiment(c: Context, p: SentimentParams) -> SignalOutput:
    """News sentiment as a signed confidence (+p positive, -p negative, 0 neutral).

    - BUY when sentiment > `threshold` (0.40); SELL when sentiment < -`threshold`; otherwise HOLD.
    - No sentiment source: HOLD on every bar; NaN (no articles): HOLD on that bar.
    - The original's hysteresis (threshold 0.55 when the direction changes from the last voted one)
      depends on past votes and is applied by the consensus, not here.

    Confidence is |sentiment| (the averaged probability of the winning label).
    """
    s = _input(c, "sentiment")
    if s is None:
        return hold(c.n)
    return from_masks(s > p.threshold, s < -p.threshold, np.abs(s))


class ModelVoteParams(Params):
    min_confidence: Annotated[
        float,
        Field(ge=0, le=1, description="Vote only when |signed confidence| is at least this (0: any nonzero value)."),
    ] = 0.0


def ml(c: Context, p: ModelVoteParams) -> SignalOutput:
    """The ML classifier's prediction, as a signed class probability (+p BUY, -p SELL, 0 HOLD).

    - BUY when the value is positive, SELL when negative, provided |value| >= `min_confidence`
      (default 0: any nonzero prediction votes); 0 holds.
    - No model: HOLD on every bar; NaN (no prediction): HOLD on that bar.

    Confidence is |value|.
    """
    x = _input(c, "ml")
    if x is None:
        return hold(c.n)
    return _signed_vote(x, p.min_confidence)


def llm(c: Context, p: ModelVoteParams) -> SignalOutput:
    """The LLM voter's parsed decision (the original's `ministral` slot), as a signed confidence (+c BUY, -c SELL).

    - BUY when the value is positive, SELL when negative, provided |value| >= `min_confidence`
      (default 0: any nonzero decision votes); 0 (HOLD) holds.
    - No LLM voter: HOLD on every bar; NaN (no decision): HOLD on that bar.

    Confidence is |value|.
    """
    x = _input(c, "llm")
    if x is None:
        return hold(c.n)
    return _signed_vote(x, p.min_confidence)


FEAR_GREED = SignalSpec(
    name="fear_greed",
    family="core",
    params_model=FearGreedParams,
    compute=fear_greed,
    warmup=_input_warmup,
    summary="Fear & Greed index, contrarian: BUY at or below 20, SELL at or above 80",
    inputs=("fear_greed",),
    window=_input_window,
)
SENTIMENT = SignalSpec(
    name="sentiment",
    family="core",
    params_model=SentimentParams,
    compute=sentiment,
    warmup=_input_warmup,
    summary="News sentiment: BUY above +0.40, SELL below -0.40 (signed confidence)",
    inputs=("sentiment",),
    window=_input_window,
)
LLM = SignalSpec(
    name="llm",
    family="core",
    params_model=ModelVoteParams,
    compute=llm,
    warmup=_input_warmup,
    summary="LLM voter's decision: vote its sign, confidence its magnitude",
    inputs=("llm",),
    asset_classes=CRYPTO,
    window=_input_window,
)
ML = SignalSpec(
    name="ml",
    family="core",
    params_model=ModelVoteParams,
    compute=ml,
    warmup=_input_warmup,
    summary="ML classifier's prediction: vote its sign, confidence the class probability",
    inputs=("ml",),
    asset_classes=CRYPTO,
    window=_input_window,
)
FUNDING = SignalSpec(
    name="funding",
    family="core",
    params_model=FundingParams,
    compute=funding,
    warmup=_input_warmup,
    summary="Perpetual funding rate, contrarian: SELL above 0.03 %, BUY below -0.01 %",
    inputs=("funding_rate",),
    asset_classes=CRYPTO,
    window=_input_window,
)

SIGNALS: tuple[SignalSpec, ...] = (FEAR_GREED, SENTIMENT, LLM, ML, FUNDING)
