"""Benchmarks: each module runs with ``python -m bench.<name>``; results go into docs/performance.md."""
