"""The throwaway PostgreSQL service: the session's server answers, fresh schemas keep tests apart, and
the server script needs nothing beyond the standard library (CI runs it with the system python3)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.services.fixtures import connect, fresh_schema, libpq_url, with_schema

SCRIPT = Path(__file__).resolve().parent / "services" / "postgres.py"


def test_server_answers(postgres_url: str) -> None:
    with connect(postgres_url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("select current_user").fetchone() == ("postgres",)


def test_fresh_schemas_are_isolated(postgres_url: str) -> None:
    first, second = fresh_schema(postgres_url), fresh_schema(postgres_url)
    first_schema, second_schema = libpq_url(first)[1], libpq_url(second)[1]
    assert first_schema is not None and second_schema is not None
    assert first_schema != second_schema
    assert first_schema.startswith("t_") and len(first_schema) == len("t_") + 8

    with connect(first) as conn:
        assert conn.execute("select current_schema()").fetchone() == (first_schema,)
        conn.execute("create table items (n integer)")
        conn.execute("insert into items values (1), (2)")
    with connect(second) as conn:
        assert conn.execute("select current_schema()").fetchone() == (second_schema,)
        assert conn.execute("select to_regclass('items')").fetchone() == (None,)
        conn.execute("create table items (n integer)")
        assert conn.execute("select count(*) from items").fetchone() == (0,)
    with connect(first) as conn:
        assert conn.execute("select count(*) from items").fetchone() == (2,)


def test_schema_parameter_round_trip() -> None:
    url = "postgresql://postgres@/audiences?host=/tmp/x%20y/socket&port=5432"
    named = with_schema(url, "t_0123abcd")
    assert named == url + "&schema=t_0123abcd"
    assert libpq_url(named) == (url, "t_0123abcd")
    assert with_schema(named, "other") == url + "&schema=other"
    assert with_schema("postgresql:///db", "s") == "postgresql:///db?schema=s"
    assert libpq_url("postgresql:///db?schema=s") == ("postgresql:///db", "s")
    assert libpq_url("postgresql:///db?schema=s&sslmode=disable") == ("postgresql:///db?sslmode=disable", "s")
    assert libpq_url(url) == (url, None)


def test_server_script_needs_only_the_standard_library() -> None:
    # -I -S: no site-packages, no user site, no PYTHON* variables; as bare as the CI machine's python3.
    result = subprocess.run([sys.executable, "-I", "-S", str(SCRIPT), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "start" in result.stdout
