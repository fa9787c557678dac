"""The ``momentum_factors`` composite (SEED-SPEC §2.3): seven price-momentum factors, majority vote.

:func:`momentum_factor_votes` gives the named sub-votes and :func:`momentum_factors` folds them with
:func:`pia.signals.combine.majority`. Every lookback is a fixed number of bars (SEED scaled the
"12-1" momentum and the "window high/low" to the 100 bars it happened to hold).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, model_validator

from pia.signals import combine, ta
from pia.signals.base import F64, I8, Bool, Context, Params, SignalOutput, SignalSpec


class MomentumFactorsParams(Params):
    lookback: Annotated[
        int, Field(ge=2, le=5000, description='Time-series momentum ("12-1"): bars the return is measured over.')
    ] = 240
    skip: Annotated[
        int, Field(ge=0, le=1000, description="Time-series momentum: most recent bars left out of the return.")
    ] = 20
    roc_period: Annotated[int, Field(ge=1, le=1000, description="Rate of change period.")] = 20
    roc_pct: Annotated[
        float, Field(gt=0, le=100, description="Rate of change: BUY above +this %, SELL below -this %.")
    ] = 5.0
    range_period: Annotated[
        int, Field(ge=2, le=5000, description="Bars of the rolling high and low the range factors compare with.")
    ] = 250
    near_high: Annotated[
        float, Field(gt=0, le=1, description="Close / rolling high above this: BUY (near the high).")
    ] = 0.95
    far_from_high: Annotated[
        float, Field(gt=0, le=1, description="Close / rolling high below this: SELL (far below the high).")
    ] = 0.80
    near_low_pct: Annotated[
        float, Field(ge=0, le=100, description="Low bounce: close within this % above the rolling low.")
    ] = 5.0
    green_bars: Annotated[
        int, Field(ge=1, le=20, description="Low bounce: the last bars must all be green (close > open).")
    ] = 3
    new_low_pct: Annotated[
        float, Field(ge=0, le=100, description="New low: close within this % above the new low.")
    ] = 1.0
    run: Annotated[int, Field(ge=1, le=50, description="Green (red) bars in a row that vote BUY (SELL).")] = 4
    accel_period: Annotated[
        int, Field(ge=1, le=500, description="Acceleration: bars of each of the two compared returns.")
    ] = 10
    volume_recent: Annotated[
        int, Field(ge=2, le=500, description="Volume expansion: recent bars (also the price-change period).")
    ] = 10
    volume_prior: Annotated[
        int, Field(ge=2, le=1000, description="Volume expansion: the bars before the recent ones it compares with.")
    ] = 20
    volume_ratio: Annotated[
        float,
        Field(ge=0, le=20, description="Volume expansion: recent mean volume must exceed this x the prior mean."),
    ] = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> MomentumFactorsParams:
        if self.skip >= self.lookback:
            raise ValueError("skip must be shorter than lookback")
        if self.far_from_high >= self.near_high:
            raise ValueError("far_from_high must be below near_high")
        return self


VOTE_NAMES = (
    "time_series_momentum",
    "roc",
    "near_high",
    "low_bounce",
    "bar_run",
    "acceleration",
    "volume_expansion",
)
"""The sub-votes, in the order of the rows of :func:`momentum_factor_vote_matrix`."""


def _vote(row: I8, buy: Bool, sell: Bool) -> None:
    """Write :func:`pia.signals.combine.vote` into the zeroed ``row`` for conditions that start at bar
    ``len(row) - len(buy)`` (the bars before HOLD)."""
    combine.vote(buy, sell, out=row[len(row) - len(buy) :])


def _lagged(a: F64, k: int) -> tuple[F64, F64]:
    """(``a[t]``, ``a[t - k]``) for the bars ``t >= k`` (both empty if there are none)."""
    m = max(len(a) - k, 0)
    return a[k : k + m], a[:m]


def _run(mask: Bool, k: int) -> Bool:
    """``mask`` held on each of the last ``k`` bars, for the bars from ``k - 1`` on (``k - 1`` elements shorter
    than ``mask``; ``mask`` itself if ``k`` is 1)."""
    run, held = mask, 1  # run[i]: mask held on the ``held`` bars ending at bar i + held - 1
    while held < k:
        step = min(held, k - held)  # join two overlapping or touching runs: the length grows by ``step``
        run = run[step:] & run[:-step]
        held += step
    return run


def momentum_factors_warmup(p: MomentumFactorsParams) -> int:
    """Bars before every sub-indicator can vote on the last bar."""
    return max(
        p.lookback + 1,
        p.roc_period + 1,
        p.range_period + 1,  # the new-low rule compares with the previous range_period bars
        p.green_bars,
        p.run,
        2 * p.accel_period + 1,
        p.volume_recent + p.volume_prior,
    )


def momentum_factor_vote_matrix(c: Context, p: MomentumFactorsParams) -> I8:
    """The seven sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar) as the rows of a (7, bars) matrix, in the order
    of :data:`VOTE_NAMES`."""
    o, h, lo, close, n = c.open, c.high, c.low, c.close, c.n
    votes = np.zeros((len(VOTE_NAMES), n), dtype=np.int8)
    v_tsmom, v_roc, v_high, v_low, v_run, v_accel, v_volume = votes

    m = max(n - p.lookback, 0)
    start = p.lookback - p.skip
    tsmom = close[start : start + m] / close[:m]  # growth from lookback to skip bars ago, from bar lookback on
    _vote(v_tsmom, tsmom > 1.0, tsmom < 1.0)

    roc = c.cached(("roc", p.roc_period), lambda: ta.ROC(close, p.roc_period))
    _vote(v_roc, roc > p.roc_pct, roc < -p.roc_pct)

    hh = c.cached(("highest_high", p.range_period), lambda: ta.MAX(h, p.range_period))
    ll = c.cached(("lowest_low", p.range_period), lambda: ta.MIN(lo, p.range_period))
    to_high = close / hh
    _vote(v_high, to_high > p.near_high, to_high < p.far_from_high)

    green = close > o
    red = close < o
    bounce = close <= ll * (1.0 + p.near_low_pct / 100.0)
    bounce[: p.green_bars - 1] = False
    bounce[p.green_bars - 1 :] &= _run(green, p.green_bars)
    new_low = close <= lo * (1.0 + p.new_low_pct / 100.0)
    new_low[:1] = False
    new_low[1:] &= lo[1:] < ll[:-1]  # below the lowest low of the previous range_period bars
    _vote(v_low, bounce, new_low)

    _vote(v_run, _run(green, p.run), _run(red, p.run))

    k = p.accel_period
    recent = np.divide(*_lagged(close, k))  # from bar k on
    recent -= 1.0
    now, before = _lagged(recent, k)  # from bar 2k on
    _vote(v_accel, (now > before) & (before > 0), (now < before) & (before < 0))

    vol_sum = c.cached(("volume_sum", p.volume_recent), lambda: ta.SUM(c.volume, p.volume_recent))
    prior_sum = c.cached(("volume_sum", p.volume_prior), lambda: ta.SUM(c.volume, p.volume_prior))
    vol_now, prior_before = vol_sum[p.volume_recent :], _lagged(prior_sum, p.volume_recent)[1]
    expanding = vol_now * p.volume_prior > p.volume_ratio * p.volume_recent * prior_before
    close_now, close_before = _lagged(close, p.volume_recent)  # the change is > 0 (< 0) exactly when now > before
    _vote(v_volume, expanding & (close_now > close_before), expanding & (close_now < close_before))

    return votes


def momentum_factor_votes(c: Context, p: MomentumFactorsParams) -> dict[str, I8]:
    """The seven named sub-votes (+1 BUY, -1 SELL, 0 HOLD per bar)."""
    return dict(zip(VOTE_NAMES, momentum_factor_vote_matrix(c, p), strict=True))


def momentum_factors(c: Context, p: MomentumFactorsParams) -> SignalOutput:
    """Seven price-momentum factors, each voting BUY, SELL or HOLD on every bar (the numbers
    below are the default parameters):

    - **time_series_momentum** ("12-1"): the return from 240 bars ago to 20 bars ago (the latest 20
      bars skipped): positive BUY, negative SELL.
    - **roc**: 20-bar rate of change above +5 % BUY, below -5 % SELL.
    - **near_high**: close / the highest high of the last 250 bars above 0.95 BUY, below 0.80 SELL.
    - **low_bounce**: close within 5 % above the lowest low of the last 250 bars with the last 3 bars
      green (close > open) → BUY; a new low (this bar's low below the lowest low of the previous 250
      bars) with the close within 1 % above it → SELL.
    - **bar_run**: the last 4 bars all green BUY, all red (close < open) SELL.
    - **acceleration**: the 10-bar return now versus the 10-bar return before it: both positive and
      the recent one larger → BUY; both negative and the recent one lower → SELL.
    - **volume_expansion**: when the mean volume of the last 10 bars exceeds the mean of the 20 bars
      before them, the 10-bar price change votes: up BUY, down SELL.

    Combining (majority): BUY if the BUY votes outnumber both the SELL votes and the HOLD votes (SELL
    likewise); otherwise HOLD. Confidence = winning votes / (BUY + SELL votes).
    """
    return combine.majority(momentum_factor_vote_matrix(c, p))


MOMENTUM_FACTORS = SignalSpec(
    name="momentum_factors",
    family="composite",
    params_model=MomentumFactorsParams,
    compute=momentum_factors,
    warmup=momentum_factors_warmup,
    window=momentum_factors_warmup,  # fixed lookbacks only, nothing recursive: the warm-up is enough
    summary="Majority of 7 momentum factors: 12-1 momentum, ROC20, 250-bar high/low, bar runs, acceleration, volume",
)

SIGNALS: tuple[SignalSpec, ...] = (MOMENTUM_FACTORS,)
