from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from pia.logs import bind, setup_logging


def test_json_records_have_required_keys_extras_and_bound_context(tmp_path: Path) -> None:
    console = io.StringIO()
    handle = setup_logging(level="DEBUG", console_level="INFO", log_dir=tmp_path, console=console)
    try:
        log = logging.getLogger("pia.test")
        with bind(run_id="r1"):
            log.info("hello %s", "world", extra={"symbol": "BTC-USD", "n": 3})
        log.debug("quiet", extra={"event": "BarClosed"})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        handle.close()
    lines = [json.loads(x) for x in (tmp_path / "pia.jsonl").read_text().splitlines()]
    mine = [r for r in lines if r["logger"] == "pia.test"]
    assert [r["msg"] for r in mine] == ["hello world", "quiet", "failed"]
    first = mine[0]
    assert first["level"] == "INFO" and first["symbol"] == "BTC-USD" and first["n"] == 3 and first["run_id"] == "r1"
    assert first["ts"].endswith("Z") and "T" in first["ts"]
    assert mine[1]["event"] == "BarClosed" and "run_id" not in mine[1]
    assert "ValueError: boom" in mine[2]["exc"]
    text = console.getvalue()
    assert "hello world" in text and "symbol=BTC-USD" in text
    assert "quiet" not in text  # console is at INFO


def test_rotation_keeps_three_backups(tmp_path: Path) -> None:
    handle = setup_logging(level="INFO", log_dir=tmp_path, max_bytes=100_000, backups=3, console=io.StringIO())
    try:
        log = logging.getLogger("pia.test.rotate")
        for i in range(3000):
            log.info("x" * 100, extra={"i": i})
    finally:
        handle.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["pia.jsonl", "pia.jsonl.1", "pia.jsonl.2", "pia.jsonl.3"]
    assert all(p.stat().st_size <= 100_500 for p in tmp_path.iterdir())
