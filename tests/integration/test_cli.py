"""`pia` as a user runs it: a real subprocess, real signals, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pia import __version__

DEMO_BODY = """symbols = ["BTC-USD", "ETH-USD", "NVDA"]
heartbeat_seconds = 1
[logging]
level = "DEBUG"
[feed.simulated]
speed = 600
start = 2026-01-05T00:00:00Z
history_days = 400
[notifier.console]
show_signals = ["Now"]
"""


def pia(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pia", *args], capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload, no-any-return]


def records(log: Path) -> list[dict[str, object]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:  # the last line may be half-written while the service runs
            continue
    return out


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_version_and_help() -> None:
    assert pia("--version").stdout.strip() == f"pia {__version__}"
    top = pia("--help").stdout
    assert "run" in top and "config" in top and "PIA_DATA_DIR" in top
    run_help = pia("run", "--help").stdout
    assert "--duration SECONDS" in run_help and "--config PATH" in run_help


def test_config_check_prints_effective_config_with_secrets_masked(make_config: Callable[[str], Path]) -> None:
    path = make_config("")
    env = {**os.environ, "PIA_TELEGRAM_TOKEN": "999:very-secret"}
    res = pia("config", "check", "--config", str(path), env=env)
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["secrets"]["PIA_TELEGRAM_TOKEN"] == "set (masked)"
    assert shown["feed"]["kind"] == "simulated"
    assert len(shown["universe"]["instruments"]) == 31
    assert "very-secret" not in res.stdout + res.stderr
    assert "is valid: 31 instruments, 7 timeframes" in res.stderr


def test_bad_config_exits_2_with_one_clear_message(make_config: Callable[[str], Path]) -> None:
    path = make_config("[feed.simulated]\nspeeed = 3\n")
    for cmd in (["config", "check"], ["run"]):
        res = pia(*cmd, "--config", str(path))
        assert res.returncode == 2
        assert res.stderr == (
            f"pia: configuration error:\n{path}: feed.simulated.speeed: unknown key (check the spelling; "
            "`pia config check --help` lists the sections)\n"
        )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_on_signal_with_exit_0_and_json_logs_follow_symbol_and_event(
    make_config: Callable[[str], Path], tmp_path: Path, signum: signal.Signals
) -> None:
    path = make_config(DEMO_BODY)
    log = tmp_path / "data" / "logs" / "pia.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pia", "run", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        streamed = wait_for(
            lambda: (
                log.exists()
                and '"heartbeat"' in (text := log.read_text())
                and '"event":"ConsensusChanged"' in text
                and any(r.get("event") == "BarClosed" and r.get("interval") == "15m" for r in records(log))
            ),
            60,
        )
        assert streamed, "service never streamed"
        t = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert took < 10
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"pia stopped ({signum.name}) after ") and "bars streamed" in last

    recs = records(log)
    for r in recs:
        assert {"ts", "level", "logger", "msg"} <= r.keys()
    btc = [r for r in recs if r.get("symbol") == "BTC-USD"]
    assert {r.get("event") for r in btc} >= {"BarClosed", "SignalsComputed", "HistoryLoaded"}
    bars = [r for r in recs if r.get("event") == "BarClosed"]
    assert {r["symbol"] for r in bars} == {"BTC-USD", "ETH-USD", "NVDA"}
    assert {r["interval"] for r in bars} >= {"1m", "15m"}
    heartbeat = next(r for r in recs if r["msg"] == "heartbeat")
    assert "simulated" in heartbeat["feeds"]  # type: ignore[operator]
    assert "market.bars" in heartbeat["bus"]  # type: ignore[operator]
    assert any(r["msg"] == "stop requested" and r.get("reason") == signum.name for r in recs)

    if shutil.which("jq"):
        jq = subprocess.run(
            ["jq", "-c", 'select(.symbol == "ETH-USD" and .event == "ConsensusChanged") | .action', str(log)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert jq.stdout.strip(), "jq found no ConsensusChanged for ETH-USD"


@pytest.mark.parametrize("duration", ["2"])
def test_run_duration_stops_cleanly(make_config: Callable[[str], Path], duration: str) -> None:
    path = make_config(DEMO_BODY)
    t = time.monotonic()
    res = pia("run", "--config", str(path), "--duration", duration)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("pia stopped (duration reached) after 2.")
    assert time.monotonic() - t < 30
    assert pia("run", "--config", str(path), "--duration", "-1").returncode == 2
