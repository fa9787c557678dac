"""Signals: pure functions over OHLCV arrays, declared in a registry, run by the signal workers."""
