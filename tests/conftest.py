"""Shared fixtures. ``shared_data`` locates the real recorded market data (``../shared/data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("PIA_SHARED_DATA", "").strip()
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real recorded candles and messages; the test skips (saying why) when it is absent."""
    path = _shared_data_dir()
    if not (path / "candles").is_dir():
        pytest.skip(f"real market data not found at {path} (set PIA_SHARED_DATA to its location)")
    return path


@pytest.fixture
def repo_root() -> Path:
    return REPO
