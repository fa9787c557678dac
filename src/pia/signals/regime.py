"""Market regime of one (instrument, timeframe) at its last closed bar (SEED-SPEC §2.4 item 9).

- ``high_vol`` if ATR(14) as a percent of the close exceeds 4 (crypto) or 3 (stocks and metals);
- otherwise, if the EMA(9)/EMA(21) gap exceeds 1 % of EMA(21): ``trending_up`` when EMA9 > EMA21 and
  RSI(14) > 45, ``trending_down`` when EMA9 < EMA21 and RSI(14) < 55;
- otherwise ``ranging`` (also while the indicators are still warming up).

ATR is TA-Lib's Wilder ATR (the original used an EWM with span 14; the two differ by the smoothing
constant only). The inputs come from the evaluation's shared indicator memo, so the regime costs
almost nothing once the signals have run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from pia.signals.base import Context

HIGH_VOL_ATR_PCT = {"crypto": 4.0, "stocks": 3.0, "metals": 3.0}
TREND_GAP_PCT = 1.0


class Regime(StrEnum):
    TRENDING_UP = "trending_up"
    TRENDING_DOWN = "trending_down"
    RANGING = "ranging"
    HIGH_VOL = "high_vol"


@dataclass(frozen=True, slots=True)
class RegimeReading:
    regime: Regime
    atr_pct: float
    ema_gap_pct: float
    rsi: float


def detect_regime(c: Context, asset_class: str) -> RegimeReading:
    if c.n == 0:
        return RegimeReading(Regime.RANGING, math.nan, math.nan, math.nan)
    close = float(c.close[-1])
    atr_pct = float(c.atr(14)[-1]) / close * 100.0 if close > 0 else math.nan
    fast, slow = float(c.ema(9)[-1]), float(c.ema(21)[-1])
    gap_pct = (fast - slow) / slow * 100.0 if slow > 0 else math.nan
    rsi = float(c.rsi(14)[-1])
    limit = HIGH_VOL_ATR_PCT.get(asset_class, 3.0)
    if atr_pct > limit:
        regime = Regime.HIGH_VOL
    elif abs(gap_pct) > TREND_GAP_PCT and fast > slow and rsi > 45:
        regime = Regime.TRENDING_UP
    elif abs(gap_pct) > TREND_GAP_PCT and fast < slow and rsi < 55:
        regime = Regime.TRENDING_DOWN
    else:
        regime = Regime.RANGING
    return RegimeReading(regime, atr_pct, gap_pct, rsi)
