"""Benchmarks (`make bench`). Not part of `make test`; figures go to docs/performance.md."""
