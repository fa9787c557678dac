from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a config file into tmp_path (data_dir there too) and return its path."""

    def make(body: str, name: str = "pia.toml") -> Path:
        path = tmp_path / name
        path.write_text(
            f'[service]\ndata_dir = "{tmp_path / "data"}"\ninstruments = "{REPO / "configs" / "instruments.toml"}"\n'
            + body
        )
        return path

    return make
