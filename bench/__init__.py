"""Benchmarks of ML Intern (not part of the test run): `.venv/bin/python bench/run.py`."""
