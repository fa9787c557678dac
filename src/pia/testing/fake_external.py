"""Fake external reference-data servers: alternative.me Fear & Greed, CBOE's VIX history CSV and the
Frankfurter (ECB) FX API, served by one aiohttp app on 127.0.0.1 (ephemeral port).

Each fake holds scriptable data and a queue of faults; every request consumes at most one fault, in
the order they were scripted (``fail(500, times=2)`` then ``send_malformed()`` answers 500, 500, then
a broken body, then normal data again)::

    async with FakeExternal() as fake:
        fake.fear_greed.publish(27, day=date(2026, 11, 24))
        fake.vix.add_close(date(2026, 11, 24), 17.5)
        fake.frankfurter.set_rate("USD", "SEK", 10.52, day=date(2026, 11, 24))
        fake.frankfurter.fail(500, times=2)
        ... point the feeds at fake.fear_greed_url, fake.vix_url, fake.frankfurter_url ...
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from aiohttp import web

_DATE_FORMATS = {"us": "%m-%d-%Y", "cn": "%Y-%m-%d", "kr": "%Y-%m-%d", "world": "%d-%m-%Y"}


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: str  # "status" | "malformed" | "empty" | "api_error"
    status: int = 500
    message: str = ""


class _Faults:
    """A FIFO of faults shared by the scripting methods of every fake."""

    def __init__(self) -> None:
        self._queue: deque[_Fault] = deque()

    def fail(self, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` (and a short text body)."""
        self._queue.extend(_Fault("status", status=status) for _ in range(times))

    def send_malformed(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 whose body is broken (truncated / garbage)."""
        self._queue.extend(_Fault("malformed") for _ in range(times))

    def send_empty(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 that carries no data."""
        self._queue.extend(_Fault("empty") for _ in range(times))

    def clear_faults(self) -> None:
        self._queue.clear()

    @property
    def pending_faults(self) -> int:
        return len(self._queue)

    def _next_fault(self) -> _Fault | None:
        return self._queue.popleft() if self._queue else None


def _status_response(fault: _Fault) -> web.Response:
    return web.Response(status=fault.status, text=f"fake error {fault.status}")


def _json(data: Any) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _day_start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


@dataclass(slots=True)
class FngDay:
    """One daily value as alternative.me serves it (``value`` may be any string, to script bad data)."""

    day: date
    value: int | str
    classification: str


def fng_label(value: int) -> str:
    """alternative.me's own labels (its bands differ from SEED-SPEC's; clients must use the label as given)."""
    if value <= 24:
        return "Extreme Fear"
    if value <= 46:
        return "Fear"
    if value <= 54:
        return "Neutral"
    if value <= 75:
        return "Greed"
    return "Extreme Greed"


class FakeFearGreed(_Faults):
    """``GET /fng/?limit=&format=json&date_format=``: daily values newest first, every field a string."""

    def __init__(self, *, time_until_update: int = 41562) -> None:
        super().__init__()
        self.days: list[FngDay] = []  # newest first
        self.time_until_update = time_until_update
        self.requests = 0
        self.last_query: dict[str, str] = {}

    def publish(self, value: int | str, *, day: date, classification: str | None = None) -> None:
        """Set the value of ``day`` (a new newest day, or a replacement of an existing one)."""
        label = classification if classification is not None else fng_label(value) if isinstance(value, int) else "?"
        self.days = [d for d in self.days if d.day != day]
        self.days.append(FngDay(day, value, label))
        self.days.sort(key=lambda d: d.day, reverse=True)

    def send_api_error(self, message: str = "rate limited", times: int = 1) -> None:
        """A 200 with ``data: []`` and a non-null ``metadata.error``."""
        self._queue.extend(_Fault("api_error", message=message) for _ in range(times))

    def _entry(self, d: FngDay, date_format: str, first: bool) -> dict[str, str]:
        fmt = _DATE_FORMATS.get(date_format)
        entry = {
            "value": str(d.value),
            "value_classification": d.classification,
            "timestamp": d.day.strftime(fmt) if fmt else str(_day_start(d.day)),
        }
        if first:
            entry["time_until_update"] = str(self.time_until_update)
        return entry

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.last_query = dict(request.query)
        fault = self._next_fault()
        if fault is not None and fault.kind == "status":
            return _status_response(fault)
        if fault is not None and fault.kind == "malformed":
            return web.Response(text='{"name": "Fear and Greed Index", "data": [{"value": "2', content_type="text/json")
        if request.query.get("format", "json") != "json":
            return web.Response(status=400, text="the fake serves format=json only")
        try:
            limit = int(request.query.get("limit", "1"))
        except ValueError:
            limit = 1
        days = [] if fault is not None else (self.days if limit <= 0 else self.days[:limit])
        date_format = request.query.get("date_format", "")
        error = fault.message if fault is not None and fault.kind == "api_error" else None
        return _json(
            {
                "name": "Fear and Greed Index",
                "data": [self._entry(d, date_format, i == 0) for i, d in enumerate(days)],
                "metadata": {"error": error},
            }
        )


@dataclass(slots=True)
class VixRow:
    day: date
    open: float
    high: float
    low: float
    close: float


class FakeVix(_Faults):
    """CBOE's ``VIX_History.csv``: ``DATE,OPEN,HIGH,LOW,CLOSE``, dates ``MM/DD/YYYY``, oldest first."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[VixRow] = []
        self.requests = 0

    def add_close(self, day: date, close: float) -> None:
        """Set ``day``'s close (appending a new latest day, or replacing an existing one)."""
        self.rows = [r for r in self.rows if r.day != day]
        self.rows.append(VixRow(day, close, close * 1.05, close * 0.95, close))
        self.rows.sort(key=lambda r: r.day)

    def csv(self) -> str:
        lines = ["DATE,OPEN,HIGH,LOW,CLOSE"]
        for r in self.rows:
            cells = (r.open, r.high, r.low, r.close)
            nums = ",".join(f"{x:.6f}" if math.isfinite(x) else str(x) for x in cells)
            lines.append(f"{r.day:%m/%d/%Y},{nums}")
        return "\n".join(lines) + "\n"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        fault = self._next_fault()
        if fault is not None and fault.kind == "status":
            return _status_response(fault)
        if fault is not None and fault.kind == "malformed":
            text = self.csv().rstrip("\n")
            return web.Response(text=text[: max(len(text) - 12, 0)] + ",abc\n", content_type="text/csv")
        if fault is not None:
            return web.Response(text="DATE,OPEN,HIGH,LOW,CLOSE\n", content_type="text/csv")
        return web.Response(text=self.csv(), content_type="text/csv")


@dataclass(slots=True)
class _Rates:
    day: date
    rates: dict[str, float] = field(default_factory=dict)


class FakeFrankfurter(_Faults):
    """``GET /latest?from=USD&to=SEK[,EUR]&amount=1`` -> ``{"amount","base","date","rates"}`` (ECB rates).

    ``from`` defaults to EUR; an unknown currency answers 404 ``{"message": "not found"}`` as the real one does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.bases: dict[str, _Rates] = {}
        self.requests = 0
        self.last_query: dict[str, str] = {}

    def set_rate(self, base: str, quote: str, rate: float, *, day: date) -> None:
        """1 ``base`` = ``rate`` ``quote`` on reference date ``day`` (every rate of ``base`` takes that date)."""
        entry = self.bases.setdefault(base, _Rates(day))
        entry.day = day
        entry.rates[quote] = rate

    def set_date(self, base: str, day: date) -> None:
        """Move the reference date of ``base``'s rates (e.g. to script a stale ECB date)."""
        self.bases[base].day = day

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.last_query = dict(request.query)
        fault = self._next_fault()
        if fault is not None and fault.kind == "status":
            return _status_response(fault)
        if fault is not None and fault.kind == "malformed":
            return web.Response(text='{"amount":1.0,"base":"USD","date":"20', content_type="application/json")
        base = request.query.get("from", "EUR").upper()
        entry = self.bases.get(base)
        if entry is None:
            return web.json_response({"message": "not found"}, status=404)
        wanted = [q.strip().upper() for q in request.query.get("to", "").split(",") if q.strip()]
        if any(q not in entry.rates for q in wanted):
            return web.json_response({"message": "not found"}, status=404)
        try:
            amount = float(request.query.get("amount", "1"))
        except ValueError:
            return web.json_response({"message": "invalid amount"}, status=422)
        quotes = wanted or sorted(entry.rates)
        rates = {} if fault is not None else {q: round(entry.rates[q] * amount, 5) for q in quotes}
        return _json({"amount": amount, "base": base, "date": entry.day.isoformat(), "rates": rates})


class FakeExternal:
    """The three fakes on one server. ``async with FakeExternal() as fake:`` starts and stops it."""

    def __init__(self) -> None:
        self.fear_greed = FakeFearGreed()
        self.vix = FakeVix()
        self.frankfurter = FakeFrankfurter()
        self._runner: web.AppRunner | None = None
        self._port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/fng/", self.fear_greed.handle)
        app.router.add_get("/vix/VIX_History.csv", self.vix.handle)
        app.router.add_get("/frankfurter/latest", self.frankfurter.handle)
        return app

    async def start(self) -> None:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeExternal:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the fake server is not running")
        return f"http://127.0.0.1:{self._port}"

    @property
    def fear_greed_url(self) -> str:
        return f"{self.base_url}/fng/"

    @property
    def vix_url(self) -> str:
        return f"{self.base_url}/vix/VIX_History.csv"

    @property
    def frankfurter_url(self) -> str:
        """The API root (the feed appends ``/latest``)."""
        return f"{self.base_url}/frankfurter"
