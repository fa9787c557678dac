"""The registry as a whole: the 25 signals, their declarations, the generated docs, and live == vectorised for all."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pia.config import SignalsConfig
from pia.signals.base import Context, Inputs, SignalSpec
from pia.signals.docs import render
from pia.signals.registry import ORDER, REGISTRY
from pia.testing.signals import (
    assert_live_matches_vectorised,
    assert_valid_output,
    load_btc_5m,
    load_spy_daily,
    random_ohlcv,
    tail,
)

REPO = Path(__file__).resolve().parents[3]
CORE = ("rsi", "macd", "ema", "bb", "fear_greed", "sentiment", "llm", "ml", "funding", "volume")
COMPOSITES = (
    "trend", "momentum", "volume_flow", "volatility_sig", "candlestick", "structure", "fibonacci", "smart_money",
    "oscillators", "heikin_ashi", "mean_reversion", "calendar", "momentum_factors", "macro_regime",
)  # fmt: skip
ALL = REGISTRY.resolve(SignalsConfig())


def test_the_25_signals_in_order_with_their_families() -> None:
    assert REGISTRY.names() == [*CORE, *COMPOSITES, "econ_calendar"] == list(ORDER)
    assert [s.name for s in ALL] == REGISTRY.names()  # all enabled by default
    assert [s.name for s in REGISTRY if s.core] == list(CORE)
    assert {s.family for s in REGISTRY if s.name in COMPOSITES} == {"composite"}


def test_applicable_signals_per_asset_class() -> None:
    def count(cls: str) -> int:
        return sum(cls in s.asset_classes for s in REGISTRY)

    # the original: crypto 24 (10 core + 14), stocks and metals 21 (7 core + 14); plus econ_calendar
    assert (count("crypto"), count("stocks"), count("metals")) == (25, 22, 22)
    assert {s.name for s in REGISTRY if "stocks" not in s.asset_classes} == {"llm", "ml", "funding"}


def test_input_signals_declare_their_contracts_and_abstain_without_them() -> None:
    declared = {s.name: s.inputs for s in REGISTRY if s.inputs}
    assert declared == {
        "fear_greed": ("fear_greed",),
        "sentiment": ("sentiment",),
        "llm": ("llm",),
        "ml": ("ml",),
        "funding": ("funding_rate",),
        "macro_regime": ("dxy_change_pct", "spread_2s10s", "us10y_change_pct"),
    }
    o = random_ohlcv(3, 400)
    for sig in ALL:
        if sig.spec.inputs and sig.name != "macro_regime":
            assert not sig.compute(Context(o)).action.any(), sig.name


def test_every_signal_documents_its_rule_warmup_and_parameters() -> None:
    for spec in REGISTRY:
        doc = inspect.getdoc(spec.compute) or ""
        assert len(doc) > 80, spec.name
        assert spec.summary and len(spec.summary) < 140, spec.name
        p = spec.default_params()
        assert spec.warmup(p) >= 1
        window = spec.window(p) if spec.window is not None else None
        assert window is None or window >= spec.warmup(p), spec.name


def test_docs_signals_md_is_generated_from_the_registry() -> None:
    path = REPO / "docs" / "signals.md"
    assert path.read_text(encoding="utf-8") == render(REGISTRY), "docs/signals.md is stale: run `make docs`"


def test_every_signal_is_valid_on_real_candles_and_some_vote(shared_data: Path) -> None:
    o = load_btc_5m(shared_data)
    voted = set()
    for sig in ALL:
        out = sig.compute(Context(o))
        assert_valid_output(out, len(o.close))
        if (out.action == 1).any() and (out.action == -1).any():
            voted.add(sig.name)
    # without their inputs these abstain; calendar and econ_calendar vote one way only in Jan-Feb 2023;
    # macro_regime needs its macro inputs to outnumber its abstaining sub-votes
    silent = {"fear_greed", "sentiment", "llm", "ml", "funding", "calendar", "econ_calendar", "macro_regime"}
    assert voted == set(REGISTRY.names()) - silent


@pytest.mark.slow
def test_all_signals_live_equal_vectorised_on_real_candles(shared_data: Path) -> None:
    for o in (load_btc_5m(shared_data), load_spy_daily(shared_data)):
        window = max(s.window for s in ALL)
        data = tail(o, window + 120)
        for sig in ALL:
            assert_live_matches_vectorised(sig, data, start=window)


@settings(max_examples=4, deadline=None)
@given(st.integers(min_value=0, max_value=2**31), st.sampled_from([0.002, 0.01, 0.04]))
def test_all_signals_live_equal_vectorised_on_generated_series(seed: int, vol: float) -> None:
    window = max(s.window for s in ALL)
    o = random_ohlcv(seed, window + 40, vol=vol)
    fg = np.clip(50 + np.cumsum(np.random.default_rng(seed).normal(0, 8, len(o.close))), 0, 100)
    for sig in ALL:
        assert_live_matches_vectorised(sig, o, Inputs(fear_greed=fg), start=window)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 24, 30, 60])
def test_short_histories_abstain_without_errors(n: int) -> None:
    """A young listing, or a 1M timeframe with two years of data: every signal copes with few bars.

    (A composite may vote before its warm-up: its shorter sub-indicators are ready before the longest.)
    """
    o = random_ohlcv(11, n)
    for sig in ALL:
        assert_valid_output(sig.compute(Context(o)), n)


def _bounds(field: object) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in getattr(field, "metadata", ()):
        lo = getattr(m, "ge", lo)
        hi = getattr(m, "le", hi)
    return lo, hi


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda s: s.name)
def test_every_integer_parameter_works_at_both_of_its_bounds(spec: SignalSpec) -> None:
    """A value the parameter model accepts must compute: config validation is the only gate, so a bound
    that lets through a period TA-Lib rejects (a SUM over 1 bar) would fail at the first bar instead."""

    o = random_ohlcv(3, 1200)
    checked = 0
    for name, field in spec.params_model.model_fields.items():
        if field.annotation is not int:
            continue
        for value in _bounds(field):
            if value is None:
                continue
            try:
                params = spec.params_model(**{name: int(value)})
            except ValueError:
                continue  # a cross-field rule (fast < slow ...) rejects it with the defaults of the others
            out = spec.compute(Context(o), params)
            assert_valid_output(out, len(o.close))
            checked += 1
    assert checked or not any(f.annotation is int for f in spec.params_model.model_fields.values())
