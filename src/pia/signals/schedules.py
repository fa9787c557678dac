"""Dated economic release schedules that say when they run out (FOMC, CPI, NFP).

The original system hard-coded its FOMC and economic calendars, which ran out in 2027 without anyone
noticing (SEED-SPEC §10). pia ships them as data, ``signals/data/econ_calendar.toml``, one table per
event kind with:

- ``source``: who publishes the dates (and where), as text;
- ``valid_from`` / ``valid_until``: the UTC dates (inclusive) between which the list is known to be
  complete;
- ``events``: every release in that span, as UTC datetimes, sorted and unique.

Outside ``[valid_from, valid_until]`` a schedule is **unknown**, not empty: the queries below return
:data:`UNKNOWN` (or NaN) there, and signals that depend on a schedule abstain instead of voting as if
nothing were scheduled. :meth:`Schedules.days_left` is what operations should alert on before a list
runs out.

All times are int64 nanoseconds since the epoch, UTC; the queries are vectorised (binary searches).
"""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pia.errors import ConfigError
from pia.signals.base import F64, Bool

I64 = npt.NDArray[np.int64]

SCHEDULE_SIGNALS = frozenset({"calendar", "econ_calendar", "macro_regime"})
"""The signals that read these schedules (they abstain on events a run-out schedule cannot tell)."""

UNKNOWN = np.iinfo(np.int64).min
"""What :meth:`Schedules.next_event_ns` / :meth:`Schedules.prev_event_ns` return where the schedule
does not know the answer (outside its span, or the next event lies past ``valid_until``)."""

NO_DAY = 2**62
"""What :meth:`Schedules.next_event_day` returns where the next event is unknown: a day number far beyond
any date, so the days until it exceed every threshold."""

DAY_NS = 86_400 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
DEFAULT_FILE = "econ_calendar.toml"
_EPOCH = date(1970, 1, 1)


class EventSchedule(BaseModel):
    """One kind of release: its publisher, the span its list covers, and the release times (UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    source: Annotated[str, Field(min_length=1)]
    valid_from: date
    valid_until: date
    events: tuple[datetime, ...]

    @field_validator("events")
    @classmethod
    def _utc_sorted_unique(cls, events: tuple[datetime, ...]) -> tuple[datetime, ...]:
        for i, t in enumerate(events):
            if t.tzinfo is None or t.utcoffset() != timedelta(0):
                raise ValueError(f"event {i} ({t.isoformat()}) is not in UTC (write it as ...Z)")
        for i in range(1, len(events)):
            if events[i] <= events[i - 1]:
                what = "repeated" if events[i] == events[i - 1] else "out of order"
                raise ValueError(f"event {i} ({events[i].isoformat()}) is {what} (events must be sorted and unique)")
        return events

    @model_validator(mode="after")
    def _inside_span(self) -> EventSchedule:
        if self.valid_until < self.valid_from:
            raise ValueError(f"valid_until {self.valid_until} is before valid_from {self.valid_from}")
        for t in self.events:
            if not self.valid_from <= t.date() <= self.valid_until:
                raise ValueError(
                    f"event {t.isoformat()} is outside valid_from..valid_until ({self.valid_from}..{self.valid_until})"
                )
        return self


def _day_ns(d: date) -> int:
    return (d - _EPOCH).days * DAY_NS


def _to_ns(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


class Schedules:
    """The loaded schedules, by kind, as sorted int64 ns arrays (see :func:`load_schedules`)."""

    def __init__(self, schedules: dict[str, EventSchedule], origin: str = "<memory>") -> None:
        self.origin = origin
        self._specs = dict(schedules)
        self._events: dict[str, I64] = {}
        self._padded: dict[str, I64] = {}  # the events with UNKNOWN before and after (index -1 and len)
        self._span: dict[str, tuple[int, int]] = {}  # [start, end) in ns
        # next-event lookup: searchsorted(_next_bounds, t, "right") indexes _next_values (see next_event_ns)
        self._next_bounds: dict[str, I64] = {}
        self._next_values: dict[str, I64] = {}
        self._next_days: dict[str, I64] = {}  # _next_values as UTC day numbers, NO_DAY where unknown
        self._any_next: dict[tuple[str, ...], tuple[I64, I64, Bool]] = {}  # next_of_any's regimes, by kinds
        for kind, s in self._specs.items():
            ev = np.array([_to_ns(t) for t in s.events], dtype=np.int64)
            self._events[kind] = ev
            self._padded[kind] = np.r_[ev, UNKNOWN, UNKNOWN].astype(np.int64)
            self._span[kind] = (_day_ns(s.valid_from), _day_ns(s.valid_until) + DAY_NS)
            # t < valid_from: unknown; then t <= ev[0]: ev[0]; ev[i-1] < t <= ev[i]: ev[i]; t > ev[-1]: unknown
            # (the events lie within the span, so every t past valid_until is past the last one)
            self._next_bounds[kind] = np.r_[self._span[kind][0], ev + 1].astype(np.int64)
            self._next_values[kind] = np.r_[UNKNOWN, ev, UNKNOWN].astype(np.int64)
            self._next_days[kind] = np.r_[NO_DAY, ev // DAY_NS, NO_DAY].astype(np.int64)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def spec(self, kind: str) -> EventSchedule:
        try:
            return self._specs[kind]
        except KeyError:
            raise KeyError(f"no {kind!r} schedule in {self.origin} (known: {', '.join(self._specs)})") from None

    def events_ns(self, kind: str) -> I64:
        self.spec(kind)
        return self._events[kind]

    def runs_out(self, kind: str) -> date:
        """The last date the ``kind`` list is known complete (``valid_until``)."""
        return self.spec(kind).valid_until

    def days_left(self, kind: str, now: datetime | date) -> int:
        """Days from ``now`` (its UTC date) to :meth:`runs_out`; 0 on the last day, negative once run out."""
        if isinstance(now, datetime):
            now = now.astimezone(UTC).date() if now.tzinfo is not None else now.date()
        return (self.runs_out(kind) - now).days

    def known(self, kind: str, t_ns: I64) -> Bool:
        """Where the ``kind`` list is complete: ``valid_from`` <= UTC date of ``t`` <= ``valid_until``."""
        self.spec(kind)
        lo, hi = self._span[kind]
        t = np.asarray(t_ns, dtype=np.int64)
        return (t >= lo) & (t < hi)

    def next_event_ns(self, kind: str, t_ns: I64) -> I64:
        """Per time: the first event at or after it, or :data:`UNKNOWN` where the schedule cannot say
        (the time is outside the known span, or no listed event follows it before ``valid_until``)."""
        self.spec(kind)
        t = np.asarray(t_ns, dtype=np.int64)
        return self._next_values[kind].take(np.searchsorted(self._next_bounds[kind], t, side="right"))

    def next_event_day(self, kind: str, t_ns: I64) -> I64:
        """Per time: the UTC day number (days since 1970-01-01) of :meth:`next_event_ns`, or :data:`NO_DAY`
        where that is unknown. An integer stand-in for the NaN of :meth:`days_ahead`: ``NO_DAY - day`` is
        above any day count a signal compares it with."""
        self.spec(kind)
        t = np.asarray(t_ns, dtype=np.int64)
        return self._next_days[kind].take(np.searchsorted(self._next_bounds[kind], t, side="right"))

    def next_of_any(self, kinds: tuple[str, ...], t_ns: I64) -> tuple[I64, Bool]:
        """Per time: the earliest :meth:`next_event_ns` among the ``kinds`` whose schedule knows it
        (:data:`UNKNOWN` where none does), and whether every one of them knows it."""
        bounds, nearest, complete = self._any_next_regimes(tuple(kinds))
        i = np.searchsorted(bounds, np.asarray(t_ns, dtype=np.int64), side="right")
        return nearest.take(i), complete.take(i)

    def _any_next_regimes(self, kinds: tuple[str, ...]) -> tuple[I64, I64, Bool]:
        """:meth:`next_of_any` as a step function of time, built once per ``kinds``: the times where some
        kind's next event (or whether it is known) changes, and the answer before the first of them and
        from each of them on."""
        got = self._any_next.get(kinds)
        if got is None:
            for kind in kinds:
                self.spec(kind)
            bounds = np.unique(np.concatenate([self._next_bounds[k] for k in kinds] or [np.empty(0, np.int64)]))
            starts = np.empty(len(bounds) + 1, dtype=np.int64)  # one time inside each regime
            starts[0] = bounds[0] - 1 if len(bounds) else 0
            starts[1:] = bounds
            nxt = [self.next_event_ns(k, starts) for k in kinds]
            nearest = np.full(len(starts), UNKNOWN, dtype=np.int64)
            complete = np.ones(len(starts), dtype=np.bool_)
            for n in nxt:
                known = n != UNKNOWN
                nearest = np.where(known & ((nearest == UNKNOWN) | (n < nearest)), n, nearest)
                complete &= known
            got = self._any_next[kinds] = (bounds, nearest, complete)
        return got

    def prev_event_ns(self, kind: str, t_ns: I64) -> I64:
        """Per time: the last event at or before it, or :data:`UNKNOWN` (outside the known span, or no
        listed event between ``valid_from`` and the time)."""
        ev = self.events_ns(kind)
        t = np.asarray(t_ns, dtype=np.int64)
        got = self._padded[kind][np.searchsorted(ev, t, side="right") - 1]  # index -1: UNKNOWN
        return np.where(self.known(kind, t), got, UNKNOWN)

    def days_ahead(self, kind: str, t_ns: I64, day: I64) -> F64:
        """Calendar days from ``day`` (days since 1970-01-01) to the UTC date of the next event at or
        after ``t_ns``; NaN where unknown."""
        nxt = self.next_event_ns(kind, t_ns)
        return np.where(nxt != UNKNOWN, nxt // DAY_NS - day, np.nan)


def _file_text(path: Path | None) -> tuple[str, bytes]:
    if path is not None:
        return str(path), Path(path).read_bytes()
    ref = resources.files("pia.signals").joinpath("data", DEFAULT_FILE)
    return f"pia/signals/data/{DEFAULT_FILE}", ref.read_bytes()


def load_schedules(path: Path | str | None = None) -> Schedules:
    """Read and validate a schedules file (default: the one shipped with pia).

    Raises :class:`~pia.errors.ConfigError` naming the file and the key that is wrong.
    """
    origin, raw = _file_text(Path(path) if path is not None else None)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    if not doc:
        raise ConfigError(f"{origin}: no schedules (expected tables such as [fomc])")
    out: dict[str, EventSchedule] = {}
    for kind, table in doc.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: {kind}: expected a table ([{kind}]), got {type(table).__name__}")
        try:
            out[kind] = EventSchedule.model_validate(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(x) for x in (kind, *err.get("loc", ())))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            raise ConfigError(f"{origin}: {loc}: {msg}") from exc
    return Schedules(out, origin)


@cache
def default_schedules() -> Schedules:
    """The schedules shipped with pia, loaded once."""
    return load_schedules()
