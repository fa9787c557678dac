"""Fakes shipped with the package, for tests and benchmarks: real classes at the seams."""
