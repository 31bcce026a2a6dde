"""Hand-run benchmarks (not part of CI): tier timings, the official-path comparison, and the compute floor.

Run them as modules from the repository root, e.g. ``.venv/bin/python -m benchmarks.tiers --quick``.
"""
