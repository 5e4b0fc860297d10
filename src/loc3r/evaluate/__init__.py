"""Metrics (DESIGN.md §5) and per-benchmark tasks."""
