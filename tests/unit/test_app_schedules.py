"""The service warns at start when a shipped economic schedule has run out or soon will."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pia.app import build
from pia.clock import FakeClock
from pia.config import load_config
from pia.signals.schedules import default_schedules

REPO = Path(__file__).resolve().parents[2]


def app_at(when: datetime, tmp_path: Path, enabled: str = "") -> object:
    cfg = tmp_path / "pia.toml"
    cfg.write_text(
        f'[service]\ndata_dir = "{tmp_path}"\ninstruments = "{REPO / "configs" / "instruments.toml"}"\n'
        f'[feed]\nkind = "simulated"\n{enabled}'
    )
    return build(
        load_config(cfg, env={}), clock=FakeClock(int(when.timestamp()) * 1_000_000_000), console=io.StringIO()
    )


def warnings_for(app: object, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pia.app"):
        app._warn_about_schedules()  # type: ignore[attr-defined]
    return {r.schedule: r.getMessage() for r in caplog.records}  # type: ignore[attr-defined]


def test_run_out_and_soon_to_run_out_schedules_are_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = default_schedules()
    cpi_end = s.runs_out("cpi")
    after = datetime(cpi_end.year, cpi_end.month, cpi_end.day, tzinfo=UTC).replace(year=cpi_end.year + 1)
    got = warnings_for(app_at(after, tmp_path), caplog)
    assert "has run out" in got["cpi"] and "has run out" in got["nfp"]
    fomc_end = s.runs_out("fomc")
    soon = datetime(fomc_end.year, fomc_end.month, fomc_end.day, tzinfo=UTC).replace(day=1)
    if (fomc_end - soon.date()).days > 30 or soon.date() <= cpi_end:
        pytest.skip("schedule dates do not allow this case")
    got = warnings_for(app_at(soon, tmp_path), caplog)
    assert "runs out soon" in got["fomc"]


def test_no_warning_while_schedules_are_current_or_unused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = default_schedules()
    first = min(s.runs_out(k) for k in s.kinds)
    early = datetime(first.year - 1, 1, 15, tzinfo=UTC)
    assert warnings_for(app_at(early, tmp_path), caplog) == {}
    after = datetime(first.year + 5, 1, 1, tzinfo=UTC)
    unused = app_at(after, tmp_path, '[signals]\nenabled = ["rsi", "macd", "ema"]\n')
    assert warnings_for(unused, caplog) == {}
