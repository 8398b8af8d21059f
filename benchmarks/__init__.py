"""Benchmark scripts: run each as ``.venv/bin/python benchmarks/NAME.py``."""
