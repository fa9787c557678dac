"""Fear & Greed: crypto from alternative.me, stocks and metals derived from the VIX (SEED-SPEC §2.2).

:class:`FearGreedFeed` polls both sources every ``poll_seconds`` (sooner, ``retry_seconds``, after a
failed poll) and publishes :class:`~pia.events.FearGreedUpdated` on ``market.fear_greed``:

- ``crypto``: alternative.me's newest daily value (``value`` and ``timestamp`` are strings on the wire);
  the label is the API's own (its bands differ from SEED-SPEC's), :func:`classify` only when it has none.
  ``ts_event`` is the API's timestamp (00:00 UTC of the day the value belongs to).
- ``stocks`` and ``metals``: :func:`vix_to_fear_greed` of the latest close in CBOE's daily VIX CSV,
  classified by :func:`classify`. ``ts_event`` is that trading day at 21:15 UTC (the 16:15 New York
  close, never earlier than it: 16:15 EST = 21:15 UTC, 16:15 EDT = 20:15 UTC).

An asset class is published only when its value or its date changed. Anything wrong (HTTP failure,
open circuit, malformed or empty data, a date going backwards or in the future) is counted by reason,
logged once per burst of consecutive failures (WARNING; INFO when the source recovers), and
publishes nothing; the loop never dies of bad data.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import orjson

from pia import topics
from pia.bus import Bus
from pia.clock import Clock
from pia.config import FearGreedConfig, HttpConfig
from pia.errors import BadData, FeedError
from pia.events import FearGreedUpdated
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import CircuitOpen, HttpClient, HttpStatusError, Source, SourceBanned
from pia.intervals import DAY, HOUR, MINUTE, NS

log = logging.getLogger(__name__)

CRYPTO_SOURCE = "alternative_me"
VIX_SOURCE = "cboe_vix"
VIX_CLOSE_OFFSET_NS = 21 * HOUR + 15 * MINUTE  # 16:15 EST in UTC; at or after the close all year
FUTURE_TOLERANCE_NS = DAY  # a date later than now + this is refused
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")


# ------------------------------------------------------------------------------------------ pure rules
def vix_to_fear_greed(vix: float) -> float:
    """SEED-SPEC §2.2: the piecewise-linear map from the VIX to a 0–100 fear & greed index.

    VIX ≥ 40 -> 5; 30–40 -> 5 + (40 − VIX)·1.5; 20–30 -> 20 + (30 − VIX)·3; 15–20 -> 50 + (20 − VIX)·6;
    below 15 -> 80 + (15 − VIX)·4; clamped to [0, 100]. Continuous at every boundary.
    """
    if not math.isfinite(vix):
        raise ValueError(f"VIX must be finite, got {vix!r}")
    if vix >= 40:
        value = 5.0
    elif vix >= 30:
        value = 5 + (40 - vix) * 1.5
    elif vix >= 20:
        value = 20 + (30 - vix) * 3
    elif vix >= 15:
        value = 50 + (20 - vix) * 6
    else:
        value = 80 + (15 - vix) * 4
    return min(100.0, max(0.0, value))


def classify(value: float) -> str:
    """SEED-SPEC §2.2 classes: ≤20 Extreme Fear, ≤40 Fear, ≤60 Neutral, ≤80 Greed, otherwise Extreme Greed."""
    if value <= 20:
        return "Extreme Fear"
    if value <= 40:
        return "Fear"
    if value <= 60:
        return "Neutral"
    if value <= 80:
        return "Greed"
    return "Extreme Greed"


# ------------------------------------------------------------------------------------------ parsing
def parse_fng(payload: Any) -> tuple[int, str, int]:
    """alternative.me ``/fng/`` JSON -> (value 0..100, label, ts_event ns) of the newest entry, or BadData."""
    if not isinstance(payload, dict):
        raise BadData("bad_shape", f"expected an object, got {type(payload).__name__}")
    metadata = payload.get("metadata")
    error = metadata.get("error") if isinstance(metadata, dict) else None
    if error:
        raise BadData("api_error", str(error)[:200])
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise BadData("empty", "no data entries")
    newest = data[0]
    if not isinstance(newest, dict):
        raise BadData("bad_shape", "data[0] is not an object")
    value = _int_field(newest, "value", "bad_value")
    if not 0 <= value <= 100:
        raise BadData("bad_value", f"value {value} outside 0..100")
    ts_s = _int_field(newest, "timestamp", "bad_timestamp")
    label = newest.get("value_classification")
    classification = label.strip() if isinstance(label, str) and label.strip() else classify(value)
    return value, classification, ts_s * NS


def _int_field(entry: Mapping[str, Any], key: str, reason: str) -> int:
    raw = entry.get(key)
    if isinstance(raw, bool):
        raise BadData(reason, f"{key}={raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    raise BadData(reason, f"{key}={raw!r}")


def parse_vix_csv(text: str) -> tuple[date, float]:
    """CBOE's ``DATE,OPEN,HIGH,LOW,CLOSE`` history -> (date, close) of its last row, or BadData."""
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise BadData("empty", "empty body")
    header = [h.strip().upper() for h in lines[0].split(",")]
    if "DATE" not in header or "CLOSE" not in header:
        raise BadData("bad_header", lines[0][:80])
    if len(lines) < 2:
        raise BadData("empty", "header only")
    cells = [c.strip() for c in lines[-1].split(",")]
    if len(cells) != len(header):
        raise BadData("bad_row", lines[-1][:80])
    try:
        day = datetime.strptime(cells[header.index("DATE")], "%m/%d/%Y").date()
    except ValueError as exc:
        raise BadData("bad_date", lines[-1][:80]) from exc
    try:
        close = float(cells[header.index("CLOSE")])
    except ValueError as exc:
        raise BadData("bad_close", lines[-1][:80]) from exc
    if not (math.isfinite(close) and close > 0):
        raise BadData("bad_close", lines[-1][:80])
    return day, close


def day_start_ns(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * NS


# ------------------------------------------------------------------------------------------ plumbing
class FailureLog:
    """One source's failures: counted by reason; the first of each burst logged (WARNING), the recovery (INFO)."""

    def __init__(self, logger: logging.Logger, source: str) -> None:
        self._log = logger
        self.source = source
        self.counts: Counter[str] = Counter()
        self.consecutive = 0
        self.last_error = ""

    def failure(self, reason: str, error: str) -> None:
        self.counts[reason] += 1
        self.consecutive += 1
        self.last_error = error
        if self.consecutive == 1:
            self._log.warning(
                "source unavailable; nothing published (further failures counted silently until it recovers)",
                extra={"source": self.source, "reason": reason, "error": error},
            )

    def success(self) -> None:
        if self.consecutive:
            self._log.info("source recovered", extra={"source": self.source, "failures": self.consecutive})
        self.consecutive = 0

    def statistics(self) -> dict[str, Any]:
        return {"failures": dict(self.counts), "consecutive_failures": self.consecutive, "last_error": self.last_error}


def failure_reason(exc: FeedError) -> str:
    """The counter key for an error from :class:`HttpClient` (BadData carries its own reason)."""
    if isinstance(exc, BadData):
        return exc.reason
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, SourceBanned):
        return "banned"
    if isinstance(exc, HttpStatusError):
        return f"http_{exc.status}"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, orjson.JSONDecodeError | UnicodeDecodeError):
            return "malformed"
        if isinstance(cause, TimeoutError):
            return "timeout"
        if isinstance(cause, aiohttp.ClientError):
            return "connection_error"
        cause = cause.__cause__
    status = _HTTP_STATUS.search(str(exc))
    return f"http_{status.group(1)}" if status else "fetch_failed"


def make_source(name: str, clock: Clock, http_config: HttpConfig) -> Source:
    breaker = CircuitBreaker(
        name,
        clock,
        failure_threshold=http_config.breaker_failures,
        reset_seconds=http_config.breaker_reset_seconds,
    )
    return Source(name, breaker)


async def get_text(http: HttpClient, source: Source, url: str, params: Mapping[str, str | int] | None = None) -> str:
    """GET ``url`` as UTF-8 text under the client's rules (see :meth:`HttpClient.get_text`)."""
    return await http.get_text(source, url, params)


# ------------------------------------------------------------------------------------------ the feed
class FearGreedFeed:
    name = "fear_greed"

    def __init__(
        self,
        config: FearGreedConfig,
        http: HttpClient,
        bus: Bus,
        clock: Clock,
        *,
        http_config: HttpConfig | None = None,
        retry_seconds: float = 60.0,
    ) -> None:
        self._config = config
        self._http = http
        self._bus = bus
        self._clock = clock
        self._topic = topics.fear_greed()
        self._retry = min(retry_seconds, config.poll_seconds)
        hc = http_config or HttpConfig()
        self._crypto = make_source(CRYPTO_SOURCE, clock, hc)
        self._vix = make_source(VIX_SOURCE, clock, hc)
        self._failures = {name: FailureLog(log, name) for name in (CRYPTO_SOURCE, VIX_SOURCE)}
        self._latest: dict[str, FearGreedUpdated] = {}
        self.polls = 0
        self.published: Counter[str] = Counter()
        self.unchanged = 0

    async def run(self) -> None:
        """Poll until cancelled: every ``poll_seconds``, or ``retry_seconds`` after a poll with a failure."""
        if not self._config.enabled:
            log.info("fear & greed feed disabled")
            return
        while True:
            await self.poll_once()
            failed = any(f.consecutive for f in self._failures.values())
            await self._clock.sleep(self._retry if failed else self._config.poll_seconds)

    async def poll_once(self) -> list[FearGreedUpdated]:
        """Fetch both sources once; publish and return what changed."""
        self.polls += 1
        return [*await self._poll_crypto(), *await self._poll_vix()]

    async def _poll_crypto(self) -> list[FearGreedUpdated]:
        failures = self._failures[CRYPTO_SOURCE]
        try:
            payload = await self._http.get_json(self._crypto, self._config.crypto_url, {"limit": 1, "format": "json"})
            value, label, ts_event = parse_fng(payload)
            self._check_date("crypto", ts_event)
        except FeedError as exc:
            failures.failure(failure_reason(exc), str(exc))
            return []
        failures.success()
        event = self._emit("crypto", float(value), label, ts_event, CRYPTO_SOURCE, None)
        return [event] if event else []

    async def _poll_vix(self) -> list[FearGreedUpdated]:
        failures = self._failures[VIX_SOURCE]
        try:
            day, vix = parse_vix_csv(await get_text(self._http, self._vix, self._config.vix_url))
            ts_event = day_start_ns(day) + VIX_CLOSE_OFFSET_NS
            for asset_class in ("stocks", "metals"):
                self._check_date(asset_class, ts_event)
        except FeedError as exc:
            failures.failure(failure_reason(exc), str(exc))
            return []
        failures.success()
        value = vix_to_fear_greed(vix)
        out = []
        for asset_class in ("stocks", "metals"):
            event = self._emit(asset_class, value, classify(value), ts_event, VIX_SOURCE, vix)
            if event:
                out.append(event)
        return out

    def _check_date(self, asset_class: str, ts_event: int) -> None:
        if ts_event > self._clock.now_ns() + FUTURE_TOLERANCE_NS:
            raise BadData("future_date", f"{asset_class}: {datetime.fromtimestamp(ts_event / NS, UTC):%Y-%m-%d}")
        prev = self._latest.get(asset_class)
        if prev is not None and ts_event < prev.ts_event:
            raise BadData("out_of_order", f"{asset_class}: older than the value already published")

    def _emit(
        self, asset_class: str, value: float, label: str, ts_event: int, source: str, vix: float | None
    ) -> FearGreedUpdated | None:
        prev = self._latest.get(asset_class)
        if prev is not None and prev.value == value and prev.ts_event == ts_event:
            self.unchanged += 1
            return None
        event = FearGreedUpdated(
            ts_event=ts_event,
            ts_recv=self._clock.now_ns(),
            asset_class=asset_class,
            value=value,
            classification=label,
            source=source,
            vix=vix,
        )
        self._latest[asset_class] = event
        self.published[asset_class] += 1
        self._bus.publish_nowait(self._topic, event)
        return event

    def latest(self, asset_class: str) -> FearGreedUpdated | None:
        """The last reading published for ``asset_class`` ("crypto", "stocks", "metals"), if any."""
        return self._latest.get(asset_class)

    def statistics(self) -> dict[str, Any]:
        return {
            "polls": self.polls,
            "published": dict(self.published),
            "unchanged": self.unchanged,
            "latest": {
                ac: {"value": e.value, "classification": e.classification, "vix": e.vix, "ts_event": e.ts_event}
                for ac, e in self._latest.items()
            },
            "sources": {
                src.name: {**self._failures[src.name].statistics(), "http": src.statistics()}
                for src in (self._crypto, self._vix)
            },
        }
