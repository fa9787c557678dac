"""Reconnect backoff: exponential with full jitter, capped, reset after a success."""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, initial: float = 1.0, factor: float = 2.0, maximum: float = 60.0, *, rng: random.Random | None = None
    ) -> None:
        if initial <= 0 or factor < 1 or maximum < initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and maximum >= initial")
        self.initial = initial
        self.factor = factor
        self.maximum = maximum
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        """Seconds to wait before the next attempt: uniform in [cap/2, cap] where cap grows each time."""
        exponent = min(self.attempts, 64)  # past this the cap is reached for any factor > 1
        cap = min(self.maximum, self.initial * self.factor**exponent)
        self.attempts += 1
        return cap / 2 + self._rng.random() * cap / 2

    def reset(self) -> None:
        self.attempts = 0
