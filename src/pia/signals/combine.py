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
import numpy.typing as npt

from pia.signals.base import I8, Bool, SignalOutput, from_masks


def vote(buy: Bool, sell: Bool, out: I8 | None = None) -> I8:
    """A sub-indicator's vote from its BUY and SELL conditions (both true, or neither: HOLD).

    ``out`` (an int8 array, e.g. a row of a composite's vote matrix) receives the votes in place.
    """
    if buy.dtype == np.bool_ and sell.dtype == np.bool_:
        return np.subtract(buy.view(np.int8), sell.view(np.int8), out=out)  # booleans are bytes 0/1: no cast
    return np.subtract(buy, sell, dtype=np.int8, out=out)


Subs = Sequence[I8] | I8
"""Sub-indicator votes: a sequence of per-bar vote arrays, or a (k, n) int8 matrix with one row each."""


def _counts(subs: Subs) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16], int]:
    """Per bar: net = B - S and active = B + S (votes are -1, 0, +1), and k, the number of sub-indicators."""
    if len(subs) == 0:
        raise ValueError("a composite needs at least one sub-indicator")
    m = np.asarray(subs, dtype=np.int8)  # a matrix is used as it is; a sequence is stacked once
    net = np.add.reduce(m, axis=0, dtype=np.int16)
    active = np.add.reduce(np.abs(m), axis=0, dtype=np.int16)
    return net, active, m.shape[0]


def majority(subs: Subs) -> SignalOutput:
    net, active, k = _counts(subs)
    win = (active + np.abs(net)) >> 1  # max(B, S)
    beats_hold = win > k - active
    return from_masks((net > 0) & beats_hold, (net < 0) & beats_hold, win / np.maximum(active, 1))


def majority_of_all(subs: Subs) -> SignalOutput:
    net, active, k = _counts(subs)
    win = (active + np.abs(net)) >> 1
    beats_hold = win > k - active
    return from_masks((net > 0) & beats_hold, (net < 0) & beats_hold, win / k)


def pattern_count(subs: Subs, per_pattern: float = 0.25) -> SignalOutput:
    net, active, _ = _counts(subs)
    win = (active + np.abs(net)) >> 1
    return from_masks(net > 0, net < 0, np.multiply(win, per_pattern, dtype=np.float64))


def calendar_rule(subs: Subs, min_votes: int = 2, cap: float = 0.6) -> SignalOutput:
    net, active, _ = _counts(subs)
    win = (active + np.abs(net)) >> 1
    enough = win >= min_votes
    conf = np.minimum(win / np.maximum(active, 1), cap)
    return from_masks((net > 0) & enough, (net < 0) & enough, conf)
