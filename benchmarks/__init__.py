"""Benchmarks, run by ``nox -s bench`` (``python -m benchmarks [NAME ...]``).

Each module has a ``main()`` that prints its figures and, for each, the ratio against a baseline
measured in the same run on the same machine, so the numbers travel between machines.
"""
