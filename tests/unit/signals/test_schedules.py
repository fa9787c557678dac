"""The shipped economic schedules: loading, validation errors, and "unknown" outside their span."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pia.errors import ConfigError
from pia.signals.schedules import DAY_NS, NO_DAY, UNKNOWN, Schedules, default_schedules, load_schedules

NY = ZoneInfo("America/New_York")


def ns(text: str) -> int:
    return int(np.datetime64(text.removesuffix("Z"), "ns").astype(np.int64))


def arr(*texts: str) -> np.ndarray:
    return np.array([ns(t) for t in texts], dtype=np.int64)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "cal.toml"
    path.write_text(body)
    return path


GOOD = """
[fomc]
source = "test"
valid_from = 2025-01-01
valid_until = 2025-06-30
events = [2025-01-29T19:00:00Z, 2025-03-19T18:00:00Z, 2025-05-07T18:00:00Z]
"""


def test_shipped_schedules_load_and_say_when_they_run_out() -> None:
    s = default_schedules()
    assert set(s.kinds) == {"fomc", "cpi", "nfp"}
    assert s.runs_out("fomc") == date(2028, 1, 26)
    assert s.runs_out("cpi") == date(2025, 12, 31) and s.runs_out("nfp") == date(2025, 12, 31)
    assert s.days_left("fomc", date(2028, 1, 20)) == 6
    assert s.days_left("cpi", datetime(2026, 1, 2, 1, 0, tzinfo=UTC)) == -2
    for kind in s.kinds:
        spec = s.spec(kind)
        assert spec.source and "https://" in spec.source
        ev = s.events_ns(kind)
        assert (np.diff(ev) > 0).all()


@pytest.mark.parametrize(("kind", "local"), [("fomc", time(14, 0)), ("cpi", time(8, 30)), ("nfp", time(8, 30))])
def test_every_release_is_at_its_new_york_time(kind: str, local: time) -> None:
    for t in default_schedules().spec(kind).events:
        ny = t.astimezone(NY)
        assert ny.time() == local, (kind, t)
        assert ny.weekday() < 5, (kind, t)


def test_fomc_has_eight_scheduled_meetings_a_year() -> None:
    years = [t.year for t in default_schedules().spec("fomc").events]
    assert all(years.count(y) == 8 for y in range(2023, 2028))
    # 2025 and 2026 decision days as announced by the Board (2024-08-09)
    got = {t.date() for t in default_schedules().spec("fomc").events if t.year == 2026}
    want = {date(2026, m, d) for m, d in ((1, 28), (3, 18), (4, 29), (6, 17), (7, 29), (9, 16), (10, 28), (12, 9))}
    assert got == want


def test_next_and_prev_event_and_the_unknown_outside_the_span(tmp_path: Path) -> None:
    s = load_schedules(write(tmp_path, GOOD))
    t = arr(
        "2024-12-31T23:59:59",  # before valid_from: unknown
        "2025-01-01T00:00:00",  # first instant known; no event before it in the list
        "2025-01-29T19:00:00",  # exactly at an event
        "2025-02-01T00:00:00",
        "2025-05-07T18:00:01",  # after the last event, inside the span: next unknown
        "2025-06-30T23:59:59",
        "2025-07-01T00:00:00",  # past valid_until: unknown both ways
    )
    nxt = s.next_event_ns("fomc", t)
    prv = s.prev_event_ns("fomc", t)
    e1, e2, e3 = arr("2025-01-29T19:00", "2025-03-19T18:00", "2025-05-07T18:00")
    assert nxt.tolist() == [UNKNOWN, e1, e1, e2, UNKNOWN, UNKNOWN, UNKNOWN]
    assert prv.tolist() == [UNKNOWN, UNKNOWN, e1, e1, e3, e3, UNKNOWN]
    known = nxt != UNKNOWN
    assert s.next_event_day("fomc", t).tolist() == np.where(known, nxt // DAY_NS, NO_DAY).tolist()
    nearest, complete = s.next_of_any(("fomc",), t)
    assert nearest.tolist() == nxt.tolist() and complete.tolist() == known.tolist()
    assert s.known("fomc", t).tolist() == [False, True, True, True, True, True, False]
    days = t // DAY_NS
    assert s.days_ahead("fomc", t, days)[[1, 3]].tolist() == [28.0, 46.0]


def test_validation_errors_name_the_file_and_key(tmp_path: Path) -> None:
    cases = {
        GOOD.replace("2025-03-19T18:00:00Z, 2025-05-07", "2025-05-07T18:00:00Z, 2025-03-19"): (
            r"cal\.toml: fomc\.events: event 2 \(2025-03-19T18:00:00\+00:00\) is out of order"
        ),
        GOOD.replace("2025-03-19T18:00:00Z", "2025-01-29T19:00:00Z"): r"fomc\.events: event 1 .* is repeated",
        GOOD.replace("2025-03-19T18:00:00Z", "2025-03-19T18:00:00"): r"fomc\.events: event 1 .* is not in UTC",
        GOOD.replace("2025-03-19T18:00:00Z", "2025-03-19T14:00:00-04:00"): r"event 1 .* is not in UTC",
        GOOD.replace("valid_until = 2025-06-30", "valid_until = 2025-04-30"): (
            r"fomc: event 2025-05-07T18:00:00\+00:00 is outside valid_from\.\.valid_until"
        ),
        GOOD.replace('source = "test"\n', ""): r"fomc\.source: Field required",
        GOOD.replace("valid_until = 2025-06-30", "valid_until = 2025-06-30\nextra = 1"): r"fomc\.extra: Extra inputs",
        GOOD.replace("valid_from = 2025-01-01", "valid_from = 2025-13-01"): r"cal\.toml: not valid TOML",
        GOOD.replace("valid_from = 2025-01-01", "valid_from = 2026-01-01"): r"valid_until 2025-06-30 is before",
        'fomc = "soon"\n': r"fomc: expected a table",
        "": r"no schedules",
    }
    for body, pattern in cases.items():
        with pytest.raises(ConfigError, match=pattern):
            load_schedules(write(tmp_path, body))


def test_unknown_kind_is_a_clear_error(tmp_path: Path) -> None:
    s = load_schedules(write(tmp_path, GOOD))
    with pytest.raises(KeyError, match=r"no 'cpi' schedule in .*cal\.toml \(known: fomc\)"):
        s.next_event_ns("cpi", arr("2025-02-01T00:00"))


def test_empty_event_list_is_known_to_have_no_events_in_its_span() -> None:
    from pia.signals.schedules import EventSchedule

    s = Schedules(
        {"x": EventSchedule(source="t", valid_from=date(2025, 1, 1), valid_until=date(2025, 1, 31), events=())}
    )
    t = arr("2025-01-10T00:00", "2025-02-10T00:00")
    assert s.next_event_ns("x", t).tolist() == [UNKNOWN, UNKNOWN]  # the next one lies past valid_until
    assert s.known("x", t).tolist() == [True, False]


def test_days_left_counts_to_valid_until() -> None:
    s = default_schedules()
    last = s.runs_out("fomc")
    assert s.days_left("fomc", last) == 0
    assert s.days_left("fomc", last + timedelta(days=1)) == -1
    naive = datetime.combine(last - timedelta(days=3), time(12))
    assert s.days_left("fomc", naive) == 3
