"""A simulated market: seeded, deterministic one-minute bars for every instrument, with warm-up history.

Each instrument has its own numpy random stream derived from ``(seed, symbol)``; its log-returns are
``drift(regime) + sigma * sqrt(h) * vol(regime) * session * t_shock + jumps`` (+ a gap at the US open):

- ``h`` is a GARCH(1,1) variance ratio updated once per block (an hour of minutes; a day on the daily
  grid) from the block's standardised return: volatility clusters without a per-minute Python loop;
- the regime is a Markov chain over bull / bear / ranging / high-vol lasting hours to days (weeks on the
  daily grid): trends, RSI extremes, MA crossings; shocks are Student-t (4 d.o.f.), jumps rare;
- stocks trade quietly outside the US session, gap at the open (13:30 / 14:30 UTC with US daylight
  saving time) and trade heavily near the open and close; volume is lognormal, larger on big moves.

History has two resolutions: ``history_days`` daily bars up to D0, the UTC midnight
``minute_history_days`` before the start, then minute bars from D0 to the start. Prices are scaled so the
close just before the start is ``config.prices[symbol]`` (default 100); the stream continues that minute
path, generated a UTC day at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from itertools import accumulate
from typing import Any

import numpy as np
import numpy.typing as npt

from pia.clock import Clock
from pia.config import SimulatedFeedConfig
from pia.events import BAR_DTYPE, Bar
from pia.feeds.aggregate import aggregate, split_closed
from pia.feeds.base import BarArray, History, array_to_bars
from pia.instruments import AssetClass, Instrument
from pia.intervals import DAY, MINUTE, parse_interval

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_MIN_PER_DAY = DAY // MINUTE
_T_DF = 4.0  # Student-t degrees of freedom of the shocks (variance df / (df - 2))
# regimes: bull, bear, ranging, high-vol
_DRIFT = np.array([0.6, -0.7, 0.0, -0.1])  # per day, in daily sigmas (scaled per grid)
_VOL = np.array([0.9, 1.15, 0.6, 2.0])  # volatility multiplier
_HOURS = np.array([30.0, 24.0, 36.0, 10.0])  # mean duration on the minute grid


@dataclass(frozen=True, slots=True)
class _Grid:
    step_days: float  # length of one step
    per_block: int  # steps per GARCH / regime update
    drift_scale: float
    duration_scale: float
    alpha: float
    beta: float
    max_net: float = 0.0  # if > 0: the largest net move of one call, in daily sigmas (keeps long paths sane)


_MINUTES = _Grid(1.0 / _MIN_PER_DAY, 60, 1.0, 1.0, alpha=0.08, beta=0.90)
_DAILY = _Grid(1.0, 1, 0.2, 20.0, alpha=0.07, beta=0.90, max_net=40.0)


@dataclass(frozen=True, slots=True)
class _ClassParams:
    vol_annual: float
    jumps_per_day: float
    jump_sd: float  # in daily sigmas
    gap_sd: float  # overnight gap at the US open, in daily sigmas
    notional: float  # traded value per minute


_CLASSES = {
    AssetClass.CRYPTO: _ClassParams(0.70, 1.0, 0.35, 0.0, 3e5),
    AssetClass.STOCKS: _ClassParams(0.45, 0.4, 0.40, 0.5, 1e5),
    AssetClass.METALS: _ClassParams(0.18, 0.3, 0.40, 0.0, 5e4),
}
# stock sessions: volatility weights (normalised so a weekday keeps its variance) and volume weights
_SESSION_MIN = 390
_OFF_VOL, _WEEKEND_VOL = 0.25, 0.1
_VOL_NORM = math.sqrt((_SESSION_MIN + (_MIN_PER_DAY - _SESSION_MIN) * _OFF_VOL**2) / _MIN_PER_DAY)


@dataclass(slots=True)
class _State:
    c: float  # log close of the last step
    h: float  # GARCH variance ratio (1 = the instrument's normal volatility)
    regime: int


@dataclass(slots=True)
class _LogPath:
    o: F64
    h: F64
    l: F64  # noqa: E741
    c: F64
    act: F64  # activity: volume in units of the class's notional per step


def _symbol_key(symbol: str) -> int:
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "little")


def _regimes(rng: np.random.Generator, st: _State, n_blocks: int, g: _Grid) -> I64:
    block_hours = g.step_days * g.per_block * 24.0
    leave = (1.0 - np.exp(-block_hours / (_HOURS * g.duration_scale))).tolist()
    u = rng.random(n_blocks).tolist()
    hop = rng.integers(1, len(_DRIFT), n_blocks).tolist()
    out = []
    r = st.regime
    for uk, hk in zip(u, hop, strict=True):
        out.append(r)
        if uk < leave[r]:
            r = (r + hk) % len(_DRIFT)
    st.regime = r
    return np.array(out, dtype=np.int64)


def _garch(st: _State, e: F64, g: _Grid) -> F64:
    """Variance ratio per block: h' = (1 - a - b) + a h e^2 + b h, with e the block's standardised return."""
    omega = 1.0 - g.alpha - g.beta
    coef = (g.alpha * e * e + g.beta).tolist()
    hs = list(accumulate(coef, lambda h, k: min(max(omega + k * h, 0.1), 12.0), initial=st.h))
    st.h = hs[-1]
    return np.array(hs[:-1])


def _simulate(
    rng: np.random.Generator,
    g: _Grid,
    sig_d: float,
    p: _ClassParams,
    st: _State,
    w_vol: F64,
    gap_at: Bools | None,
) -> _LogPath:
    """Advance ``st`` by ``len(w_vol)`` steps (a whole number of blocks) and return the log OHLC path."""
    n = len(w_vol)
    nb, per = n // g.per_block, g.per_block
    regimes = _regimes(rng, st, nb, g)
    step_sig = sig_d * math.sqrt(g.step_days)
    z = np.clip(rng.standard_t(_T_DF, n) / math.sqrt(_T_DF / (_T_DF - 2.0)), -12.0, 12.0)
    jump_on = rng.random(n) < p.jumps_per_day * g.step_days
    jump = np.where(jump_on, rng.standard_normal(n) * p.jump_sd * sig_d, 0.0)
    x = w_vol * z + jump / step_sig
    e = x.reshape(nb, per).sum(axis=1) / np.sqrt((w_vol * w_vol).reshape(nb, per).sum(axis=1))
    h = _garch(st, e, g)
    sd = step_sig * np.repeat(np.sqrt(h) * _VOL[regimes], per) * w_vol
    drift = np.repeat(g.drift_scale * _DRIFT[regimes] * sig_d * g.step_days, per)
    r = drift + sd * z + jump
    gap = np.zeros(n)
    if gap_at is not None:
        k = int(gap_at.sum())
        gap[gap_at] = rng.standard_t(_T_DF, k) / math.sqrt(_T_DF / (_T_DF - 2.0)) * p.gap_sd * sig_d
    net, cap = float(np.sum(gap + r)), g.max_net * sig_d
    if cap and abs(net) > cap:
        r -= (net - math.copysign(cap, net)) / n
    c = st.c + np.cumsum(gap + r)
    o = c - r
    wick = 0.6 * sd
    hi = np.maximum(o, c) + np.abs(rng.standard_normal(n)) * wick
    lo = np.minimum(o, c) - np.abs(rng.standard_normal(n)) * wick
    move = np.abs(r - drift + gap) / step_sig
    act = np.exp(0.45 * rng.standard_normal(n) - 0.1) * (1.0 + 0.5 * np.minimum(move, 40.0))
    st.c = float(c[-1])
    return _LogPath(o, hi, lo, c, act)


def _first_sunday(day: I64) -> I64:
    return day + (6 - (day + 3) % 7) % 7  # days since the epoch; 1970-01-01 was a Thursday (Monday = 0)


def _us_open_minute(days: I64) -> I64:
    """Minute of the UTC day at which US regular trading opens (9:30 New York) on each day."""
    months = days.astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[M]")
    dst_on = _first_sunday((months + 2).astype("datetime64[D]").astype(np.int64)) + 7  # 2nd Sunday of March
    dst_off = _first_sunday((months + 10).astype("datetime64[D]").astype(np.int64))  # 1st Sunday of November
    summer = (days >= dst_on) & (days < dst_off)
    return np.where(summer, 13 * 60 + 30, 14 * 60 + 30).astype(np.int64)


def _stock_session(times: I64) -> tuple[F64, F64, Bools]:
    """Volatility weights, volume weights and the opening minutes (for the gap) of a stock."""
    days = times // DAY
    mod = (times - days * DAY) // MINUTE
    weekday = ((days + 3) % 7) < 5
    since_open = mod - _us_open_minute(days)
    session = weekday & (since_open >= 0) & (since_open < _SESSION_MIN)
    w_vol = np.where(session, 1.0, np.where(weekday, _OFF_VOL, _WEEKEND_VOL)) / _VOL_NORM
    w_act = np.where(session, 1.0, np.where(weekday, 0.08, 0.03))
    w_act = np.where(session & (since_open < 30), 2.5, w_act)
    w_act = np.where(session & (since_open >= _SESSION_MIN - 15), 2.0, w_act)
    return w_vol, w_act, weekday & (since_open == 0)


class _Walker:
    """One instrument's random streams and state."""

    def __init__(self, inst: Instrument, seed: int, price: float) -> None:
        ss = np.random.SeedSequence([seed % 2**64, _symbol_key(inst.symbol)])
        own, deep, live = (np.random.default_rng(s) for s in ss.spawn(3))
        self.price = price
        self.params = _CLASSES[inst.asset_class]
        self.stock = inst.asset_class is AssetClass.STOCKS
        factor = float(np.clip(own.lognormal(0.0, 0.2), 0.5, 2.0))
        self.sig_d = self.params.vol_annual * factor / math.sqrt(365.0)
        self.state = _State(0.0, float(own.uniform(0.7, 1.4)), int(own.integers(len(_DRIFT))))
        self._deep_state = _State(0.0, 1.0, int(own.integers(len(_DRIFT))))
        self._deep_rng, self._live_rng = deep, live

    def deep(self, n_days: int) -> _LogPath:
        return _simulate(self._deep_rng, _DAILY, self.sig_d, self.params, self._deep_state, np.ones(n_days), None)

    def minutes(self, times: I64) -> _LogPath:
        w_vol, w_act, gap_at = _stock_session(times) if self.stock else (np.ones(len(times)), None, None)
        path = _simulate(self._live_rng, _MINUTES, self.sig_d, self.params, self.state, w_vol, gap_at)
        if w_act is not None:
            path.act *= w_act
        return path


def _to_bars(times: I64, path: _LogPath, offset: float, notional: float) -> BarArray:
    out = np.empty(len(times), dtype=BAR_DTYPE)
    o, c = np.exp(path.o + offset), np.exp(path.c + offset)
    out["open_time"] = times
    out["open"], out["close"] = o, c
    out["high"] = np.maximum(np.exp(path.h + offset), np.maximum(o, c))
    out["low"] = np.minimum(np.exp(path.l + offset), np.minimum(o, c))
    out["volume"] = notional * path.act / c
    return out


def _day_times(t0: int, n: int) -> I64:
    return t0 + np.arange(n, dtype=np.int64) * MINUTE


@dataclass(slots=True)
class _Prepared:
    walkers: list[_Walker]
    minute: list[BarArray]  # per instrument, [D0, start)
    daily: list[BarArray]  # per instrument, deep daily bars then the minute path's days (last may be partial)
    pending: list[BarArray]  # per instrument, generated minutes from the start to the next midnight
    seconds: float


def _prepare(cfg: SimulatedFeedConfig, instruments: Sequence[Instrument], start: int) -> _Prepared:
    t_begin = time.perf_counter()
    d0 = start // DAY * DAY - cfg.minute_history_days * DAY
    end = -(-start // DAY) * DAY
    times = _day_times(d0, (end - d0) // MINUTE)
    split = (start - d0) // MINUTE
    deep_times = d0 - np.arange(cfg.history_days, 0, -1, dtype=np.int64) * DAY
    prep = _Prepared([], [], [], [], 0.0)
    for inst in instruments:
        w = _Walker(inst, cfg.seed, float(cfg.prices.get(inst.symbol, 100.0)))
        path = w.minutes(times)
        offset = math.log(w.price) - float(path.c[split - 1])
        w.state.c += offset
        bars = _to_bars(times, path, offset, w.params.notional)
        deep = w.deep(cfg.history_days)
        deep_bars = _to_bars(deep_times, deep, offset - float(deep.c[-1]), w.params.notional * _MIN_PER_DAY)
        prep.walkers.append(w)
        prep.minute.append(bars[:split])
        prep.pending.append(bars[split:])
        prep.daily.append(np.concatenate([deep_bars, aggregate(bars[:split], "1d")]))
    prep.seconds = time.perf_counter() - t_begin
    return prep


def _read_only(arr: BarArray) -> BarArray:
    arr.flags.writeable = False
    return arr


def _histories(symbol: str, minute: BarArray, daily: BarArray, codes: Sequence[str], start: int) -> list[History]:
    out = []
    for code in codes:
        iv = parse_interval(code)
        if code == "1m":
            out.append(History(symbol, code, _read_only(minute)))
            continue
        if iv.nominal_ns < DAY:
            candles = aggregate(minute, iv)
        else:
            candles = aggregate(daily, iv)
            candles = candles[candles["open_time"] >= daily["open_time"][0]]  # drop a leading incomplete one
        closed, still_open = split_closed(candles, iv, start)
        partial = array_to_bars(symbol, code, still_open)[0] if len(still_open) else None
        out.append(History(symbol, code, _read_only(closed), partial))
    return out


def _interval_codes(intervals: Sequence[str]) -> list[str]:
    base = parse_interval("1m")
    codes = ["1m"]
    for code in intervals:
        if not base.divides(parse_interval(code)):  # parse_interval rejects malformed codes
            raise ValueError(f"cannot build {code} candles from 1m bars")
        if code not in codes:
            codes.append(code)
    return codes


def _start_ns(cfg: SimulatedFeedConfig, clock: Clock) -> int:
    if cfg.start is None:
        return clock.now_ns() // MINUTE * MINUTE
    start = cfg.start.replace(tzinfo=UTC) if cfg.start.tzinfo is None else cfg.start
    return int(start.timestamp()) // 60 * MINUTE


_OHLCV = ("open", "high", "low", "close", "volume")
_Row = tuple[float, float, float, float, float]  # o, h, l, c, v


def _future(prep: _Prepared, start: int) -> Iterator[tuple[int, list[_Row]]]:
    """(open time, one row per instrument) for every minute from the start, generated a UTC day at a time."""
    arrays, day = prep.pending, -(-start // DAY) * DAY  # first: the rest of the start's day
    while True:
        cols = [np.stack([a[f] for a in arrays], axis=1).tolist() for f in _OHLCV]
        rows = [list(zip(*minute, strict=True)) for minute in zip(*cols, strict=True)]
        yield from zip(arrays[0]["open_time"].tolist(), rows, strict=True)
        times = _day_times(day, _MIN_PER_DAY)
        arrays = [_to_bars(times, w.minutes(times), 0.0, w.params.notional) for w in prep.walkers]
        day += DAY


class SimulatedMarket:
    """A seeded random market of every instrument, streaming one-minute bars at ``config.speed``."""

    name: str = "simulated"
    base_interval: str | None = "1m"

    def __init__(self, config: SimulatedFeedConfig, instruments: Sequence[Instrument], clock: Clock) -> None:
        symbols = [i.symbol for i in instruments]
        if not symbols:
            raise ValueError("the simulated market needs at least one instrument")
        if len(set(symbols)) != len(symbols):
            raise ValueError("instrument symbols must be unique")
        self.instruments: tuple[Instrument, ...] = tuple(instruments)
        self._config = config
        self._clock = clock
        self._start = _start_ns(config, clock)
        self._prepared: _Prepared | None = None
        self._lock = asyncio.Lock()
        self._streaming = False
        self._minutes = 0
        self._bars = 0

    @property
    def start_ns(self) -> int:
        """Simulated time at which streaming starts (history ends here), ns since the epoch."""
        return self._start

    def statistics(self) -> dict[str, Any]:
        return {
            "start_ns": self._start,
            "sim_time_ns": self._start + self._minutes * MINUTE,
            "minutes_streamed": self._minutes,
            "bars_yielded": self._bars,
            "history_generated": self._prepared is not None,
            "generation_seconds": self._prepared.seconds if self._prepared else 0.0,
        }

    async def history(self, intervals: Sequence[str]) -> list[History]:
        """Closed history of every instrument for ``1m`` and each of ``intervals``, with partial candles."""
        codes = _interval_codes(intervals)
        prep = await self._ensure_prepared()

        def build() -> list[History]:
            out: list[History] = []
            for inst, minute, daily in zip(self.instruments, prep.minute, prep.daily, strict=True):
                out.extend(_histories(inst.symbol, minute, daily, codes, self._start))
            return out

        return await asyncio.to_thread(build)

    async def stream(self) -> AsyncIterator[Bar]:
        """Closed 1m bars from the start on, every instrument each simulated minute (can be iterated once)."""
        if self._streaming:
            raise RuntimeError("SimulatedMarket.stream() can be iterated only once")
        self._streaming = True
        future = _future(await self._ensure_prepared(), self._start)
        cfg, clock = self._config, self._clock
        per_minute = 60.0 / cfg.speed if cfg.speed > 0 else 0.0
        begin = clock.monotonic()
        n = 0
        while cfg.max_minutes == 0 or n < cfg.max_minutes:
            if per_minute:
                await clock.sleep(max(0.0, begin + (n + 1) * per_minute - clock.monotonic()))
            else:
                await asyncio.sleep(0)
            t, rows = next(future)
            for inst, (o, h, lo, c, v) in zip(self.instruments, rows, strict=True):
                self._bars += 1
                yield Bar(symbol=inst.symbol, interval="1m", open_time=t, open=o, high=h, low=lo, close=c, volume=v)
            n += 1
            self._minutes += 1

    async def _ensure_prepared(self) -> _Prepared:
        async with self._lock:
            if self._prepared is None:
                prep = await asyncio.to_thread(_prepare, self._config, self.instruments, self._start)
                self._prepared = prep
                extra = {"source": self.name, "instruments": len(self.instruments), "start_ns": self._start}
                extra["elapsed_ms"] = round(prep.seconds * 1000.0, 1)
                log.info("simulated history generated", extra=extra)
            return self._prepared
