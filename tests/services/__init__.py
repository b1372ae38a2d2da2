"""Throwaway external services for tests and CI (a PostgreSQL server, and the pytest fixtures that use it).

`tests/services/postgres.py` runs with nothing but the standard library, so CI can call it with the
system `python3` before the virtual environment exists.
"""
