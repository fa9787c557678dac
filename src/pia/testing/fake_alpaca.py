"""A fake Alpaca Market Data v2 server on 127.0.0.1 that speaks the real protocol, with fault knobs.

One HTTP server on an ephemeral port serves:

- ``GET /v2/stocks/bars`` (and ``/v2/stocks/{symbol}/bars``): ``timeframe`` ``<n>Min``/``T``,
  ``<n>Hour``/``H`` (epoch-aligned buckets of the minute bars, the one forming included, as Alpaca does),
  ``1Day``/``D`` (midnight New York, extended hours included); ``start``/``end`` (inclusive, RFC-3339),
  ``limit`` 1..10000 counted across symbols, ``page_token``, results ordered by symbol then time, so a
  page may end inside a symbol. Auth headers ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY`` are checked
  (401 missing, 403 wrong; bodies ``{"message": ...}``); every answer carries ``X-Ratelimit-*``.
  Recorded cassettes (``recordings=``) are replayed page by page for requests with their symbols and
  timeframe.
- ``GET /v2/{iex|sip|delayed_sip|test}`` websocket: ``[{"T":"success","msg":"connected"}]``; ``auth`` ->
  ``authenticated`` or ``402 auth failed`` (then closed); a second open connection gets ``406
  connection limit exceeded`` and is closed; ``subscribe``/``unsubscribe`` answered with the full
  subscription set; ``401`` before auth, ``403`` auth twice, ``400`` bad syntax; data as JSON text
  frames of ``b`` (minute bar) and ``u`` (updated bar) arrays, one frame per publish instant.

A virtual ``now`` (:class:`~pia.testing.harness_alpaca.AlpacaMarket`) moves only in :meth:`advance`.
Faults (each applies to what happens next): :meth:`drop_connection_after`, :meth:`send_malformed`,
:meth:`send_duplicates`, :meth:`fail_rest`, :meth:`stall`, :meth:`send_error`, :meth:`send_raw`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from aiohttp import WSMsgType, web

from pia.errors import BadData
from pia.feeds.alpaca_wire import format_time, parse_time
from pia.intervals import DAY, MINUTE, NS
from pia.testing.harness_alpaca import AlpacaHarness, AlpacaMarket, bar_json, int_param, resample, timeframe_ns
from pia.testing.waiting import wait_until

__all__ = ["AlpacaHarness", "AlpacaMarket", "FakeAlpaca", "RestCall"]

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds", "corrections", "cancelErrors")
FEEDS = ("iex", "sip", "delayed_sip", "test")
_MESSAGES = {429: "too many requests", 500: "internal server error", 503: "service unavailable", 504: "gateway timeout"}


@dataclass(frozen=True, slots=True)
class RestCall:
    path: str
    params: dict[str, str]
    status: int


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    authenticated: bool = False
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stalled_until: float = 0.0
    drop_after: int | None = None
    dead: bool = False


class FakeAlpaca:
    """``async with FakeAlpaca(market, key_id=..., secret_key=...) as fake``: ``fake.url``, ``fake.ws_url``."""

    def __init__(
        self,
        market: AlpacaMarket,
        *,
        key_id: str,
        secret_key: str,
        recordings: tuple[Path, ...] = (),
        rate_limit: int = 200,
    ) -> None:
        self.market = market
        self._key, self._secret = key_id, secret_key
        self._rate_limit = rate_limit
        self._recorded: dict[tuple[str, str, str], tuple[str, dict[str, str]]] = {}
        for path in recordings:
            self._load_recording(path)
        self._conns: list[_Conn] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._rest_faults: deque[list[Any]] = deque()
        self._pending_drop: int | None = None
        self._malformed = False
        self._duplicates = False
        self._recent: deque[bytes] = deque(maxlen=3)
        self._used: deque[int] = deque()
        self.rest_calls: list[RestCall] = []
        self.sent: Counter[str] = Counter()
        self.connections_opened = 0
        self.auth_messages = 0

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:]

    @property
    def now_ns(self) -> int:
        return self.market.now_ns

    # ------------------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeAlpaca:
        app = web.Application()
        app.router.add_get("/v2/stocks/bars", self._bars)
        app.router.add_get("/v2/stocks/{symbol}/bars", self._bars)
        app.router.add_get("/v2/{feed}", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        for conn in list(self._conns):
            self._abort(conn)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAlpaca:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------ time
    async def advance(self, steps: int = 1) -> None:
        """Move the virtual now ``steps`` regular-session minutes, publishing every ``b``/``u`` on the way."""
        if self._duplicates:
            for conn in self._live():
                for frame in list(self._recent):
                    await self._send(conn, frame, "duplicate")
        for _ in range(steps):
            old, new = self.market.now_ns, self.market.next_step()
            events = self.market.events(old, new)
            self.market.now_ns = new
            if self._malformed:
                self._malformed = False
                for conn in self._live():
                    await self._send_malformed(conn)
            i = 0
            while i < len(events):
                j = i
                while j < len(events) and events[j][0] == events[i][0]:
                    j += 1
                for conn in self._live():
                    await self._publish(conn, events[i:j])
                i = j
            await asyncio.sleep(0)
        self._duplicates = False

    async def _publish(
        self, conn: _Conn, events: list[tuple[int, str, str, tuple[int, float, float, float, float, float]]]
    ) -> None:
        msgs = []
        for _, kind, sym, (t, o, h, lo, c, v) in events:
            if sym in conn.subs["bars" if kind == "b" else "updatedBars"] or "*" in conn.subs["bars"]:
                msgs.append({"T": kind, "S": sym, **bar_json(t, o, h, lo, c, v)})
        if not msgs:
            return
        frame = orjson.dumps(msgs)
        await self._send(conn, frame, "data")
        if self._duplicates:
            await self._send(conn, frame, "duplicate")
        self._recent.append(frame)

    # ------------------------------------------------------------------------------ faults
    def drop_connection_after(self, messages: int) -> None:
        """Abort every open stream connection (or the next one) after ``messages`` more data frames."""
        conns = self._live()
        for conn in conns:
            conn.drop_after = messages
        self._pending_drop = None if conns else messages

    def send_malformed(self) -> None:
        """At the next step, send every connection a burst of bad frames (one per kind of badness)."""
        self._malformed = True

    def send_duplicates(self) -> None:
        """During the next :meth:`advance`: each data frame twice, and the last 3 frames re-sent first."""
        self._duplicates = True

    def fail_rest(self, status: int, times: int, retry_after: float | None = None) -> None:
        """Answer the next ``times`` REST calls with ``status`` (queued after earlier failures)."""
        self._rest_faults.append([status, times, retry_after])

    def stall(self, seconds: float) -> None:
        """Open connections go silent for ``seconds``: no data (it is lost), no reading (no pongs)."""
        until = asyncio.get_running_loop().time() + seconds
        for conn in self._live():
            conn.stalled_until = until

    async def send_raw(self, frame: bytes) -> None:
        """Send ``frame`` as a text frame on every open connection (hand-made messages for tests)."""
        for conn in self._live():
            await self._send(conn, frame, "raw")

    async def send_error(self, code: int, msg: str, *, close: bool = True) -> None:
        """Send ``[{"T":"error",...}]`` on every connection (e.g. 407 slow client, 500), then close it."""
        for conn in self._live():
            await self._send(conn, orjson.dumps([{"T": "error", "code": code, "msg": msg}]), "error")
            if close:
                conn.dead = True
                await conn.ws.close()
        self._changed.set()

    # ------------------------------------------------------------------------------ connections
    def open_connections(self) -> int:
        return len(self._live())

    async def wait_for_connection(self, within: float = 5.0) -> bool:
        """Until an authenticated, subscribed stream connection (not stalled) is open; False on timeout."""
        loop = asyncio.get_running_loop()
        return await wait_until(
            self._changed,
            lambda: any(c.subs["bars"] and c.stalled_until <= loop.time() for c in self._live()),
            within,
        )

    def _live(self) -> list[_Conn]:
        return [c for c in self._conns if not c.dead]

    def _abort(self, conn: _Conn) -> None:
        conn.dead = True
        if conn.transport is not None:
            conn.transport.abort()
        self._changed.set()

    async def _send(self, conn: _Conn, frame: bytes, kind: str) -> None:
        if conn.dead or conn.ws.closed or conn.stalled_until > asyncio.get_running_loop().time():
            self.sent["lost"] += 1
            return
        try:
            async with conn.lock:
                await conn.ws.send_frame(frame, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError):
            self._abort(conn)
            return
        self.sent[kind] += 1
        if kind in ("data", "duplicate") and conn.drop_after is not None:
            conn.drop_after -= 1
            if conn.drop_after <= 0:
                self._abort(conn)

    async def _send_malformed(self, conn: _Conn) -> None:
        sym = sorted(conn.subs["bars"] or {"AAPL"})[0]
        t = format_time(self.now_ns - MINUTE)
        good = {"T": "b", "S": sym, "o": 10.0, "h": 12.0, "l": 9.0, "c": 11.0, "v": 100, "t": t, "n": 1, "vw": 10.5}
        frames = [
            b'[{"T":"b","S":"' + sym.encode() + b'","o":1',  # truncated JSON
            b'\xff\xfe[{"T":"b"}]',  # not UTF-8
            b'[{"T":"b","S":"' + sym.encode() + b'","o":NaN,"h":12,"l":9,"c":11,"v":1,"t":"' + t.encode() + b'"}]',
            b'"just a string"',
            orjson.dumps([{k: v for k, v in good.items() if k != "c"}]),  # missing field
            orjson.dumps([{**good, "o": -1.0}]),  # negative price
            orjson.dumps([{**good, "h": 8.0}]),  # high < low
            orjson.dumps([{**good, "S": "ZZZZ"}]),  # unknown symbol
            orjson.dumps([{**good, "t": "yesterday"}]),  # bad time
            orjson.dumps([{**good, "v": -5}]),  # negative volume
            orjson.dumps([17, {"no": "type"}]),  # not objects / no type
        ]
        for frame in frames:
            await self._send(conn, frame, "malformed")

    # ------------------------------------------------------------------------------ websocket
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["feed"] not in FEEDS:
            raise web.HTTPNotFound(text=json.dumps({"message": "not found"}), content_type="application/json")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections_opened += 1
        if self._live():
            await ws.send_str(json.dumps([{"T": "error", "code": 406, "msg": "connection limit exceeded"}]))
            await ws.close()
            return ws
        transport = request.transport
        conn = _Conn(ws, transport if isinstance(transport, asyncio.Transport) else None)
        if self._pending_drop is not None:
            conn.drop_after, self._pending_drop = self._pending_drop, None
        self._conns.append(conn)
        self._changed.set()
        try:
            await ws.send_str(json.dumps([{"T": "success", "msg": "connected"}]))
            loop = asyncio.get_running_loop()
            while not conn.dead:
                if conn.stalled_until > loop.time():
                    await asyncio.sleep(conn.stalled_until - loop.time())
                    continue
                msg = await ws.receive()
                if msg.type is not WSMsgType.TEXT:
                    break
                await self._control(conn, msg.data)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            conn.dead = True
            if conn in self._conns:
                self._conns.remove(conn)
            self._changed.set()
        return ws

    async def _control(self, conn: _Conn, text: str) -> None:
        try:
            msg = json.loads(text)
            action = msg["action"]
        except (ValueError, KeyError, TypeError):
            await self._reply(conn, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
            return
        if action == "auth":
            self.auth_messages += 1
            if conn.authenticated:
                await self._reply(conn, [{"T": "error", "code": 403, "msg": "already authenticated"}])
            elif msg.get("key") == self._key and msg.get("secret") == self._secret:
                conn.authenticated = True
                await self._reply(conn, [{"T": "success", "msg": "authenticated"}])
            else:
                await self._reply(conn, [{"T": "error", "code": 402, "msg": "auth failed"}])
                conn.dead = True
                await conn.ws.close()
        elif action in ("subscribe", "unsubscribe"):
            if not conn.authenticated:
                await self._reply(conn, [{"T": "error", "code": 401, "msg": "not authenticated"}])
                return
            for channel in CHANNELS:
                names = msg.get(channel) or []
                if not isinstance(names, list):
                    await self._reply(conn, [{"T": "error", "code": 400, "msg": "invalid syntax"}])
                    return
                if action == "subscribe":
                    conn.subs[channel] |= set(names)
                else:
                    conn.subs[channel] -= set(names)
            await self._reply(conn, [{"T": "subscription", **{c: sorted(conn.subs[c]) for c in CHANNELS}}])
            self._changed.set()
        else:
            await self._reply(conn, [{"T": "error", "code": 400, "msg": "invalid syntax"}])

    async def _reply(self, conn: _Conn, msgs: list[dict[str, Any]]) -> None:
        await self._send(conn, orjson.dumps(msgs), "control")

    # ------------------------------------------------------------------------------ REST
    def _limits(self) -> dict[str, str]:
        now = self.now_ns
        while self._used and self._used[0] <= now - 60 * NS:
            self._used.popleft()
        self._used.append(now)
        reset = (now // (60 * NS) + 1) * 60
        remaining = max(0, self._rate_limit - len(self._used))
        return {
            "X-Ratelimit-Limit": str(self._rate_limit),
            "X-Ratelimit-Remaining": str(remaining),
            "X-Ratelimit-Reset": str(reset),
        }

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps(body),
            content_type="application/json",
            headers={**self._limits(), **(headers or {})},
        )

    async def _bars(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        single = request.match_info.get("symbol")
        status, resp = 200, None
        key, secret = request.headers.get("APCA-API-KEY-ID"), request.headers.get("APCA-API-SECRET-KEY")
        if self._rest_faults:
            fault = self._rest_faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._rest_faults.popleft()
            status = int(fault[0])
            extra = {"Retry-After": f"{fault[2]:g}"} if fault[2] is not None else {}
            if status == 429:
                extra["X-Ratelimit-Remaining"] = "0"
            resp = self._answer(status, {"message": _MESSAGES.get(status, "error")}, extra)
        elif key is None or secret is None:
            status, resp = 401, self._answer(401, {"message": "unauthorized."})
        elif key != self._key or secret != self._secret:
            status, resp = 403, self._answer(403, {"message": "forbidden"})
        else:
            try:
                body = self._replay(params) or self._query(params, single)
                resp = self._answer(200, body)
            except BadData as exc:
                status = 422 if exc.reason == "limit" else 400
                resp = self._answer(status, {"message": str(exc)})
        self.rest_calls.append(RestCall(request.path, params, status))
        return resp

    def _query(self, params: dict[str, str], single: str | None) -> dict[str, Any]:
        symbols = [single] if single else [s for s in params.get("symbols", "").split(",") if s]
        if not symbols:
            raise BadData("missing", "symbols is required")
        step = timeframe_ns(params.get("timeframe", ""))
        limit = int_param(params.get("limit", "1000"))
        if not 1 <= limit <= 10_000:
            raise BadData("limit", "invalid limit: must be between 1 and 10000")
        start = parse_time(params["start"]) if "start" in params else self.now_ns // DAY * DAY
        end = parse_time(params["end"]) if "end" in params else self.now_ns
        after: tuple[str, int] | None = None
        if params.get("page_token"):
            try:
                sym, t = base64.b64decode(params["page_token"]).decode().split("|")
                after = (sym, int(t))
            except ValueError:
                raise BadData("token", "invalid page_token") from None
        rows: list[tuple[str, dict[str, Any]]] = []
        for sym in sorted(set(symbols)):
            arr = resample(self.market.published(sym), step)
            arr = arr[(arr["open_time"] >= start) & (arr["open_time"] <= end)]
            for t, _, o, h, lo, c, v in arr.tolist():
                if after is not None and (sym, t) <= after:
                    continue
                rows.append((sym, bar_json(t, o, h, lo, c, v)))
                if len(rows) > limit:
                    break
            if len(rows) > limit:
                break
        page, more = rows[:limit], len(rows) > limit
        token = None
        if more:
            last_sym, last = page[-1]
            token = base64.b64encode(f"{last_sym}|{parse_time(last['t'])}".encode()).decode()
        if single:
            return {"bars": [b for _, b in page], "symbol": single, "next_page_token": token}
        bars: dict[str, list[dict[str, Any]]] = {}
        for sym, b in page:
            bars.setdefault(sym, []).append(b)
        return {"bars": bars, "next_page_token": token}

    def _load_recording(self, path: Path) -> None:
        for item in json.loads(path.read_text())["interactions"]:
            query = {k: v[0] for k, v in parse_qs(urlsplit(item["request"]["uri"]).query).items()}
            headers = {k: v[0] for k, v in item["response"]["headers"].items() if k.startswith("X-Ratelimit")}
            key = (query.get("symbols", ""), query.get("timeframe", ""), query.get("page_token", ""))
            self._recorded[key] = (item["response"]["body"], headers)

    def _replay(self, params: dict[str, str]) -> Any:
        got = self._recorded.get((params.get("symbols", ""), params.get("timeframe", ""), params.get("page_token", "")))
        return None if got is None else orjson.loads(got[0])
