from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pia.intervals import NS, parse_interval


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * NS


@pytest.mark.parametrize(
    ("code", "ts", "floor", "nxt"),
    [
        ("15m", "2024-03-05 10:29:59", "2024-03-05 10:15:00", "2024-03-05 10:30:00"),
        ("1h", "2024-03-05 10:29:59", "2024-03-05 10:00:00", "2024-03-05 11:00:00"),
        ("4h", "2024-03-05 10:29:59", "2024-03-05 08:00:00", "2024-03-05 12:00:00"),
        ("1d", "2024-03-05 10:29:59", "2024-03-05 00:00:00", "2024-03-06 00:00:00"),
        ("1w", "2024-03-07 10:00:00", "2024-03-04 00:00:00", "2024-03-11 00:00:00"),  # Monday
        ("1w", "2024-03-04 00:00:00", "2024-03-04 00:00:00", "2024-03-11 00:00:00"),
        ("1M", "2024-02-29 23:59:59", "2024-02-01 00:00:00", "2024-03-01 00:00:00"),
        ("1M", "2024-12-31 12:00:00", "2024-12-01 00:00:00", "2025-01-01 00:00:00"),
        ("3d", "1970-01-04 01:00:00", "1970-01-04 00:00:00", "1970-01-07 00:00:00"),
    ],
)
def test_floor_and_next(code: str, ts: str, floor: str, nxt: str) -> None:
    iv = parse_interval(code)
    assert iv.floor(ns(ts)) == ns(floor)
    assert iv.next_open(ns(floor)) == ns(nxt)
    assert iv.floor_array(np.array([ns(ts)]))[0] == ns(floor)
    assert iv.next_open_array(np.array([ns(floor)]))[0] == ns(nxt)


def test_anchored_3d_matches_binance_listing_anchor() -> None:
    iv = parse_interval("3d").with_anchor(ns("2017-08-17 00:00:00"))
    assert iv.floor(ns("2017-08-22 05:00:00")) == ns("2017-08-20 00:00:00")


@pytest.mark.parametrize("bad", ["", "15", "m15", "0m", "7m", "5h", "2w", "5M", "1y"])
def test_bad_codes_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(bad)


@pytest.mark.parametrize(
    ("base", "target", "ok"),
    [
        ("1m", "15m", True),
        ("1m", "1M", True),
        ("15m", "1w", True),
        ("1d", "1w", True),
        ("1d", "1M", True),
        ("1h", "3d", True),
        ("3d", "1w", False),
        ("1w", "1M", False),
        ("4h", "1h", False),
        ("1M", "3M", True),
    ],
)
def test_divides(base: str, target: str, ok: bool) -> None:
    assert parse_interval(base).divides(parse_interval(target)) is ok


@given(
    st.integers(min_value=0, max_value=4_000_000_000 * NS),
    st.sampled_from(["1m", "15m", "1h", "4h", "1d", "3d", "1w", "1M"]),
)
def test_floor_properties(ts: int, code: str) -> None:
    iv = parse_interval(code)
    f = iv.floor(ts)
    assert f <= ts < iv.next_open(f)
    assert iv.floor(f) == f
    assert iv.floor_array(np.array([ts], dtype=np.int64))[0] == f
