"""Benchmarks: ``make bench`` (``python -m benchmarks``) prints each as a table."""
