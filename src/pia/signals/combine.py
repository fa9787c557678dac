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

import functools
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from pia.signals.base import F64, I8, Bool, SignalOutput, from_masks


def vote(buy: Bool, sell: Bool, out: I8 | None = None) -> I8:
    """A sub-indicator's vote from its BUY and SELL conditions (both true, or neither: HOLD).

    ``out`` (an int8 array, e.g. a row of a composite's vote matrix) receives the votes in place.
    """
    if buy.dtype == np.bool_ and sell.dtype == np.bool_:
        return np.subtract(buy.view(np.int8), sell.view(np.int8), out=out)  # booleans are bytes 0/1: no cast
    return np.subtract(buy, sell, dtype=np.int8, out=out)


def crossings(a: F64, b: F64 | float, buy: Bool, sell: Bool) -> None:
    """Into ``buy`` / ``sell`` (one bar shorter than ``a``: bars 1 ..): BUY where ``a`` crosses above ``b`` (at or
    below it on the previous bar, above it now), SELL where it crosses below (``b`` an array or a level)."""
    np.logical_and((a <= b)[:-1], (a > b)[1:], out=buy)
    np.logical_and((a >= b)[:-1], (a < b)[1:], out=sell)


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


def _majority(net: npt.NDArray[np.int16], active: npt.NDArray[np.int16], k: int) -> SignalOutput:
    win = (active + np.abs(net)) >> 1  # max(B, S)
    beats_hold = win > k - active
    return from_masks((net > 0) & beats_hold, (net < 0) & beats_hold, win / np.maximum(active, 1))


def _majority_of_all(net: npt.NDArray[np.int16], active: npt.NDArray[np.int16], k: int) -> SignalOutput:
    win = (active + np.abs(net)) >> 1
    beats_hold = win > k - active
    return from_masks((net > 0) & beats_hold, (net < 0) & beats_hold, win / k)


def _pattern_count(
    net: npt.NDArray[np.int16], active: npt.NDArray[np.int16], k: int, per_pattern: float
) -> SignalOutput:
    win = (active + np.abs(net)) >> 1
    return from_masks(net > 0, net < 0, np.multiply(win, per_pattern, dtype=np.float64))


def _calendar_rule(
    net: npt.NDArray[np.int16], active: npt.NDArray[np.int16], k: int, min_votes: int, cap: float
) -> SignalOutput:
    win = (active + np.abs(net)) >> 1
    enough = win >= min_votes
    conf = np.minimum(win / np.maximum(active, 1), cap)
    return from_masks((net > 0) & enough, (net < 0) & enough, conf)


_RULES: dict[str, Callable[..., SignalOutput]] = {
    "majority": _majority,
    "majority_of_all": _majority_of_all,
    "pattern_count": _pattern_count,
    "calendar_rule": _calendar_rule,
}


_BYTE = 0x11
"""A vote's byte masked with this: BUY (0x01) -> 0x01, SELL (0xFF) -> 0x11, HOLD -> 0. Summed over up to 15
votes, a bar's byte holds B + S in its low nibble and S in its high one: one number per bar."""
TALLY_BUY, TALLY_SELL = 0x01, 0x11
"""What one BUY and one SELL vote add to a bar's tally byte (see :func:`fold_tally`)."""
MAX_TALLY_VOTES = 15


@functools.cache
def _table(rule: str, k: int, *args: float) -> tuple[I8, F64]:
    """A rule's action and confidence for every tally byte of ``k`` sub-indicators (see :data:`_BYTE`).

    Computed by the rule itself over every (net, active) pair, so a lookup gives exactly the bits the
    rule gives; bytes that cannot occur (more SELLs than active votes) are computed and never read.
    """
    tally = np.arange(256, dtype=np.int16)
    active, sells = tally & 0x0F, tally >> 4
    out = _RULES[rule](active - 2 * sells, active, k, *args)
    out.action.flags.writeable = False
    out.confidence.flags.writeable = False
    return out.action, out.confidence


def _fold(subs: Subs, rule: str, *args: float, hold_before: int = 0) -> SignalOutput:
    """Tally the votes per bar and look the rule's result up: four array operations per call.

    Bars before ``hold_before`` hold (a composite's warm-up), however many sub-votes they have.
    """
    if len(subs) == 0:
        raise ValueError("a composite needs at least one sub-indicator")
    m = np.asarray(subs, dtype=np.int8)  # a matrix is used as it is; a sequence is stacked once
    k = m.shape[0]
    if k > MAX_TALLY_VOTES:  # more votes than a byte can count: count them in full
        net, active, _ = _counts(m)
        out = _RULES[rule](net, active, k, *args)
        out.action[:hold_before] = 0
        out.confidence[:hold_before] = 0.0
        return out
    tally = np.bitwise_and(m.view(np.uint8), _BYTE)
    byte: npt.NDArray[np.uint8] = np.add.reduce(tally, axis=0, dtype=np.uint8)
    byte[:hold_before] = 0  # no votes: HOLD with confidence 0 under every rule
    return fold_tally(byte, k, rule, *args)


def fold_tally(byte: npt.NDArray[np.integer], k: int, rule: str, *args: float) -> SignalOutput:
    """``rule``'s result for votes already tallied per bar: each BUY adds :data:`TALLY_BUY`, each SELL
    :data:`TALLY_SELL` (at most :data:`MAX_TALLY_VOTES` of ``k`` votes). For a composite that counts its votes
    its own way (``calendar`` reads most of them from a per-day table); ``rule`` names one of the rules below."""
    action, confidence = _table(rule, k, *args)
    return SignalOutput(action.take(byte), confidence.take(byte))


def majority(subs: Subs, *, hold_before: int = 0) -> SignalOutput:
    return _fold(subs, "majority", hold_before=hold_before)


def majority_of_all(subs: Subs, *, hold_before: int = 0) -> SignalOutput:
    return _fold(subs, "majority_of_all", hold_before=hold_before)


def pattern_count(subs: Subs, per_pattern: float = 0.25, *, hold_before: int = 0) -> SignalOutput:
    return _fold(subs, "pattern_count", per_pattern, hold_before=hold_before)


def calendar_rule(subs: Subs, min_votes: int = 2, cap: float = 0.6, *, hold_before: int = 0) -> SignalOutput:
    return _fold(subs, "calendar_rule", min_votes, cap, hold_before=hold_before)
