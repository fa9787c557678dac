"""A fake Binance (spot + USD-M futures) on 127.0.0.1 that speaks the real protocol, with fault knobs.

Two HTTP servers on ephemeral ports, like Binance's two hosts: ``spot_url`` serves ``/api/v3/klines``
(and ``uiKlines``, ``ping``, ``time``) and the spot websockets ``/ws``, ``/ws/<a>/<b>``,
``/stream?streams=a/b``; ``futures_url`` serves ``/fapi/v1/klines``, ``premiumIndex``, ``fundingRate``
and the routed websockets ``/market/...`` (the unrouted ``/ws`` and ``/stream`` and ``/public/...``
accept connections but, as on Binance since 2026, deliver no kline or mark-price data).

Market data is real recorded one-minute candles per venue symbol; higher intervals are aggregated
with :func:`pia.feeds.aggregate.aggregate` (epoch-aligned; ``1s`` is not offered). A virtual ``now``
moves only when :meth:`FakeBinance.advance` is called: each step closes one minute and streams, per
subscribed ``<symbol>@kline_<interval>``, forming updates (``x:false``) and the closing message
(``x:true``) of every candle that closed, wrapped as ``{"stream","data"}`` on combined connections.
REST follows Binance's selection rules (no times: the newest; ``startTime``: oldest from it;
``endTime``: newest up to it; both: from start, not past end), includes the candle still forming,
checks parameters with Binance's error bodies and limits (1000 spot / 1500 futures) and sends
``X-MBX-USED-WEIGHT-1M``. Server pings every ``ping_interval`` s; no pong within ``pong_timeout`` s
closes the socket; more than 5 (spot) / 10 (futures) incoming frames a second closes it too.

Faults (each applies to what happens next): :meth:`drop_connection_after`, :meth:`send_malformed`,
:meth:`send_duplicates`, :meth:`send_out_of_order`, :meth:`fail_rest`, :meth:`truncate_rest`,
:meth:`stall`, :meth:`send_server_shutdown`. What was served: :attr:`rest_calls`, :attr:`sent` (frames
by kind), :attr:`closed_sent`, :attr:`connections_opened`; the truth: ``fake.market.closed(...)``.
The market data model and the contract harness live in :mod:`pia.testing.harness_binance`.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from pia.feeds.binance_wire import MAX_STREAMS, MS, Market, kline_event
from pia.intervals import MINUTE, parse_interval
from pia.testing.harness_binance import ApiError, BinanceHarness, BinanceMarket, parse_stream
from pia.testing.waiting import wait_until

__all__ = ["BinanceHarness", "BinanceMarket", "FakeBinance", "RestCall"]

_MARKET = web.AppKey("market", str)  # "spot" | "futures"
_MAX_INCOMING = {"spot": 5, "futures": 10}
_ERRORS = {
    429: (-1003, "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
          "Please use WebSocket Streams for live updates to avoid polling the API."),
    418: (-1003, "Way too much request weight used; IP banned until {until}. "
          "Please use WebSocket Streams for live updates to avoid bans."),
    500: (-1000, "An unknown error occurred while processing the request."),
    503: (-1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RestCall:
    market: str
    path: str
    params: dict[str, str]
    status: int


@dataclass(eq=False)
class _Conn:
    market: Market
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    combined: bool
    routed: bool
    streams: list[str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stalled_until: float = 0.0
    last_pong: float = 0.0
    drop_after: int | None = None
    dead: bool = False
    incoming: deque[float] = field(default_factory=deque)


class FakeBinance:
    """The fake Binance servers over a :class:`BinanceMarket`. ``async with FakeBinance(market) as fake``."""

    def __init__(
        self,
        market: BinanceMarket,
        *,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        max_incoming_per_second: Mapping[str, int] | None = None,
    ) -> None:
        self.market = market
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self._max_incoming = dict(_MAX_INCOMING, **(max_incoming_per_second or {}))
        self._conns: list[_Conn] = []
        self._changed = asyncio.Event()
        self._runners: dict[Market, web.AppRunner] = {}
        self.urls: dict[Market, str] = {}
        self._weights: deque[tuple[float, int]] = deque()
        self._rest_faults: deque[list[Any]] = deque()
        self._truncate = 0
        self._pending_drop: int | None = None
        self._malformed = False
        self._duplicates = False
        self._out_of_order = False
        self._held: dict[tuple[int, str], bytes] = {}
        self._recent: dict[str, deque[dict[str, Any]]] = {}
        self.rest_calls: list[RestCall] = []
        self.sent: Counter[str] = Counter()
        self.closed_sent: dict[tuple[str, str, str], list[int]] = {}
        self.connections_opened = 0

    @property
    def now_ns(self) -> int:
        return self.market.now_ns

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeBinance:
        for market in ("spot", "futures"):
            app = web.Application()
            app[_MARKET] = market
            app.router.add_get("/{tail:.*}", self._dispatch)
            runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self._runners[market] = runner
            self.urls[market] = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        for conn in list(self._conns):
            self._abort(conn)
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def rest_url(self, market: Market) -> str:
        return self.urls[market]

    def ws_url(self, market: Market) -> str:
        return "ws" + self.urls[market][4:]

    # ------------------------------------------------------------------------------ time
    async def advance(self, steps: int = 1) -> None:
        """Move the virtual now ``steps`` minutes, streaming what each minute forms and closes."""
        if self._duplicates:
            for conn in self._live_conns():
                await self._replay(conn)
        for _ in range(steps):
            old = self.market.now_ns
            self.market.now_ns = new = old + MINUTE
            conns = self._live_conns()
            if self._malformed and conns:
                self._malformed = False
                for conn in conns:
                    await self._send_malformed(conn)
            for conn in conns:
                for stream in list(conn.streams) if conn.routed else []:
                    for kind, event in self.market.step_events(conn.market, stream, old, new):
                        await self._emit(conn, stream, kind, event)
            await asyncio.sleep(0)
        for conn in self._live_conns():
            for stream in list(conn.streams):
                held = self._held.pop((id(conn), stream), None)
                if held is not None:
                    await self._send(conn, held, "closed")
        self._held.clear()
        self._duplicates = self._out_of_order = False

    # ------------------------------------------------------------------------------ faults
    def drop_connection_after(self, messages: int) -> None:
        """Abort every open stream connection (or the next one) after ``messages`` more kline messages."""
        conns = self._live_conns()
        for conn in conns:
            conn.drop_after = messages
        self._pending_drop = None if conns else messages

    def send_malformed(self) -> None:
        """At the next step, send every connection a burst of bad frames (one per kind of badness)."""
        self._malformed = True

    def send_duplicates(self) -> None:
        """During the next :meth:`advance`: each closing message twice, the last few re-sent first and to
        every connection opened meanwhile (duplicates across reconnects)."""
        self._duplicates = True

    def send_out_of_order(self) -> None:
        """During the next :meth:`advance`: each stream's closing messages are swapped in pairs."""
        self._out_of_order = True

    def fail_rest(self, status: int, times: int, retry_after: float | None = None) -> None:
        """Answer the next ``times`` REST calls with ``status`` (queued after earlier failures)."""
        self._rest_faults.append([status, times, retry_after])

    def truncate_rest(self, times: int) -> None:
        """Cut the body of the next ``times`` successful REST answers in half."""
        self._truncate += times

    def stall(self, seconds: float) -> None:
        """Open connections go silent for ``seconds``: no data (it is lost), no pings, no pongs, no close."""
        until = asyncio.get_running_loop().time() + seconds
        for conn in self._live_conns():
            conn.stalled_until = until

    async def send_server_shutdown(self) -> None:
        """Send ``serverShutdown`` on every connection, then close it (going away)."""
        for conn in self._live_conns():
            event = {"e": "serverShutdown", "E": self.now_ns // MS}
            await self._send(conn, _wrap(conn, "!serverShutdown", event), "shutdown")
            conn.dead = True
            await conn.ws.close(code=WSCloseCode.GOING_AWAY)
        self._changed.set()

    # ------------------------------------------------------------------------------ connections
    def open_connections(self, market: Market | None = None) -> int:
        return len([c for c in self._live_conns() if market is None or c.market == market])

    async def wait_for_connection(self, market: Market | None = None, within: float = 5.0) -> bool:
        """Until a stream connection (not stalled) is open; False on timeout."""
        return await wait_until(
            self._changed,
            lambda: any(not _stalled(c) for c in self._live_conns() if market is None or c.market == market),
            within,
        )

    def _live_conns(self) -> list[_Conn]:
        return [c for c in self._conns if not c.dead]

    def _abort(self, conn: _Conn) -> None:
        conn.dead = True
        if conn.transport is not None:
            conn.transport.abort()
        self._changed.set()

    async def _emit(self, conn: _Conn, stream: str, kind: str, event: dict[str, Any]) -> None:
        frame = _wrap(conn, stream, event)
        if kind != "closed":
            await self._send(conn, frame, kind)
            return
        self._recent.setdefault(stream, deque(maxlen=3)).append(event)
        key = (conn.market, event["s"], event["k"]["i"])
        self.closed_sent.setdefault(key, []).append(event["k"]["t"] * MS)
        if self._out_of_order:
            hold_key = (id(conn), stream)
            held = self._held.pop(hold_key, None)
            if held is None:
                self._held[hold_key] = frame
                return
            await self._send(conn, frame, kind)
            frame = held
        await self._send(conn, frame, kind)
        if self._duplicates:
            await self._send(conn, frame, "duplicate")

    async def _replay(self, conn: _Conn) -> None:
        for stream in conn.streams:
            for event in self._recent.get(stream, ()):
                await self._send(conn, _wrap(conn, stream, event), "duplicate")

    async def _send(self, conn: _Conn, frame: bytes, kind: str, *, text: bool = True) -> None:
        if conn.dead or conn.ws.closed or _stalled(conn):
            self.sent["lost"] += 1
            return
        try:
            async with conn.lock:
                await conn.ws.send_frame(frame, WSMsgType.TEXT if text else WSMsgType.BINARY)
        except (ConnectionError, RuntimeError):
            self._abort(conn)
            return
        self.sent[kind] += 1
        if kind in ("closed", "forming", "duplicate") and conn.drop_after is not None:
            conn.drop_after -= 1
            if conn.drop_after <= 0:
                self._abort(conn)

    async def _send_malformed(self, conn: _Conn) -> None:
        stream = conn.streams[0] if conn.streams else "btcusdt@kline_1m"
        parsed = parse_stream(stream) or ("BTCUSDT", "1m")
        symbol, interval = parsed[0], parsed[1] if parsed[1] != "markPrice" else "1m"
        t = parse_interval(interval).floor(self.now_ns)
        good = kline_event(symbol, interval, (t, 10.0, 12.0, 9.0, 11.0, 1.0), closed=True, event_ms=self.now_ns // MS)

        def bad(**changes: Any) -> bytes:
            event = orjson.loads(orjson.dumps(good))
            for name, value in changes.items():
                if value is None:
                    del event["k"][name]
                else:
                    event["k"][name] = value
            return _wrap(conn, stream, event)

        frames = [
            b'{"stream":"' + stream.encode() + b'","data":{"e":"kline","k":{"t":',  # invalid JSON (truncated)
            bad(c=None),  # missing field
            bad(o="NaN"),
            bad(h="Infinity"),
            bad(l="-1.0"),
            bad(c="0"),
            bad(o="abc"),
            bad(h="8.0"),  # high < low
            bad(o="13.0"),  # open above high
            bad(s="FOOUSDT"),  # unknown symbol
            bad(t=t + 1234),  # misaligned
            b'{"stream":"' + stream.encode() + b'","data":{"e":"kline","s":"\xff\xfe"}}',  # not UTF-8
            _wrap(conn, stream, {**good, "pad": "x" * 100_000}),  # oversized
            b"[1,2,3]",
            _wrap(conn, stream, {"e": "bogusEvent", "E": 1}),
        ]
        for frame in frames:
            await self._send(conn, frame, "malformed")

    # ------------------------------------------------------------------------------ HTTP
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        market: Market = "spot" if request.app[_MARKET] == "spot" else "futures"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, market)
        if not self.market.serves(market, request.path):
            return web.json_response({"code": -1, "msg": "Unknown path."}, status=404)
        params = dict(request.query)
        status, body, weight, extra = self._fault()
        if status == 0:
            try:
                payload, weight = self.market.rest(market, request.path, params)
                body = orjson.dumps(payload)
                status = 200
                if self._truncate:
                    self._truncate -= 1
                    body = body[: len(body) // 2]
            except ApiError as exc:
                status, body = 400, orjson.dumps({"code": exc.code, "msg": exc.msg})
        self.rest_calls.append(RestCall(market, request.path, params, status))
        used = self._use_weight(weight)
        headers = {"X-MBX-USED-WEIGHT-1M": str(used if status != 429 else max(used, 6001)), **extra}
        return web.Response(body=body, status=status, content_type="application/json", headers=headers)

    def _fault(self) -> tuple[int, bytes, int, dict[str, str]]:
        if not self._rest_faults:
            return 0, b"", 0, {}
        fault = self._rest_faults[0]
        status, retry_after = int(fault[0]), fault[2]
        fault[1] -= 1
        if fault[1] <= 0:
            self._rest_faults.popleft()
        code, msg = _ERRORS.get(status, (-1100 if status < 500 else -1000, "Injected failure."))
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        until = self.now_ns // MS + int((retry_after or 120) * 1000)
        return status, orjson.dumps({"code": code, "msg": msg.format(until=until)}), 1, headers

    def _use_weight(self, weight: int) -> int:
        now = asyncio.get_running_loop().time()
        self._weights.append((now, weight))
        while self._weights and self._weights[0][0] < now - 60:
            self._weights.popleft()
        return sum(w for _, w in self._weights)

    # ------------------------------------------------------------------------------ websocket
    async def _websocket(self, request: web.Request, market: Market) -> web.StreamResponse:
        route = _ws_route(market, request.path, request.query.get("streams", ""))
        if route is None:
            return web.json_response({"code": -1, "msg": "Unknown path."}, status=404)
        combined, routed, streams = route
        if len(streams) > MAX_STREAMS[market]:
            return web.json_response({"code": -1, "msg": "Too many streams."}, status=400)
        ws = web.WebSocketResponse(autoping=False, autoclose=False, timeout=1.0, max_msg_size=1 << 16)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        conn = _Conn(market, ws, request.transport, combined, routed, list(dict.fromkeys(streams)))
        conn.last_pong = loop.time()
        conn.drop_after, self._pending_drop = self._pending_drop, None
        self._conns.append(conn)
        self.connections_opened += 1
        self._changed.set()
        pinger = asyncio.create_task(self._pinger(conn))
        try:
            if self._duplicates:
                await self._replay(conn)
            await self._read(conn, loop)
        finally:
            pinger.cancel()
            await asyncio.gather(pinger, return_exceptions=True)
            conn.dead = True
            self._conns.remove(conn)
            self._changed.set()
        return ws

    async def _read(self, conn: _Conn, loop: asyncio.AbstractEventLoop) -> None:
        ws = conn.ws
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                return
            if msg.type is WSMsgType.CLOSE:
                if not _stalled(conn):
                    await ws.close()
                    return
                continue
            now = loop.time()
            conn.incoming.append(now)
            while conn.incoming and conn.incoming[0] < now - 1.0:
                conn.incoming.popleft()
            if len(conn.incoming) > self._max_incoming[conn.market]:
                conn.dead = True
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"Too many messages")
                return
            if _stalled(conn):
                continue
            if msg.type is WSMsgType.PING:
                async with conn.lock:
                    await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                conn.last_pong = now
            elif msg.type is WSMsgType.TEXT:
                reply = _control(conn, msg.data)
                await self._send(conn, orjson.dumps(reply), "control")

    async def _pinger(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        while not conn.dead:
            await asyncio.sleep(self.ping_interval)
            if _stalled(conn) or conn.ws.closed:
                continue
            if loop.time() - conn.last_pong > self.pong_timeout:
                self._abort(conn)
                return
            try:
                async with conn.lock:
                    await conn.ws.ping(str(self.now_ns // MS).encode())
            except (ConnectionError, RuntimeError):
                return


# ---------------------------------------------------------------------------------- helpers
def _stalled(conn: _Conn) -> bool:
    return conn.stalled_until > 0 and asyncio.get_running_loop().time() < conn.stalled_until


def _wrap(conn: _Conn, stream: str, event: dict[str, Any]) -> bytes:
    return orjson.dumps({"stream": stream, "data": event} if conn.combined else event)


def _ws_route(market: Market, path: str, streams_q: str) -> tuple[bool, bool, list[str]] | None:
    routed = market == "spot"
    if market == "futures":
        for prefix in ("/market", "/public"):
            if path.startswith(prefix + "/"):
                routed, path = prefix == "/market", path[len(prefix) :]
                break
    if path == "/stream":
        return True, routed, [s for s in streams_q.split("/") if s]
    if path == "/ws":
        return False, routed, []
    if path.startswith("/ws/"):
        return False, routed, [s for s in path[4:].split("/") if s]
    return None


def _control(conn: _Conn, text: str) -> dict[str, Any]:
    """A reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / SET_PROPERTY / GET_PROPERTY."""
    try:
        req = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"}
    if not isinstance(req, dict) or "method" not in req:
        return {"code": 2, "msg": f"Invalid request: missing field `method` at line 1 column {len(text)}"}
    rid, method, params = req.get("id"), req["method"], req.get("params", [])
    if not (rid is None or type(rid) is int or (isinstance(rid, str) and len(rid) <= 36)):
        return {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return {"code": 1, "msg": "Invalid value type: expected array of strings", "id": rid}
        if method == "SUBSCRIBE":
            if len(set(conn.streams) | set(params)) > MAX_STREAMS[conn.market]:
                return {"code": 2, "msg": "Invalid request: too many parameters", "id": rid}
            conn.streams.extend(p for p in params if p not in conn.streams)
        else:
            conn.streams[:] = [s for s in conn.streams if s not in params]
        return {"result": None, "id": rid}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(conn.streams), "id": rid}
    if method in ("SET_PROPERTY", "GET_PROPERTY"):
        if not isinstance(params, list) or not params or not isinstance(params[0], str):
            return {"code": 2, "msg": "Invalid request: property name must be a string", "id": rid}
        if params[0] != "combined":
            return {"code": 0, "msg": "Unknown property", "id": rid}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": rid}
        if len(params) != 2 or not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
        conn.combined = params[1]
        return {"result": None, "id": rid}
    return {
        "code": 2,
        "msg": f"Invalid request: unknown variant {method}, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
        "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY` at line 1 column 28",
    }
