"""A bounded numpy window of closed bars for one (symbol, interval).

Columns live in arrays of twice the capacity; appends write at the end and, when the end is
reached, the newest ``capacity - 1`` bars are moved to the front. Appends are amortised O(1) and
:meth:`view` is always a set of contiguous slices (no copy), which TA-Lib reads directly.
"""

from __future__ import annotations

import numpy as np

from pia.events import Bar
from pia.feeds.base import BarArray
from pia.signals.base import Ohlcv

_FIELDS = ("open", "high", "low", "close", "volume")


class BarWindow:
    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError("window capacity must be at least 2")
        self.capacity = capacity
        size = 2 * capacity
        self._time = np.zeros(size, dtype=np.int64)
        self._cols = {f: np.zeros(size, dtype=np.float64) for f in _FIELDS}
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_open_time(self) -> int | None:
        return int(self._time[self._end - 1]) if self._end > self._start else None

    def append(self, bar: Bar) -> bool:
        """Add a closed bar; False (and nothing changes) if it is not newer than the last one."""
        last = self.last_open_time
        if last is not None and bar.open_time <= last:
            return False
        if self._end == len(self._time):
            self._compact()
        i = self._end
        self._time[i] = bar.open_time
        c = self._cols
        c["open"][i] = bar.open
        c["high"][i] = bar.high
        c["low"][i] = bar.low
        c["close"][i] = bar.close
        c["volume"][i] = bar.volume
        self._end += 1
        if self._end - self._start > self.capacity:
            self._start += 1
        return True

    def load(self, bars: BarArray) -> int:
        """Replace the contents with the newest ``capacity`` of ``bars`` (oldest first); returns the count."""
        tail = bars[-self.capacity :]
        n = len(tail)
        self._time[:n] = tail["open_time"]
        for f in _FIELDS:
            self._cols[f][:n] = tail[f]
        self._start, self._end = 0, n
        return n

    def _compact(self) -> None:
        keep = self.capacity - 1
        lo = self._end - keep
        self._time[:keep] = self._time[lo : self._end]
        for col in self._cols.values():
            col[:keep] = col[lo : self._end]
        self._start, self._end = 0, keep

    def view(self) -> Ohlcv:
        s, e = self._start, self._end
        c = self._cols
        return Ohlcv(self._time[s:e], c["open"][s:e], c["high"][s:e], c["low"][s:e], c["close"][s:e], c["volume"][s:e])
