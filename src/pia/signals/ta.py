"""TA-Lib's functions for signal code, called without the Series dispatcher ``talib`` adds.

When pandas or polars is installed, ``talib.RSI`` and every other function is a Python wrapper that
looks for Series arguments before calling the C function (~1.6 µs a call; a live bar makes ~100
calls). Signal code passes numpy arrays only, so it calls the C functions here, with the same
arguments and the same results: ``ta.RSI(close, 14)``.

Use them as attributes of this module (``from pia.signals import ta``; ``ta.SMA(...)``), never
``from pia.signals.ta import SMA``: the benchmarks record the TA-Lib calls the signals make by
replacing these attributes, to replay them as the raw limit.
"""

from __future__ import annotations

import inspect
from typing import Any

import talib

MA_SMA: Any = talib.MA_Type.SMA  # type: ignore[attr-defined]
"""TA-Lib's ``matype`` for a simple moving average (Bollinger bands, stochastics)."""

FUNCTIONS: tuple[str, ...] = tuple(talib.get_functions())  # type: ignore[no-untyped-call]

for _name in FUNCTIONS:
    globals()[_name] = inspect.unwrap(getattr(talib, _name))


def __getattr__(name: str) -> Any:
    """Only reached for a name TA-Lib does not have (the functions are module globals)."""
    raise AttributeError(f"TA-Lib has no function {name!r}")
