"""The signal registry: every signal pia knows, by name, with its family, warm-up and parameters.

The registry is an explicit, immutable list (no import-time self-registration). Config selects
signals by name and gives parameters, which are validated against each signal's model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pydantic import ValidationError

from pia.config import SignalsConfig
from pia.signals import (
    calendar,
    candlestick,
    core,
    core_inputs,
    econ_calendar,
    fibonacci,
    heikin_ashi,
    macro_regime,
    mean_reversion,
    momentum,
    momentum_factors,
    oscillators,
    smart_money,
    structure,
    trend,
    volatility,
    volume_flow,
)
from pia.signals.base import SETTLE_BARS, Context, Params, SignalOutput, SignalSpec


@dataclass(frozen=True, slots=True)
class ResolvedSignal:
    """A selected signal with validated parameters."""

    spec: SignalSpec
    params: Params

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def warmup(self) -> int:
        return self.spec.warmup(self.params)

    @property
    def window(self) -> int:
        """Bars a live window needs so that its last vote equals the full-history vote."""
        if self.spec.window is not None:
            return self.spec.window(self.params)
        return self.warmup + SETTLE_BARS

    def compute(self, c: Context) -> SignalOutput:
        return self.spec.compute(c, self.params)


class Registry:
    def __init__(self, specs: Iterable[SignalSpec]) -> None:
        self._specs: dict[str, SignalSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"signal {spec.name!r} declared twice")
            self._specs[spec.name] = spec

    def __iter__(self) -> Iterator[SignalSpec]:
        return iter(self._specs.values())

    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> SignalSpec:
        return self._specs[name]

    def resolve(self, config: SignalsConfig) -> tuple[ResolvedSignal, ...]:
        """The enabled signals with validated params; ValueError names the key and what is wrong."""
        known = ", ".join(self.names())
        unknown = [n for n in config.enabled if n not in self._specs]
        if unknown:
            raise ValueError(f"signals.enabled: unknown signal(s) {', '.join(unknown)} (known: {known})")
        if len(set(config.enabled)) != len(config.enabled):
            raise ValueError("signals.enabled: a signal is listed twice")
        stray = [n for n in config.params if n not in self._specs]
        if stray:
            raise ValueError(f"signals.params.{stray[0]}: unknown signal (known: {known})")
        out = []
        for name in config.enabled:
            spec = self._specs[name]
            try:
                params = spec.params_model.model_validate(config.params.get(name, {}))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(x) for x in err.get("loc", ()))
                where = f"signals.params.{name}" + (f".{loc}" if loc else "")
                msg = str(err["msg"]).removeprefix("Value error, ")
                if err.get("type") == "extra_forbidden":
                    msg = "unknown parameter"
                raise ValueError(f"{where}: {msg}") from None
            out.append(ResolvedSignal(spec, params))
        return tuple(out)


ORDER: tuple[str, ...] = (
    # core (10), in the order; `llm` is the original's `ministral` slot
    "rsi", "macd", "ema", "bb", "fear_greed", "sentiment", "llm", "ml", "funding", "volume",
    # enhanced composites (14), in the original's registration order
    "trend", "momentum", "volume_flow", "volatility_sig", "candlestick", "structure", "fibonacci",
    "smart_money", "oscillators", "heikin_ashi", "mean_reversion", "calendar", "momentum_factors", "macro_regime",
    # the original's later addition
    "econ_calendar",
)  # fmt: skip
"""Every signal, in the order tables and votes list them."""


def _ordered(specs: Iterable[SignalSpec]) -> list[SignalSpec]:
    by_name = {s.name: s for s in specs}
    missing = [n for n in ORDER if n not in by_name]
    extra = [n for n in by_name if n not in ORDER]
    if missing or extra:
        raise ValueError(f"registry ORDER and modules disagree: missing {missing}, not in ORDER {extra}")
    return [by_name[n] for n in ORDER]


REGISTRY = Registry(
    _ordered(
        (
            *core.SIGNALS,
            *core_inputs.SIGNALS,
            *trend.SIGNALS,
            *momentum.SIGNALS,
            *volume_flow.SIGNALS,
            *volatility.SIGNALS,
            *candlestick.SIGNALS,
            *structure.SIGNALS,
            *fibonacci.SIGNALS,
            *smart_money.SIGNALS,
            *oscillators.SIGNALS,
            *heikin_ashi.SIGNALS,
            *mean_reversion.SIGNALS,
            *calendar.SIGNALS,
            *momentum_factors.SIGNALS,
            *macro_regime.SIGNALS,
            *econ_calendar.SIGNALS,
        )
    )
)
