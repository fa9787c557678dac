"""Wiring of the live feeds (``feed.kind = "live"``): one aiohttp session for the whole service,
one feed per venue (Binance spot, Binance USD-M futures, Alpaca), and the pollers that are not bar
feeds (funding, Fear & Greed, FX). Called by the app once the event loop runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp

from pia.bus import Bus
from pia.clock import Clock
from pia.config import Settings
from pia.feeds.breaker import CircuitBreaker
from pia.feeds.http import HttpClient, Source
from pia.feeds.runner import FeedRunner

log = logging.getLogger(__name__)


class Service(Protocol):
    """A producer that is not a bar feed (a poller): runs until cancelled."""

    name: str

    async def run(self) -> None: ...

    def statistics(self) -> Any: ...


def http_client(settings: Settings, session: aiohttp.ClientSession, clock: Clock) -> HttpClient:
    http = settings.config.feed.live.http
    return HttpClient(
        session, clock, retries=http.retries, backoff_seconds=http.backoff_seconds, timeout_seconds=http.timeout_seconds
    )


def new_source(settings: Settings, name: str, clock: Clock) -> Source:
    http = settings.config.feed.live.http
    breaker = CircuitBreaker(
        name, clock, failure_threshold=http.breaker_failures, reset_seconds=http.breaker_reset_seconds
    )
    return Source(name, breaker)


def build_live(
    settings: Settings, bus: Bus, clock: Clock, session: aiohttp.ClientSession
) -> tuple[list[FeedRunner], list[Service]]:
    """The live feed runners and pollers for ``settings`` (nothing runs until the app starts them)."""
    from pia.feeds.alpaca import build_alpaca_feed
    from pia.feeds.binance import FundingFeed, build_binance_feeds
    from pia.feeds.fear_greed import FearGreedFeed
    from pia.feeds.fx import FxFeed

    live = settings.config.feed.live
    instruments = settings.universe.instruments
    intervals = [t.interval for t in settings.universe.timeframes]
    http = http_client(settings, session, clock)
    runners: list[FeedRunner] = []
    services: list[Service] = []
    feeds: list[Any] = []
    if live.binance.enabled:
        feeds += build_binance_feeds(live, instruments, intervals, session, clock)
        funding = [s for s in live.binance.funding_symbols if any(i.symbol == s for i in instruments)]
        if funding:
            services.append(
                FundingFeed(live, instruments, http, new_source(settings, "binance_funding", clock), bus, clock)
            )
    if live.alpaca.enabled:
        alpaca = build_alpaca_feed(live, settings.secrets, instruments, intervals, session, clock)
        if alpaca is not None:
            feeds.append(alpaca)
    for feed in feeds:
        # the venue sources check alignment (venue anchors) and future bars themselves
        runners.append(FeedRunner(feed, bus, clock, intervals, venue_anchored=True))
    if live.fear_greed.enabled:
        services.append(FearGreedFeed(live.fear_greed, http, bus, clock, http_config=live.http))
    if live.fx.enabled:
        services.append(FxFeed(live.fx, http, bus, clock, http_config=live.http))
    _log_plan(runners, services, instruments)
    return runners, services


def _log_plan(runners: Sequence[FeedRunner], services: Sequence[Service], instruments: Sequence[Any]) -> None:
    covered = {i.symbol for r in runners for i in r.feed.instruments}
    missing = [i.symbol for i in instruments if i.symbol not in covered]
    log.info(
        "live feeds",
        extra={
            "feeds": [r.name for r in runners],
            "services": [s.name for s in services],
            "instruments_covered": len(covered),
            "instruments_without_feed": missing,
        },
    )
