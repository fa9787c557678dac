from __future__ import annotations

import logging

import pytest

from pia.clock import FakeClock
from pia.events import Bar
from pia.feeds.guard import BarGuard
from pia.intervals import MINUTE, NS

T0 = 1_700_000_040 * NS  # on a minute boundary


def bar(i: int = 0, **kw: float | str | int) -> Bar:
    fields: dict[str, float | str | int] = {
        "symbol": "BTC-USD",
        "interval": "1m",
        "open_time": T0 + i * MINUTE,
        "open": 10.0,
        "high": 11.0,
        "low": 9.0,
        "close": 10.5,
        "volume": 3.0,
    }
    fields.update(kw)
    return Bar(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"symbol": "DOGE-USD"}, "unknown_symbol"),
        ({"open_time": T0 + 5 * NS}, "misaligned"),
        ({"close": float("nan")}, "bad_price"),
        ({"low": float("-inf")}, "bad_price"),
        ({"open": 0.0}, "bad_price"),
        ({"high": -1.0}, "bad_price"),
        ({"high": 8.0}, "bad_range"),
        ({"open": 12.0}, "bad_range"),
        ({"close": 8.5}, "bad_range"),
        ({"volume": -1.0}, "bad_volume"),
        ({"volume": float("nan")}, "bad_volume"),
    ],
)
def test_malformed_bars_are_dropped_by_reason(changes: dict[str, float | str | int], reason: str) -> None:
    guard = BarGuard("t", {"BTC-USD"}, FakeClock(T0 + 10 * MINUTE), check_future=True)
    assert not guard.admit(bar(**changes))
    assert dict(guard.dropped) == {reason: 1}
    assert guard.admit(bar())


def test_duplicates_out_of_order_and_future() -> None:
    clock = FakeClock(T0 + 10 * MINUTE)
    guard = BarGuard("t", {"BTC-USD"}, clock, check_future=True)
    assert guard.admit(bar(3))
    assert not guard.admit(bar(3))
    assert not guard.admit(bar(2))
    assert not guard.admit(bar(30))
    assert guard.admit(bar(4))
    assert dict(guard.dropped) == {"duplicate": 1, "out_of_order": 1, "future": 1}
    replay = BarGuard("t", {"BTC-USD"}, clock, check_future=False)
    assert replay.admit(bar(30))


def test_remembered_history_dedupes_the_stream() -> None:
    guard = BarGuard("t", {"BTC-USD"}, FakeClock(T0), check_future=False)
    guard.remember("BTC-USD", "1m", T0 + 5 * MINUTE)
    assert not guard.admit(bar(5))
    assert guard.admit(bar(6))


def test_drops_are_logged_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(T0)
    guard = BarGuard("t", {"BTC-USD"}, clock, check_future=False, log_every=60)
    with caplog.at_level(logging.WARNING, logger="pia.feeds.guard"):
        for _ in range(50):
            guard.admit(bar(close=float("nan")))
    assert len(caplog.records) == 1
    assert caplog.records[0].reason == "bad_price"  # type: ignore[attr-defined]
    assert guard.dropped["bad_price"] == 50
