"""read_sql: peak memory and speed over a large result, against the naive fetchall baseline.

Run: .venv/bin/python benchmarks/bench_sql_memory.py [--rows 1000000] [--batch-size 10000]
                                                      [--db postgresql://user@host/db] [--only postgres|local]

PostgreSQL: without --db, a throwaway server is started as the tests start theirs (tests/_postgres.py:
initdb into a temporary folder; PostgreSQL must be installed). The password of a --db URL may come from
PGPASSWORD. A table of N eight-column rows (ids, emails, names, a nullable integer, a NUMERIC, a
timestamp) is created in the database (PostgreSQL), a temporary SQLite file and a DuckDB file.

Each scenario runs in its own subprocess, so peak RSS figures do not bleed into each other. It connects,
notes its RSS, reads every row of `SELECT * FROM bench_rows` as dicts, and reports rows per second and
the peak RSS (VmHWM, reset once connected; Linux) and its growth over the RSS at the start:
- read_sql with a psycopg 3 connection (server-side named cursor), a psycopg2 connection (named cursor),
  an SQLAlchemy URL (stream_results);
- baseline: psycopg's default cursor, `fetchall()` (the whole result in the client, then dicts);
- SQLite and DuckDB: read_sql against `fetchall()` on the same connection.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

QUERY = "SELECT * FROM bench_rows"
ROOT = Path(__file__).resolve().parent.parent


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    # Linux: writing 5 resets the peak RSS (VmHWM) to the current RSS. ru_maxrss would not do: it
    # survives fork and exec, so a child started by a big parent would report the parent's peak.
    Path("/proc/self/clear_refs").write_text("5")


# ------------------------------------------------------------------------------------- scenarios


def _connect(engine: str, target: str) -> Any:
    if engine == "psycopg":
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(target)
        return psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
        )
    if engine == "psycopg2":
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(target)
        return psycopg2.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, dbname=url.database
        )
    if engine == "sqlite":
        return sqlite3.connect(target)
    if engine == "duckdb":
        import duckdb

        return duckdb.connect(target, read_only=True)
    if engine == "url":  # imported here so that the figures count reading, not importing
        import sqlalchemy.dialects.postgresql.psycopg  # noqa: F401

        return target
    raise ValueError(engine)


def scenario(engine: str, method: str, batch_size: int) -> dict[str, float]:
    from autopilot_segments.sources import read_sql

    target = os.environ["BENCH_SQL_TARGET"]
    connection = _connect(engine, target)
    _reset_peak()
    base = _status_mb("VmRSS")
    started = time.perf_counter()
    count = 0
    if method == "read_sql":
        for _row in read_sql(QUERY, connection, batch_size=batch_size):
            count += 1
    else:  # the naive baseline: the driver's default cursor, everything fetched, then dicts
        cursor = connection.cursor()
        cursor.execute(QUERY)
        fetched = cursor.fetchall()
        names = [d[0] for d in cursor.description]
        for row in fetched:
            _row = dict(zip(names, row, strict=True))
            count += 1
        cursor.close()
    elapsed = time.perf_counter() - started
    if not isinstance(connection, str):
        connection.close()
    return {"rows": count, "seconds": elapsed, "base_mb": base, "peak_mb": _status_mb("VmHWM")}


def _in_subprocess(target: str, *args: Any) -> dict[str, float]:
    env = {**os.environ, "BENCH_SQL_TARGET": target, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, __file__, "--scenario", json.dumps(args)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _print_figures(title: str, runs: list[tuple[str, dict[str, float]]], rows: int) -> None:
    print(f"\n{title}")
    print(f"{'variant':<52}{'rows/s':>10}{'start':>10}{'peak RSS':>11}{'growth':>10}")
    for label, r in runs:
        assert r["rows"] == rows, (label, r["rows"])
        print(
            f"{label:<52}{r['rows'] / r['seconds']:>10,.0f}{r['base_mb']:>7.0f} MB{r['peak_mb']:>8.0f} MB"
            f"{r['peak_mb'] - r['base_mb']:>7.0f} MB"
        )


# ------------------------------------------------------------------------------------------- data


def _columns_sql(series: str) -> str:
    return (
        f"{series} AS id, 'user' || {series} || '@example.com' AS email, 'First' || {series} AS first_name, "
        f"'Last' || {series} AS last_name, 'City' || ({series} % 500) AS city, "
        f"CASE WHEN {series} % 7 = 0 THEN NULL ELSE {series} % 5 END AS tier, "
        f"CAST({series} % 100000 AS DECIMAL(10, 2)) / 4 AS spend"
    )


def _fill_postgres(url: str, rows: int) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database, autocommit=True
    ) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_rows")
        conn.execute(
            f"CREATE TABLE bench_rows AS SELECT {_columns_sql('i')}, "  # noqa: S608 - fixed text
            "timestamptz '2024-01-01' + i * interval '1 minute' AS signup "
            f"FROM generate_series(1, {int(rows)}) AS i"
        )
        conn.execute("VACUUM ANALYZE bench_rows")


def _fill_duckdb(path: Path, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute(
            f"CREATE TABLE bench_rows AS SELECT {_columns_sql('i')}, "  # noqa: S608 - fixed text
            "TIMESTAMP '2024-01-01' + i * INTERVAL 1 MINUTE AS signup FROM range(1, ? + 1) t(i)",
            [rows],
        )


def _fill_sqlite(path: Path, duck: Path) -> None:
    import duckdb

    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE bench_rows (id INTEGER, email TEXT, first_name TEXT, last_name TEXT, city TEXT, "
            "tier INTEGER, spend REAL, signup TEXT)"
        )
        with duckdb.connect(str(duck), read_only=True) as source:
            cursor = source.execute(
                "SELECT * EXCLUDE (spend, signup), spend::DOUBLE, signup::VARCHAR FROM bench_rows"
            )
            while batch := cursor.fetchmany(50_000):
                conn.executemany("INSERT INTO bench_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
    conn.close()


def _postgres(url: str | None) -> Iterator[str]:
    if url:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is None and os.environ.get("PGPASSWORD"):
            parsed = parsed.set(password=os.environ["PGPASSWORD"])
        yield parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from _postgres import postgres_server  # the tests' throwaway server

    with postgres_server() as server:
        yield server.url


# ------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--db", help="an existing PostgreSQL database (SQLAlchemy URL) instead of a throwaway server"
    )
    parser.add_argument(
        "--only", choices=["postgres", "local"], help="PostgreSQL only, or SQLite and DuckDB only"
    )
    parser.add_argument("--scenario", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print(json.dumps(scenario(*json.loads(args.scenario))))
        return

    n, batch = args.rows, args.batch_size
    print(f"read every row of an {n:,}-row, 8-column table as dicts; read_sql batch_size={batch:,}")
    if args.only in (None, "postgres"):
        for url in _postgres(args.db):
            started = time.perf_counter()
            _fill_postgres(url, n)
            print(f"(PostgreSQL table filled in {time.perf_counter() - started:.1f} s)")
            runs = [
                (label, _in_subprocess(url, engine, method, batch))
                for label, engine, method in (
                    ("read_sql, psycopg 3 connection (named cursor)", "psycopg", "read_sql"),
                    ("read_sql, psycopg2 connection (named cursor)", "psycopg2", "read_sql"),
                    ("read_sql, SQLAlchemy URL (stream_results)", "url", "read_sql"),
                    ("baseline: psycopg default cursor, fetchall()", "psycopg", "fetchall"),
                )
            ]
            _print_figures("PostgreSQL", runs, n)
    if args.only in (None, "local"):
        with tempfile.TemporaryDirectory() as tmp:
            duck, lite = Path(tmp) / "bench.duckdb", Path(tmp) / "bench.sqlite"
            _fill_duckdb(duck, n)
            _fill_sqlite(lite, duck)
            runs = [
                (label, _in_subprocess(str(path), engine, method, batch))
                for label, path, engine, method in (
                    ("read_sql, sqlite3 connection", lite, "sqlite", "read_sql"),
                    ("baseline: sqlite3 fetchall()", lite, "sqlite", "fetchall"),
                    ("read_sql, DuckDB connection", duck, "duckdb", "read_sql"),
                    ("baseline: DuckDB fetchall()", duck, "duckdb", "fetchall"),
                )
            ]
            _print_figures("SQLite and DuckDB (local files)", runs, n)


if __name__ == "__main__":
    main()
