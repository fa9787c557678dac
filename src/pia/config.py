"""Configuration: one frozen pydantic model tree loaded from TOML, secrets from the environment.

Unknown keys, wrong types and bad values fail at start with one :class:`~pia.errors.ConfigError`
whose message names the file, the key and what is wrong. Each component receives only its section.
"""

from __future__ import annotations

import os
import tomllib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pia.errors import ConfigError
from pia.instruments import Universe, read_universe_toml
from pia.intervals import parse_interval

_Frozen = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServiceConfig(BaseModel):
    model_config = _Frozen

    data_dir: Path = Path("var")
    """Where the store, logs and state live; relative paths are from the working directory.
    ``PIA_DATA_DIR`` overrides it."""
    instruments: Path = Path("instruments.toml")
    """The instruments and timeframes file; relative paths are from this config file's folder."""
    symbols: tuple[str, ...] = ()
    """A subset of the instruments to run (empty: all of them)."""
    heartbeat_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    shutdown_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0


class LoggingConfig(BaseModel):
    model_config = _Frozen

    level: LogLevel = "INFO"
    """Level of the JSON log file (``<data_dir>/logs/pia.jsonl``); ``PIA_LOG_LEVEL`` overrides it.
    At DEBUG every bus event is logged with key ``event``."""
    console_level: LogLevel = "INFO"
    max_bytes: Annotated[int, Field(ge=100_000)] = 10_000_000
    backups: Annotated[int, Field(ge=1, le=100)] = 3

    @field_validator("level", "console_level", mode="before")
    @classmethod
    def _upper(cls, v: object) -> object:
        return v.upper() if isinstance(v, str) else v


class BusConfig(BaseModel):
    model_config = _Frozen

    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 8192
    """Bound of each subscriber's queue."""


class FeedKind(StrEnum):
    SIMULATED = "simulated"
    REPLAY = "replay"
    LIVE = "live"


class HttpConfig(BaseModel):
    model_config = _Frozen

    retries: Annotated[int, Field(ge=0, le=10)] = 3
    """Retries of a timed-out, 5xx, 429 or truncated request (other 4xx are never retried)."""
    backoff_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    """First retry delay; doubles each retry, with jitter."""
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10.0
    breaker_failures: Annotated[int, Field(ge=1, le=100)] = 5
    """Consecutive failed calls that open a source's circuit."""
    breaker_reset_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """How long an open circuit waits before one probe (half-open)."""


class ReconnectConfig(BaseModel):
    model_config = _Frozen

    initial_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    max_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    receive_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 90.0
    """Silence on a stream for this long (no message, no pong) counts as a dead connection."""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.max_seconds < self.initial_seconds:
            raise ValueError("max_seconds must be at least initial_seconds")
        return self


class BinanceConfig(BaseModel):
    model_config = _Frozen

    enabled: bool = True
    spot_rest_url: str = "https://data-api.binance.vision"
    spot_ws_url: str = "wss://data-stream.binance.vision"
    futures_rest_url: str = "https://fapi.binance.com"
    futures_ws_url: str = "wss://fstream.binance.com"
    funding_symbols: tuple[str, ...] = ("BTC-USD", "ETH-USD")
    """Instruments whose USD-M perpetual funding rate and mark price are followed (FundingUpdated)."""


class AlpacaConfig(BaseModel):
    model_config = _Frozen

    enabled: bool = True
    rest_url: str = "https://data.alpaca.markets"
    ws_url: str = "wss://stream.data.alpaca.markets"
    data_feed: Literal["iex", "sip"] = "iex"
    adjustment: Literal["raw", "split", "dividend", "all"] = "split"


class FearGreedConfig(BaseModel):
    model_config = _Frozen

    enabled: bool = True
    crypto_url: str = "https://api.alternative.me/fng/"
    """alternative.me Crypto Fear & Greed index (crypto instruments)."""
    vix_url: str = "https://cdn.cboe.com/api/global/us_indices/daily_prices/VIX_History.csv"
    """A VIX daily history (CSV: DATE,OPEN,HIGH,LOW,CLOSE); stocks and metals get an index derived from it."""
    poll_seconds: Annotated[float, Field(ge=10, le=86_400)] = 300.0


class FxConfig(BaseModel):
    model_config = _Frozen

    enabled: bool = True
    url: str = "https://api.frankfurter.app"
    """ECB reference rates (the Frankfurter API)."""
    base: str = "USD"
    quotes: tuple[str, ...] = ("SEK",)
    poll_seconds: Annotated[float, Field(ge=60, le=86_400)] = 3600.0
    stale_after_seconds: Annotated[float, Field(ge=60)] = 7200.0
    """A rate older than this is marked stale, with a loud warning; there is never a hard-coded fallback."""


class LiveFeedConfig(BaseModel):
    model_config = _Frozen

    history_bars: Annotated[int, Field(ge=50, le=5000)] = 500
    """Closed candles fetched per (instrument, timeframe) at start."""
    http: HttpConfig = HttpConfig()
    reconnect: ReconnectConfig = ReconnectConfig()
    binance: BinanceConfig = BinanceConfig()
    alpaca: AlpacaConfig = AlpacaConfig()
    fear_greed: FearGreedConfig = FearGreedConfig()
    fx: FxConfig = FxConfig()


class SimulatedFeedConfig(BaseModel):
    model_config = _Frozen

    seed: int = 7
    speed: Annotated[float, Field(ge=0)] = 60.0
    """Simulated seconds per wall second (60: a one-minute bar each second); 0 runs as fast as possible."""
    start: datetime | None = None
    """Simulated time at which streaming starts (UTC); empty: now, floored to the minute."""
    history_days: Annotated[int, Field(ge=30, le=20_000)] = 1600
    """Daily history generated before the minute history (warms 1d .. 1M windows)."""
    minute_history_days: Annotated[int, Field(ge=1, le=60)] = 10
    """One-minute history generated before the start (warms 15m .. 4h windows)."""
    max_minutes: Annotated[int, Field(ge=0)] = 0
    """Stop streaming after this many simulated minutes (0: never)."""
    prices: dict[str, PositiveFloat] = Field(default_factory=dict)
    """Starting price per instrument symbol (others start at 100)."""

    @field_validator("start")
    @classmethod
    def _utc_minute(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return None
        v = v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
        if v.second or v.microsecond:
            raise ValueError("must be on a whole minute")
        return v


class ReplayFileConfig(BaseModel):
    model_config = _Frozen

    path: Path
    """CSV, Parquet or Feather (Arrow IPC) OHLCV file; relative paths are from this config file's folder."""
    symbol: str
    interval: str = "1m"
    format: Literal["auto", "csv", "parquet", "feather", "binance_csv", "octobot"] = "auto"

    @field_validator("interval")
    @classmethod
    def _valid_interval(cls, v: str) -> str:
        parse_interval(v)
        return v


class ReplayFeedConfig(BaseModel):
    model_config = _Frozen

    speed: Annotated[float, Field(ge=0)] = 0.0
    """Replayed seconds per wall second; 0 replays as fast as the pipeline takes it."""
    files: tuple[ReplayFileConfig, ...] = ()


class FeedConfig(BaseModel):
    model_config = _Frozen

    kind: FeedKind = FeedKind.SIMULATED
    simulated: SimulatedFeedConfig = SimulatedFeedConfig()
    replay: ReplayFeedConfig = ReplayFeedConfig()
    live: LiveFeedConfig = LiveFeedConfig()

    @model_validator(mode="after")
    def _replay_has_files(self) -> Self:
        if self.kind is FeedKind.REPLAY and not self.replay.files:
            raise ValueError("kind = 'replay' needs at least one [[feed.replay.files]] entry")
        return self


class SignalsConfig(BaseModel):
    model_config = _Frozen

    enabled: tuple[str, ...] = (
        "rsi", "macd", "ema", "bb", "fear_greed", "sentiment", "llm", "ml", "funding", "volume",
        "trend", "momentum", "volume_flow", "volatility_sig", "candlestick", "structure", "fibonacci",
        "smart_money", "oscillators", "heikin_ashi", "mean_reversion", "calendar", "momentum_factors", "macro_regime",
        "econ_calendar",
    )  # fmt: skip
    """Signals to run, by registry name (``pia signals --list``); all 25 by default."""
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-signal parameters, ``[signals.params.rsi] period = 14``; checked against each signal's model."""
    max_consecutive_failures: PositiveInt = 5


REGIMES = ("trending_up", "trending_down", "ranging", "high_vol")
"""The regimes of :mod:`pia.signals.regime` (repeated here: the config must not import TA-Lib)."""

DEFAULT_TIMEFRAME_WEIGHTS: dict[str, float] = {
    "Now": 0.35,
    "12h": 0.20,
    "2d": 0.15,
    "7d": 0.12,
    "1mo": 0.08,
    "3mo": 0.06,
    "6mo": 0.04,
}

DEFAULT_REGIME_MULTIPLIERS: dict[str, dict[str, float]] = {
    "trending_up": {"ema": 1.5, "macd": 1.3, "rsi": 0.7, "bb": 0.7},
    "trending_down": {"ema": 1.5, "macd": 1.3, "rsi": 0.7, "bb": 0.7},
    "ranging": {"rsi": 1.5, "bb": 1.5, "ema": 0.5, "macd": 0.5},
    "high_vol": {"bb": 1.5, "volume": 1.3, "funding": 1.3, "ema": 0.5},
}


class ConsensusConfig(BaseModel):
    """The consensus policy (the rules are numbered in :mod:`pia.signals.consensus`)."""

    model_config = _Frozen

    min_voters: PositiveInt = 3
    """Rule 4 (quorum): active (BUY or SELL) votes a timeframe needs before it leaves HOLD, for every asset
    class and regime."""
    confidence_bucket: Annotated[float, Field(gt=0, le=1)] = 0.1
    """ConsensusChanged is published when the action or the confidence bucket of this width changes."""
    action_threshold: Annotated[float, Field(ge=0.5, le=1)] = 0.5
    """Rules 5 and 6: the winning side needs at least this share of the active votes (of the weight)."""
    sentiment_flip_confidence: Annotated[float, Field(ge=0, le=1)] = 0.55
    """Rule 2 (hysteresis): a ``sentiment`` vote against its previous direction counts only at this confidence."""
    accuracy_prior: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Rule 6: the accuracy a signal is assumed to have before any outcome is scored."""
    accuracy_prior_strength: Annotated[float, Field(ge=0, le=100_000)] = 20.0
    """Rule 6: pseudo-samples of the prior; accuracy = (hits + prior x k) / (samples + k)."""
    min_accuracy: Annotated[float, Field(ge=0, le=1)] = 0.45
    """Rule 6: a signal whose shrunk accuracy is below this gets weight 0 (gated, never inverted)."""
    regime_multipliers: dict[str, dict[str, Annotated[float, Field(ge=0, le=100)]]] = Field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_REGIME_MULTIPLIERS.items()}
    )
    """Rule 6: regime -> {signal: weight multiplier}; signals not listed get 1.0. Setting this replaces the
    whole table (a regime left out uses 1.0 for every signal)."""
    quiet_hours_utc: tuple[Annotated[int, Field(ge=0, le=23)], Annotated[int, Field(ge=0, le=23)]] = (2, 6)
    """Rule 7: first and last UTC hour (inclusive; wraps past midnight when first > last) of the bar close
    at which both confidences are damped."""
    quiet_hours_factor: Annotated[float, Field(ge=0, le=1)] = 0.8
    """Rule 7: the damping factor (1.0 turns it off)."""
    timeframe_weights: dict[str, Annotated[float, Field(ge=0, le=1000)]] = Field(
        default_factory=lambda: dict(DEFAULT_TIMEFRAME_WEIGHTS)
    )
    """Instrument level: timeframe label -> weight of its consensus. Setting this replaces the whole table;
    a timeframe left out (or at 0) is ignored. Labels must be timeframes of the instruments file."""

    @field_validator("regime_multipliers")
    @classmethod
    def _known_regimes(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        unknown = sorted(set(v) - set(REGIMES))
        if unknown:
            raise ValueError(f"unknown regime(s) {', '.join(unknown)} (known: {', '.join(REGIMES)})")
        return v


class StoreConfig(BaseModel):
    model_config = _Frozen

    file: str = "pia.sqlite3"
    """SQLite database file name under ``data_dir``."""
    busy_timeout_ms: Annotated[int, Field(ge=0, le=600_000)] = 5000
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    batch_max: Annotated[int, Field(ge=1, le=100_000)] = 2000
    """Most rows written in one transaction."""


class ConsoleNotifierConfig(BaseModel):
    model_config = _Frozen

    enabled: bool = True
    show_signals: tuple[str, ...] = ("Now",)
    """Timeframe labels whose every closed bar prints a line of votes (empty: none)."""


class NotifierConfig(BaseModel):
    model_config = _Frozen

    console: ConsoleNotifierConfig = ConsoleNotifierConfig()


class PiaConfig(BaseModel):
    """The whole configuration file."""

    model_config = _Frozen

    service: ServiceConfig = ServiceConfig()
    logging: LoggingConfig = LoggingConfig()
    bus: BusConfig = BusConfig()
    feed: FeedConfig = FeedConfig()
    signals: SignalsConfig = SignalsConfig()
    consensus: ConsensusConfig = ConsensusConfig()
    store: StoreConfig = StoreConfig()
    notifier: NotifierConfig = NotifierConfig()


class Secrets(BaseModel):
    """Secrets, read only from the environment. Never logged, never shown unmasked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    telegram_token: SecretStr | None = None
    alpaca_key_id: SecretStr | None = None
    alpaca_secret_key: SecretStr | None = None

    ENV: ClassVar[dict[str, str]] = {
        "telegram_token": "PIA_TELEGRAM_TOKEN",
        "alpaca_key_id": "PIA_ALPACA_KEY_ID",
        "alpaca_secret_key": "PIA_ALPACA_SECRET_KEY",
    }

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str]) -> Secrets:
        values = {field: env.get(var, "").strip() or None for field, var in cls.ENV.items()}
        return cls.model_validate(values)


class Settings(BaseModel):
    """What ``load_config`` returns: the file's config, the universe it names, and the secrets."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    source: Path
    config: PiaConfig
    universe: Universe
    secrets: Secrets

    @property
    def data_dir(self) -> Path:
        return self.config.service.data_dir

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets masked (for ``pia config check``)."""
        out: dict[str, Any] = {"source": str(self.source)}
        out.update(self.config.model_dump(mode="json"))
        out["universe"] = {
            "instruments": [i.model_dump(mode="json") for i in self.universe.instruments],
            "timeframes": [t.model_dump(mode="json") for t in self.universe.timeframes],
        }
        out["secrets"] = {
            var: ("set (masked)" if getattr(self.secrets, field) is not None else "not set")
            for field, var in Secrets.ENV.items()
        }
        return out


# ------------------------------------------------------------------------------------- loading
def _where(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    if not parts:
        return "(top level)"
    return ".".join(parts)


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; `pia config check --help` lists the sections)"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("missing",) and not isinstance(err["input"], dict | list):
        msg += f" (got {err['input']!r})"
    return msg


def format_validation_error(source: Path, exc: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for err in exc.errors():
        loc = prefix + tuple(str(x) for x in err.get("loc", ()))
        lines.append(f"{source}: {_where(loc)}: {_describe(dict(err))}")
    return "\n".join(lines)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> Settings:
    """Load, validate and freeze the configuration at ``path``; raise :class:`ConfigError` if anything is off."""
    environ: dict[str, str] = dict(os.environ) if env is None else env
    source = Path(path)
    raw = _read_toml(source)

    overrides: dict[str, Any] = {}
    if environ.get("PIA_DATA_DIR", "").strip():
        overrides.setdefault("service", {})["data_dir"] = environ["PIA_DATA_DIR"].strip()
    if environ.get("PIA_LOG_LEVEL", "").strip():
        overrides.setdefault("logging", {})["level"] = environ["PIA_LOG_LEVEL"].strip()
    for section, values in overrides.items():
        if isinstance(raw.get(section, {}), dict):
            raw[section] = {**raw.get(section, {}), **values}

    try:
        config = PiaConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None

    base = source.parent
    uni_path = config.service.instruments
    uni_path = uni_path if uni_path.is_absolute() else base / uni_path
    if not uni_path.is_file():
        raise ConfigError(f"{source}: service.instruments: file not found: {uni_path}")
    try:
        universe = Universe.model_validate(read_universe_toml(uni_path))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(uni_path, exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{uni_path}: invalid TOML: {exc}") from None
    try:
        universe = universe.select(config.service.symbols)
    except ValueError as exc:
        raise ConfigError(f"{source}: service.symbols: {exc}") from None

    config = _resolve_paths(config, base)
    _check_cross_refs(source, config, universe)
    from pia.signals.registry import REGISTRY  # late: the registry imports TA-Lib

    try:
        REGISTRY.resolve(config.signals)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None

    try:
        secrets = Secrets.from_env(environ)
    except ValidationError as exc:  # pragma: no cover - SecretStr accepts any string
        raise ConfigError(f"environment: {exc}") from None
    return Settings(source=source, config=config, universe=universe, secrets=secrets)


def _resolve_paths(config: PiaConfig, base: Path) -> PiaConfig:
    files = tuple(
        f if f.path.is_absolute() else f.model_copy(update={"path": base / f.path}) for f in config.feed.replay.files
    )
    replay = config.feed.replay.model_copy(update={"files": files})
    feed = config.feed.model_copy(update={"replay": replay})
    return config.model_copy(update={"feed": feed})


def _check_cross_refs(source: Path, config: PiaConfig, universe: Universe) -> None:
    symbols = {i.symbol for i in universe.instruments}
    labels = {t.label for t in universe.timeframes}
    problems = []
    for key in config.feed.simulated.prices:
        if key not in symbols:
            problems.append(f"feed.simulated.prices.{key}: unknown instrument")
    if config.feed.kind is FeedKind.REPLAY:
        for n, f in enumerate(config.feed.replay.files):
            if f.symbol not in symbols:
                problems.append(f"feed.replay.files.{n}.symbol: unknown instrument {f.symbol!r}")
            if not f.path.exists():
                problems.append(f"feed.replay.files.{n}.path: file not found: {f.path}")
    for label in config.notifier.console.show_signals:
        if label not in labels:
            problems.append(f"notifier.console.show_signals: unknown timeframe label {label!r}")
    weights = config.consensus.timeframe_weights
    if "timeframe_weights" in config.consensus.model_fields_set:
        for label in weights:
            if label not in labels:
                known = ", ".join(t.label for t in universe.timeframes)
                problems.append(f"consensus.timeframe_weights: unknown timeframe label {label!r} (known: {known})")
    if not any(weights.get(t.label, 0.0) > 0 for t in universe.timeframes):
        problems.append(
            "consensus.timeframe_weights: no timeframe of the instruments file has a positive weight "
            "(every instrument would stay on HOLD)"
        )
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
