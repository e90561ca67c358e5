"""Benchmarks: measured figures, runnable as ``python -m benchmarks.<name>``."""
