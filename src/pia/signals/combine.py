"""How a composite folds its sub-indicator votes into one vote (SEED-SPEC §2.3), vectorised.

Every sub-indicator gives a vote per bar: +1 BUY, -1 SELL, 0 HOLD (abstain, or not enough data).
The rules, counted per bar with B = BUY votes, S = SELL votes, H = HOLD votes, k = B + S + H:

- :func:`majority` (the shared ``majority_vote``): BUY only if B > S **and** B > H (SELL likewise),
  so abstaining sub-indicators act as a quorum; a BUY/SELL tie holds. Confidence = winner / (B + S).
- :func:`majority_of_all` (``heikin_ashi``): the same winner, confidence = winner / k.
- :func:`pattern_count` (``candlestick``): BUY if B > S (HOLDs do not block), confidence
  ``per_pattern`` x the winning count, capped at 1.
- :func:`calendar_rule` (``calendar``): the winner needs at least ``min_votes`` and more than the
  other side; confidence = winner / (B + S), capped at ``cap``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pia.signals.base import I8, Bool, SignalOutput, from_masks


def vote(buy: Bool, sell: Bool) -> I8:
    """A sub-indicator's vote from its BUY and SELL conditions (both true, or neither: HOLD)."""
    return buy.astype(np.int8) - sell.astype(np.int8)


def _counts(subs: Sequence[I8]) -> tuple[np.ndarray, np.ndarray, int]:
    if not subs:
        raise ValueError("a composite needs at least one sub-indicator")
    m = np.vstack(subs)
    return (m == 1).sum(axis=0), (m == -1).sum(axis=0), m.shape[0]


def majority(subs: Sequence[I8]) -> SignalOutput:
    b, s, k = _counts(subs)
    h = k - b - s
    buy = (b > s) & (b > h)
    sell = (s > b) & (s > h)
    active = np.maximum(b + s, 1)
    return from_masks(buy, sell, np.maximum(b, s) / active)


def majority_of_all(subs: Sequence[I8]) -> SignalOutput:
    b, s, k = _counts(subs)
    h = k - b - s
    buy = (b > s) & (b > h)
    sell = (s > b) & (s > h)
    return from_masks(buy, sell, np.maximum(b, s) / k)


def pattern_count(subs: Sequence[I8], per_pattern: float = 0.25) -> SignalOutput:
    b, s, _ = _counts(subs)
    return from_masks(b > s, s > b, per_pattern * np.maximum(b, s))


def calendar_rule(subs: Sequence[I8], min_votes: int = 2, cap: float = 0.6) -> SignalOutput:
    b, s, _ = _counts(subs)
    active = np.maximum(b + s, 1)
    conf = np.minimum(np.maximum(b, s) / active, cap)
    return from_masks((b >= min_votes) & (b > s), (s >= min_votes) & (s > b), conf)
