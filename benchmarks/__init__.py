"""Benchmarks of sklearn-gpt2: one harness (``run.py``), one registry of job kinds (``jobs.py``)."""
