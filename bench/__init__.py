"""Benchmarks: each prints its figures; latest results live in docs/benchmarks.md."""
