from __future__ import annotations

import random

import pytest

from pia.feeds.backoff import Backoff


def test_grows_with_jitter_caps_and_resets() -> None:
    b = Backoff(1, 2, 10, rng=random.Random(3))
    delays = [b.next() for _ in range(6)]
    caps = [1, 2, 4, 8, 10, 10]
    for d, cap in zip(delays, caps, strict=True):
        assert cap / 2 <= d <= cap
    assert len(set(delays)) == 6  # jittered
    b.reset()
    assert 0.5 <= b.next() <= 1


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(0, 2, 10)
    with pytest.raises(ValueError, match="backoff"):
        Backoff(5, 2, 1)


def test_many_attempts_stay_at_the_cap() -> None:
    b = Backoff(1, 2, 30)
    for _ in range(5000):
        assert b.next() <= 30
