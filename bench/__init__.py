"""Benchmarks of sessionware against the session middlewares users would pick instead.

Run with ``bash bench/run`` (see bench/README.md); nothing here is imported by the package.
"""
