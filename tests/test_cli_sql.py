"""`autopilot-segments export --sql QUERY --db URL`, run as a real subprocess: SQLite and a real PostgreSQL
server into a sandbox; the database password never shows in output, errors, logs or the report."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
import psycopg
import pytest
from _postgres import PostgresServer

from autopilot_segments.sandbox import Sandbox

KEY_ENV = "AUTOPILOT_API_KEY"
DB_ENV = "AUTOPILOT_SEGMENTS_DB_URL"
ROWS = 40


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sql") / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, email TEXT, first_name TEXT, points INTEGER)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(i, f"user{i}@example.com", f"First{i}", i * 10) for i in range(ROWS)]
            + [(ROWS, "not-an-email", "Nobody", 0)],
        )
    conn.close()
    return path


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> PostgresServer:
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS cli_customers")
        conn.execute(
            "CREATE TABLE cli_customers AS SELECT i AS id, 'pg' || i || '@example.com' AS email, "
            "'First' || i AS first_name, i * 10 AS points FROM generate_series(0, 39) AS i"
        )
    return postgres


def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_together(list(args), env=env)[0]


def run_together(
    *commands: Sequence[str], env: Mapping[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands started at once, to keep the wall time of the suite down."""
    base = {name: value for name, value in os.environ.items() if name not in (KEY_ENV, DB_ENV, "PGPASSWORD")}
    started = [
        (
            list(command),
            subprocess.Popen(
                [sys.executable, "-m", "autopilot_segments", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**base, **(env or {})},
            ),
        )
        for command in commands
    ]
    results = []
    for command, process in started:
        stdout, stderr = process.communicate(timeout=90)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def export_args(sandbox: Sandbox, segment: str, *extra: str) -> list[str]:
    return [
        "export",
        "--segment",
        segment,
        "--email-column",
        "email",
        "--field",
        "FirstName=first_name",
        "--custom",
        "Points:integer=points",
        "--base-url",
        sandbox.url,
        "--no-progress",
        *extra,
    ]


def members(sandbox: Sandbox, segment: str) -> set[str]:
    (list_id,) = [lid for lid, title in sandbox.lists if title == segment]
    return sandbox.list_members(list_id)


def assert_usage_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, (result.args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(("autopilot-segments: error: ", "autopilot-segments export: error: ")), lines[
        0
    ]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# ------------------------------------------------------------------------------------------- SQLite


def test_export_a_sqlite_query(sandbox: Sandbox, shop: Path, tmp_path: Path) -> None:
    query_file = tmp_path / "vip.sql"
    query_file.write_text(
        "-- the VIPs\nSELECT email, first_name, points\n  FROM customers\n WHERE id BETWEEN 20 AND 39;\n"
    )
    report_path = tmp_path / "report.json"
    env = {KEY_ENV: sandbox.api_key}
    inline, from_file = run_together(
        [*export_args(sandbox, "SQL inline"), "--sql", "SELECT * FROM customers", "--db", f"sqlite:///{shop}",
         "--json", "--report", str(report_path)],
        [*export_args(sandbox, "SQL file"), "--sql-file", str(query_file), "--db", f"sqlite:///{shop}"],
        env=env,
    )  # fmt: skip
    assert inline.returncode == 1, inline.stderr  # the one bad email
    report = json.loads(inline.stdout)
    assert (report["total_rows"], report["exported"]) == (ROWS + 1, ROWS)
    assert [r["reason"] for r in report["rejected"]] == ["invalid_email"]
    assert members(sandbox, "SQL inline") == {f"user{i}@example.com" for i in range(ROWS)}
    assert sandbox.contacts["user7@example.com"]["FirstName"] == "First7"

    assert from_file.returncode == 0, from_file.stderr
    assert members(sandbox, "SQL file") == {f"user{i}@example.com" for i in range(20, ROWS)}


def test_export_a_duckdb_query(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE customers AS SELECT 'duck' || i || '@example.com' AS email, "
            "'First' || i AS first_name, i * 10 AS points FROM range(25) t(i)"
        )
    result = run(
        *export_args(sandbox, "SQL duckdb"), "--sql", "SELECT * FROM customers", "--db", f"duckdb:///{path}",
        env={KEY_ENV: sandbox.api_key},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert members(sandbox, "SQL duckdb") == {f"duck{i}@example.com" for i in range(25)}


def test_a_failing_query_sends_nothing(sandbox: Sandbox, shop: Path) -> None:
    result = run(
        *export_args(sandbox, "SQL broken"),
        "--sql",
        "SELECT email, first_name, points, 1 / (id - 30) AS boom FROM customers WHERE nope = 1",
        "--db",
        f"sqlite:///{shop}",
        env={KEY_ENV: sandbox.api_key},
    )
    assert_usage_error(
        result, "SQL query 'SELECT email", "failed", "no such column: nope", "nothing was sent"
    )
    assert "fix the query" in result.stderr
    assert "SQL broken" not in [title for _, title in sandbox.lists]


def test_a_dry_run_plans_the_query(sandbox: Sandbox, shop: Path) -> None:
    result = run(
        *export_args(sandbox, "SQL dry"), "--sql", "SELECT * FROM customers", "--db", f"sqlite:///{shop}",
        "--dry-run", "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["exported"] == ROWS
    assert "SQL dry" not in [title for _, title in sandbox.lists]


def test_usage_errors(sandbox: Sandbox, shop: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{shop}"
    results = run_together(
        export_args(sandbox, "x"),
        [*export_args(sandbox, "x"), str(tmp_path / "a.csv"), "--sql", "SELECT 1", "--db", db],
        [*export_args(sandbox, "x"), str(tmp_path / "a.csv"), "--db", db],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1"],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1", "--db", db, "--entity", "Contact"],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1", "--sql-file", "q.sql", "--db", db],
        [*export_args(sandbox, "x"), "--sql", " ; ", "--db", db],
        [*export_args(sandbox, "x"), "--sql-file", str(tmp_path / "missing.sql"), "--db", db],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1", "--db", "not a url hunter2"],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1", "--db", "postgresql://ada:hunter2@db.example.com/crm"],
        [*export_args(sandbox, "x"), "--sql", "SELECT 1", "--db", db, "--db-password-env", "NO_SUCH_VAR_X"],
        env={KEY_ENV: sandbox.api_key},
    )  # fmt: skip
    expected = [
        ("say what to export: a SOURCE file, or --sql QUERY with --db URL",),
        ("give a SOURCE file or --sql/--sql-file, not both",),
        ("--db goes with --sql or --sql-file",),
        ("--sql needs the database: --db URL, or the AUTOPILOT_SEGMENTS_DB_URL environment variable",),
        ("--entity describes a SOURCE file; it does not apply to --sql",),
        ("give the query once: --sql QUERY or --sql-file FILE",),
        ("the SQL query is empty",),
        ("--sql-file", "missing.sql: No such file or directory"),
        ("--db is not a database URL",),
        ("--db holds a password, which would land in shell history", "AUTOPILOT_SEGMENTS_DB_URL"),
        ("--db-password-env NO_SUCH_VAR_X: that environment variable is not set",),
    ]
    for result, fragments in zip(results, expected, strict=True):
        assert_usage_error(result, *fragments)
        assert "hunter2" not in result.stdout + result.stderr
    assert "x" not in [title for _, title in sandbox.lists]


# ----------------------------------------------------------------------------------------- PostgreSQL


def test_export_a_postgres_query_with_the_url_from_the_environment(
    sandbox: Sandbox, pg: PostgresServer, tmp_path: Path
) -> None:
    report_path, rejections_path = tmp_path / "report.json", tmp_path / "rejected.csv"
    result = run(
        *export_args(sandbox, "PG env"), "--sql", "SELECT email, first_name, points FROM cli_customers",
        "--report", str(report_path), "--rejections", str(rejections_path), "--debug",
        env={KEY_ENV: sandbox.api_key, DB_ENV: pg.url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert members(sandbox, "PG env") == {f"pg{i}@example.com" for i in range(40)}
    assert sandbox.contacts["pg3@example.com"]["FirstName"] == "First3"
    assert "DEBUG" in result.stderr  # --debug logged, and still no password
    for text in (result.stdout, result.stderr, report_path.read_text(), rejections_path.read_text()):
        assert pg.password not in text


def test_export_a_postgres_query_with_the_password_from_a_named_variable(
    sandbox: Sandbox, pg: PostgresServer
) -> None:
    result = run(
        *export_args(sandbox, "PG password env"), "--sql", "SELECT * FROM cli_customers WHERE id < 10",
        "--db", pg.url_without_password(), "--db-password-env", "CRM_DB_PASSWORD", "--json",
        env={KEY_ENV: sandbox.api_key, "CRM_DB_PASSWORD": pg.password},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exported"] == 10
    assert members(sandbox, "PG password env") == {f"pg{i}@example.com" for i in range(10)}
    assert pg.password not in result.stdout + result.stderr


def test_postgres_errors_never_show_the_password(sandbox: Sandbox, pg: PostgresServer) -> None:
    wrong = "Wr0ng-" + pg.password
    bad_password = run(
        *export_args(sandbox, "PG refused"), "--sql", "SELECT * FROM cli_customers",
        env={KEY_ENV: sandbox.api_key, DB_ENV: pg.url.replace(pg.password, wrong)},
    )  # fmt: skip
    bad_query, bad_query_json = run_together(
        [*export_args(sandbox, "PG refused"), "--sql", "SELECT nope FROM cli_customers", "--debug"],
        [*export_args(sandbox, "PG refused"), "--sql", "SELECT nope FROM cli_customers", "--json"],
        env={KEY_ENV: sandbox.api_key, DB_ENV: pg.url},
    )
    assert_usage_error(bad_password, "password authentication failed", f"{pg.user}:***@127.0.0.1")
    for result in (bad_query, bad_query_json):
        assert result.returncode == 2, result.stderr
        assert 'column "nope" does not exist' in result.stderr
    assert json.loads(bad_query_json.stdout)["error"]["code"] == "configuration"
    for result in (bad_password, bad_query, bad_query_json):
        assert wrong not in result.stdout + result.stderr
        assert pg.password not in result.stdout + result.stderr
    assert "PG refused" not in [title for _, title in sandbox.lists]
