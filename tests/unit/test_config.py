from __future__ import annotations

from pathlib import Path

import pytest

from pia.config import load_config
from pia.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
INSTRUMENTS = REPO / "configs" / "instruments.toml"


def write(tmp_path: Path, text: str, name: str = "pia.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def cfg(tmp_path: Path, body: str) -> Path:
    return write(tmp_path, f'[service]\ninstruments = "{INSTRUMENTS}"\n' + body)


def test_shipped_configs_are_valid() -> None:
    for name in ("default.toml", "demo.toml"):
        settings = load_config(REPO / "configs" / name, env={})
        assert len(settings.universe.instruments) == 31
        assert [t.label for t in settings.universe.timeframes] == [
            "Now",
            "12h",
            "2d",
            "7d",
            "1mo",
            "3mo",
            "6mo",
        ]
        assert [t.interval for t in settings.universe.timeframes] == [
            "15m",
            "1h",
            "4h",
            "1d",
            "3d",
            "1w",
            "1M",
        ]


def test_universe_matches_the_original_instruments() -> None:
    uni = load_config(REPO / "configs" / "default.toml", env={}).universe
    by_class: dict[str, list[str]] = {}
    for inst in uni.instruments:
        by_class.setdefault(inst.asset_class, []).append(inst.symbol)
    assert by_class["crypto"] == ["BTC-USD", "ETH-USD"]
    assert by_class["metals"] == ["XAU-USD", "XAG-USD"]
    assert len(by_class["stocks"]) == 27
    assert uni.instrument("XAU-USD").venue == "binance_futures"
    assert uni.instrument("XAU-USD").venue_symbol == "XAUUSDT"
    assert uni.instrument("BTC-USD").venue_symbol == "BTCUSDT"
    assert uni.instrument("LMT").venue == "alpaca"


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = cfg(tmp_path, "heartbeat_secs = 5\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert (
        str(err.value) == f"{path}: service.heartbeat_secs: unknown key (check the spelling; "
        "`pia config check --help` lists the sections)"
    )


def test_unknown_section(tmp_path: Path) -> None:
    path = cfg(tmp_path, "[telegarm]\ntoken = 'x'\n")
    with pytest.raises(ConfigError, match=r"pia.toml: telegarm: unknown key"):
        load_config(path, env={})


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = cfg(tmp_path, "heartbeat_seconds = 'often'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    msg = str(err.value)
    assert msg.startswith(f"{path}: service.heartbeat_seconds: ")
    assert "'often'" in msg


def test_bad_value_names_key_and_bound(tmp_path: Path) -> None:
    path = cfg(tmp_path, "[feed.simulated]\nspeed = -1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert str(err.value) == f"{path}: feed.simulated.speed: Input should be greater than or equal to 0 (got -1)"


def test_several_problems_are_one_message_with_a_line_each(tmp_path: Path) -> None:
    path = cfg(tmp_path, "[logging]\nlevel = 'LOUD'\n[store]\nbatch_max = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: logging.level: ")
    assert lines[1].startswith(f"{path}: store.batch_max: ")


def test_invalid_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[service\n")
    with pytest.raises(ConfigError, match=r"pia.toml: invalid TOML: .*line 1"):
        load_config(path, env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_missing_instruments_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\ninstruments = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"service.instruments: file not found: .*missing.toml"):
        load_config(path, env={})


def test_bad_instruments_file_names_that_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        '[[timeframe]]\nlabel = "Now"\ninterval = "7m"\n[[instrument]]\nsymbol = "BTC-USD"\n'
        'asset_class = "crypto"\nvenue = "binance_spot"\nvenue_symbol = "BTCUSDT"\nname = "Bitcoin"\n',
        "inst.toml",
    )
    path = write(tmp_path, '[service]\ninstruments = "inst.toml"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert "inst.toml: timeframes.0.interval: intraday intervals must divide a day: '7m'" in str(err.value)


def test_duplicate_instrument(tmp_path: Path) -> None:
    one = '[[instrument]]\nsymbol = "BTC-USD"\nasset_class = "crypto"\nvenue = "binance_spot"\n'
    write(
        tmp_path,
        '[[timeframe]]\nlabel = "Now"\ninterval = "15m"\n'
        + one
        + 'venue_symbol = "A"\nname = "a"\n'
        + one
        + 'venue_symbol = "B"\nname = "b"\n',
        "inst.toml",
    )
    path = write(tmp_path, '[service]\ninstruments = "inst.toml"\n')
    with pytest.raises(ConfigError, match="duplicate instrument symbol: BTC-USD"):
        load_config(path, env={})


def test_unknown_symbol_subset(tmp_path: Path) -> None:
    path = cfg(tmp_path, 'symbols = ["BTC-USD", "DOGE-USD"]\n')
    with pytest.raises(ConfigError, match=r"service.symbols: unknown instrument\(s\) DOGE-USD"):
        load_config(path, env={})


def test_symbol_subset_keeps_file_order(tmp_path: Path) -> None:
    path = cfg(tmp_path, 'symbols = ["NVDA", "BTC-USD"]\n')
    assert [i.symbol for i in load_config(path, env={}).universe.instruments] == ["BTC-USD", "NVDA"]


def test_unknown_signal_and_bad_signal_params(tmp_path: Path) -> None:
    path = cfg(tmp_path, '[signals]\nenabled = ["rsi", "rsx"]\n')
    with pytest.raises(ConfigError, match=r"signals.enabled: unknown signal\(s\) rsx \(known: rsi, macd, ema"):
        load_config(path, env={})
    path = cfg(tmp_path, "[signals.params.rsi]\nlower = 80\nupper = 20\n")
    with pytest.raises(ConfigError, match=r"signals\.params\.rsi: lower must be below upper"):
        load_config(path, env={})
    path = cfg(tmp_path, "[signals.params.macd]\nfastt = 3\n")
    with pytest.raises(ConfigError, match=r"signals\.params\.macd\.fastt: unknown parameter"):
        load_config(path, env={})


def test_replay_needs_files_that_exist(tmp_path: Path) -> None:
    path = cfg(tmp_path, '[feed]\nkind = "replay"\n')
    with pytest.raises(ConfigError, match="needs at least one"):
        load_config(path, env={})
    path = cfg(tmp_path, '[feed]\nkind = "replay"\n[[feed.replay.files]]\npath = "x.csv"\nsymbol = "BTC-USD"\n')
    with pytest.raises(ConfigError, match=r"feed.replay.files.0.path: file not found: .*x.csv"):
        load_config(path, env={})


def test_environment_overrides_and_secrets_are_masked(tmp_path: Path) -> None:
    path = cfg(tmp_path, "")
    env = {
        "PIA_DATA_DIR": str(tmp_path / "data"),
        "PIA_LOG_LEVEL": "debug",
        "PIA_TELEGRAM_TOKEN": "123:secret",
    }
    settings = load_config(path, env=env)
    assert settings.data_dir == tmp_path / "data"
    assert settings.config.logging.level == "DEBUG"
    assert settings.secrets.telegram_token is not None
    assert settings.secrets.telegram_token.get_secret_value() == "123:secret"
    assert settings.secrets.alpaca_key_id is None
    shown = repr(settings.masked()) + repr(settings)
    assert "123:secret" not in shown
    assert settings.masked()["secrets"]["PIA_TELEGRAM_TOKEN"] == "set (masked)"


def test_bad_env_log_level_is_a_config_error(tmp_path: Path) -> None:
    path = cfg(tmp_path, "")
    with pytest.raises(ConfigError, match=r"logging\.level"):
        load_config(path, env={"PIA_LOG_LEVEL": "chatty"})


def test_config_is_frozen(tmp_path: Path) -> None:
    settings = load_config(cfg(tmp_path, ""), env={})
    with pytest.raises(Exception, match="frozen"):
        settings.config.service.heartbeat_seconds = 1  # type: ignore[misc]
