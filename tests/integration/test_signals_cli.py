"""`pia signals`: votes and consensus from the stored bars equal the vectorised history; `--list`; errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import pytest

from pia.cli import main
from pia.config import load_config
from pia.events import BAR_DTYPE
from pia.feeds.aggregate import aggregate
from pia.intervals import parse_interval
from pia.signals.base import Ohlcv
from pia.signals.history import compute_history
from pia.signals.registry import REGISTRY
from pia.store.bars import array_rows, insert_bars
from pia.store.db import open_db, store_path
from pia.testing.signals import load_btc_5m, load_spy_daily


def bar_array(o: Ohlcv) -> np.ndarray:
    arr = np.empty(len(o.close), dtype=BAR_DTYPE)
    for name, col in zip(BAR_DTYPE.names or (), o, strict=True):
        arr[name] = col
    return arr


@pytest.fixture
def stored(make_config: Callable[[str], Path], shared_data: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A store holding real BTC candles (15m, 1h from 5m) and real SPY days as QQQ's 1d."""
    path = make_config("[signals]\n")
    settings = load_config(path, env={})
    btc5 = bar_array(load_btc_5m(shared_data))
    series = {
        ("BTC-USD", "15m"): aggregate(btc5, parse_interval("15m")),
        ("BTC-USD", "1h"): aggregate(btc5, parse_interval("1h")),
        ("QQQ", "1d"): bar_array(load_spy_daily(shared_data)),
    }
    conn = open_db(store_path(settings.data_dir, settings.config.store), settings.config.store)
    with conn:
        for (sym, iv), arr in series.items():
            insert_bars(conn, array_rows(sym, iv, arr, "test"))
    conn.close()
    return path, {f"{s} {i}": a for (s, i), a in series.items()}


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_votes_equal_the_vectorised_history(
    stored: tuple[Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, series = stored
    code, out, _ = run_cli(capsys, "signals", "BTC-USD", "--json", "--config", str(path))
    assert code == 0
    doc = orjson.loads(out)
    assert doc["symbol"] == "BTC-USD" and doc["asset_class"] == "crypto"
    signals = REGISTRY.resolve(load_config(path, env={}).config.signals)
    for label, key in (("Now", "BTC-USD 15m"), ("12h", "BTC-USD 1h")):
        tf = doc["timeframes"][label]
        arr = series[key]
        assert tf["bars"] == min(len(arr), max(500, *(s.window for s in signals)))
        want = compute_history(
            Ohlcv(*(arr[n].copy() for n in BAR_DTYPE.names or ())), signals, "crypto"
        )  # the full history, not the stored window
        votes = tf["votes"]
        assert set(votes) == set(want)
        for name, out_ in want.items():
            assert votes[name]["action"] == {1: "BUY", -1: "SELL", 0: "HOLD"}[int(out_.action[-1])], (label, name)
            assert votes[name]["confidence"] == pytest.approx(float(out_.confidence[-1]), abs=1e-4), (label, name)
        c = tf["consensus"]
        assert c["buy"] == sum(v["action"] == "BUY" for v in votes.values())
        assert c["sell"] == sum(v["action"] == "SELL" for v in votes.values())
        assert tf["last_open_ns"] == int(arr["open_time"][-1])
    # timeframes without stored bars say so instead of voting
    assert doc["timeframes"]["2d"] == {"interval": "4h", "bars": 0}
    assert doc["consensus"]["action"] in {"BUY", "SELL", "HOLD"}


def test_table_for_one_instrument_and_summary_for_all(
    stored: tuple[Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = stored
    code, out, _ = run_cli(capsys, "signals", "QQQ", "--tf", "7d", "--config", str(path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("QQQ (stocks)  consensus ")
    window = max(500, *(s.window for s in REGISTRY.resolve(load_config(path, env={}).config.signals)))
    assert re.match(rf"  7d +1d +{window} bars to 2020-08-28 00:00Z  close 350\.58  \w+ +RSI", lines[1]), lines[1]
    body = {ln.split()[0]: ln for ln in lines[3:] if ln.strip() and not ln.lstrip().startswith("signal")}
    assert "funding" in body and body["funding"].split()[-1] == "n/a"  # crypto only
    assert "rsi" in body and "trend" in body
    code, out, _ = run_cli(capsys, "signals", "--config", str(path))
    assert code == 0
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:-1]}
    assert len(rows) == 31
    assert rows["ETH-USD"].split()[-7:] == ["-"] * 7  # nothing stored
    assert rows["BTC-USD"].split()[-5:] == ["-"] * 5  # only Now and 12h stored


def test_list_shows_every_signal_with_family_and_warmup(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "signals", "--list")
    assert code == 0
    lines = out.splitlines()
    assert [ln.split()[0] for ln in lines] == REGISTRY.names()
    assert len(lines) == 25
    for ln, spec in zip(lines, REGISTRY, strict=True):
        parts = ln.split()
        assert parts[1] == spec.family
        assert parts[2:4] == ["warm-up", str(spec.warmup(spec.default_params()))]


def test_unknown_symbol_or_timeframe_is_a_usage_error(
    stored: tuple[Path, dict[str, np.ndarray]], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = stored
    code, _, err = run_cli(capsys, "signals", "DOGE-USD", "--config", str(path))
    assert code == 2 and "unknown instrument 'DOGE-USD'" in err and "BTC-USD" in err
    code, _, err = run_cli(capsys, "signals", "BTC-USD", "--tf", "5y", "--config", str(path))
    assert code == 2 and "unknown timeframe '5y'" in err and "Now" in err


def test_missing_store_is_a_clear_error(make_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = make_config("")
    code, _, err = run_cli(capsys, "signals", "BTC-USD", "--config", str(path))
    assert code == 1
    assert "store error" in err and "pia.sqlite3" in err
