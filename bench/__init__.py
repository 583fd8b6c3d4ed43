"""Benchmarks that print figures (`make bench`); each starts its own embedded stack."""
