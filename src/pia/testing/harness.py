"""What a fake venue offers the shared feed contract suite (``tests/contract``).

Each venue ships a fake server speaking its real protocol on 127.0.0.1 and a harness implementing
:class:`FeedHarness` around it. The contract suite drives every harness the same way: start the
fake, build the real feed pointed at it (by config: base URLs), take history, advance the fake's
virtual time so candles close and stream, inject faults, and compare the closed-bar sequence the
feed yields with the fake's source data: nothing missing, nothing twice, nothing malformed.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pia.clock import Clock
from pia.feeds.base import BarArray
from pia.feeds.live import LiveFeed


class FeedHarness(Protocol):
    name: str
    symbols: tuple[str, ...]  # pia instrument symbols the fake serves
    intervals: tuple[str, ...]  # candle intervals the feed streams

    def running(self) -> AbstractAsyncContextManager[FeedHarness]:
        """Start the fake server(s) on 127.0.0.1 ephemeral ports; stop them on exit."""
        ...

    def make_feed(self, clock: Clock) -> LiveFeed:
        """The real feed, configured only by base URLs to talk to the fake (small backoff for tests)."""
        ...

    def expected(self, symbol: str, interval: str) -> BarArray:
        """The closed candles the fake has published so far (its virtual now): the truth."""
        ...

    async def advance(self, steps: int) -> None:
        """Move the fake's virtual time forward ``steps`` base candles: streams the updates (forming
        and closing messages) to connected clients, in the real message format."""
        ...

    # ---- faults (each applies to what happens next) ----
    def drop_connection_after(self, messages: int) -> None:
        """Abruptly close every stream connection after ``messages`` more data messages."""
        ...

    def send_malformed(self) -> None:
        """Next, send a burst of bad frames: invalid JSON, missing fields, NaN/negative prices,
        high < low, unknown symbol, non-UTF-8 bytes (each must be dropped, none may crash the feed)."""
        ...

    def send_duplicates(self) -> None:
        """Repeat each closed-candle message that follows (and re-send a few older ones)."""
        ...

    def fail_rest(self, status: int, times: int, retry_after: float | None = None) -> None:
        """Answer the next ``times`` REST calls with ``status`` (429/418/500 ...)."""
        ...

    def stall(self, seconds: float) -> None:
        """Stop sending anything (no data, no pings/pongs) on open streams for ``seconds``."""
        ...
