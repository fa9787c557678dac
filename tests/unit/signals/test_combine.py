"""The composite combining rules (SEED-SPEC §2.3), on hand-worked columns of sub-votes."""

from __future__ import annotations

import numpy as np
import pytest

from pia.signals.base import from_masks
from pia.signals.combine import calendar_rule, majority, majority_of_all, pattern_count, vote


def cols(*rows: list[int]) -> list[np.ndarray]:
    """Sub-votes given bar by bar (one row per bar) -> one array per sub-indicator."""
    return [np.asarray(col, dtype=np.int8) for col in zip(*rows, strict=True)]


# bars:            B S H of 5 sub-indicators
BARS = cols(
    [1, 1, 1, 0, 0],  # 3 0 2  -> BUY 3/3
    [1, 1, 0, 0, 0],  # 2 0 3  -> HOLD: BUY does not beat the abstentions
    [1, 1, -1, 0, 0],  # 2 1 2 -> HOLD: 2 is not more than 2 HOLDs
    [1, 1, 1, -1, -1],  # 3 2 0 -> BUY 3/5
    [-1, -1, -1, 1, 0],  # 1 3 1 -> SELL 3/4
    [1, -1, 1, -1, 0],  # 2 2 1 -> HOLD: tie
    [0, 0, 0, 0, 0],  # nothing
)


def test_majority_needs_more_than_the_other_side_and_the_abstentions() -> None:
    out = majority(BARS)
    assert out.action.tolist() == [1, 0, 0, 1, -1, 0, 0]
    assert out.confidence.tolist() == pytest.approx([1.0, 0, 0, 3 / 5, 3 / 4, 0, 0])


def test_majority_of_all_divides_by_every_sub_indicator() -> None:
    out = majority_of_all(BARS)
    assert out.action.tolist() == [1, 0, 0, 1, -1, 0, 0]
    assert out.confidence.tolist() == pytest.approx([3 / 5, 0, 0, 3 / 5, 3 / 5, 0, 0])


def test_pattern_count_ignores_abstentions_and_scores_a_quarter_per_pattern() -> None:
    out = pattern_count(BARS)
    assert out.action.tolist() == [1, 1, 1, 1, -1, 0, 0]
    assert out.confidence.tolist() == pytest.approx([0.75, 0.5, 0.5, 0.75, 0.75, 0, 0])
    many = pattern_count(cols([1, 1, 1, 1, 1]))
    assert many.confidence.tolist() == [1.0]  # capped


def test_calendar_rule_needs_two_agreeing_votes_and_caps_confidence() -> None:
    out = calendar_rule(BARS)
    assert out.action.tolist() == [1, 1, 1, 1, -1, 0, 0]
    assert out.confidence.tolist() == pytest.approx([0.6, 0.6, 0.6, 0.6, 0.6, 0, 0])
    single = calendar_rule(cols([1, 0, 0], [1, -1, 1]))
    assert single.action.tolist() == [0, 1]  # one vote is not enough; 2 vs 1 is
    assert single.confidence.tolist() == pytest.approx([0, 0.6])
    assert calendar_rule(cols([1, 1, 0, -1, 0, 0, 0, 0]), cap=1.0).confidence.tolist() == pytest.approx([2 / 3])


def test_vote_and_from_masks() -> None:
    buy = np.array([True, False, True, False])
    sell = np.array([False, True, True, False])
    assert vote(buy, sell).tolist() == [1, -1, 0, 0]
    out = from_masks(buy, sell, np.array([0.4, np.nan, 0.9, 0.7]))
    assert out.action.tolist() == [1, -1, 0, 0]
    assert out.confidence.tolist() == [0.4, 0.0, 0.0, 0.0]  # NaN -> 0, HOLD -> 0
    assert from_masks(buy, sell, 2.0).confidence.tolist() == [1.0, 1.0, 0.0, 0.0]  # clipped
    assert from_masks(buy, sell, float("nan")).confidence.tolist() == [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="at least one"):
        majority([])


@pytest.mark.parametrize("k", [1, 2, 5, 7, 8, 15, 16, 22])
def test_the_tally_lookup_equals_each_rule_counted_in_full(k: int) -> None:
    """Up to 15 votes fold through a one-byte tally and a table; more are counted in full. Both give
    exactly the rule's bits, on every mix of BUY, SELL and HOLD."""
    from pia.signals import combine

    rng = np.random.default_rng(k)
    m = rng.integers(-1, 2, size=(k, 4000)).astype(np.int8)
    m[:, :50] = 1  # all BUY
    m[:, 50:100] = -1  # all SELL
    m[:, 100:150] = 0
    net, active, _ = combine._counts(m)
    rules = (("majority", ()), ("majority_of_all", ()), ("pattern_count", (0.25,)), ("calendar_rule", (2, 0.6)))
    for rule, args in rules:
        want = combine._RULES[rule](net, active, k, *args)
        got = combine._fold(m, rule, *args)
        np.testing.assert_array_equal(got.action, want.action, err_msg=rule)
        np.testing.assert_array_equal(got.confidence, want.confidence, err_msg=rule)
        assert (got.action[:50] == 1).all() == (rule != "calendar_rule" or k >= 2)
        assert (got.action[50:100] == -1).all() == (rule != "calendar_rule" or k >= 2)
        assert not got.action[100:150].any()
    with pytest.raises(ValueError, match="at least one"):
        combine.majority([])


@pytest.mark.parametrize("k", [5, 16])
def test_hold_before_holds_the_warm_up_bars_whatever_the_votes(k: int) -> None:
    m = np.ones((k, 10), dtype=np.int8)
    for rule in (majority, majority_of_all, pattern_count, calendar_rule):
        out = rule(m, hold_before=4)
        assert out.action.tolist() == [0] * 4 + [1] * 6, rule.__name__
        assert not out.confidence[:4].any() and (out.confidence[4:] > 0).all()
