"""Aligning timestamped external inputs (funding rates, Fear & Greed readings ...) onto bars, as of each bar's close.

The vectorised history needs one value per bar (:class:`~pia.signals.base.Inputs`): the value known
when the bar closed. :func:`align_asof` gives each bar the latest event at or before its close time,
so a bar never sees a reading published after it closed (causal).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from pia.signals.base import F64


def align_asof(
    event_ns: npt.NDArray[np.int64],
    values: npt.NDArray[np.float64],
    bar_close_ns: npt.NDArray[np.int64],
    max_age_ns: int | None = None,
) -> F64:
    """Per bar, the value of the latest event whose time is <= the bar's close time.

    ``event_ns`` (event times, int64 ns, ascending; ties: the later entry wins) and ``values`` are
    parallel arrays; ``bar_close_ns`` are the bars' close times (open time + interval), int64 ns.
    A bar gets NaN before the first event, and, when ``max_age_ns`` is given, when its latest event
    is more than ``max_age_ns`` older than the bar's close (stale input: the signal abstains).
    A NaN event value stays NaN. Raises ValueError on mismatched lengths or unsorted event times.
    """
    ev = np.asarray(event_ns, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    bars = np.asarray(bar_close_ns, dtype=np.int64)
    if ev.shape != vals.shape or ev.ndim != 1:
        raise ValueError(f"event times and values must be 1-D arrays of one length, got {ev.shape} and {vals.shape}")
    if max_age_ns is not None and max_age_ns < 0:
        raise ValueError("max_age_ns must be >= 0")
    if len(ev) > 1 and bool((np.diff(ev) < 0).any()):
        raise ValueError("event times must be sorted ascending")
    if len(ev) == 0:
        return np.full(bars.shape, np.nan)
    idx = np.searchsorted(ev, bars, side="right") - 1  # the last event with time <= close
    safe = np.maximum(idx, 0)
    fresh = idx >= 0
    if max_age_ns is not None:
        fresh &= bars - ev[safe] <= max_age_ns
    return np.where(fresh, vals[safe], np.nan)
