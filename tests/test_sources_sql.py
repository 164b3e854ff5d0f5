"""`read_sql` against real engines that need no server: SQLite (sqlite3 and SQLAlchemy) and DuckDB.

PostgreSQL (psycopg, psycopg2, SQLAlchemy) is in test_sources_postgres.py.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy
from _exporting import make_client, make_mapping
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import AutopilotError, Exporter, SourceError
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import read_sql

SEGMENT = "SQL segment"


def sqlite_db(path: Path, rows: int = 5) -> Path:
    """A SQLite file with a `customers` table of `rows` rows (every 3rd has no tier)."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, Email TEXT, first_name TEXT, tier INTEGER)"
        )
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(i, f"user{i}@example.com", f"First{i}", None if i % 3 == 0 else i % 4) for i in range(rows)],
        )
    conn.close()
    return path


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(sqlite_db(tmp_path / "shop.db"))
    yield connection
    connection.close()


# ------------------------------------------------------------------------------------------- sqlite3


def test_sqlite_rows_are_dicts_keyed_by_column_name_with_none_for_null(conn: sqlite3.Connection) -> None:
    rows = list(read_sql("SELECT id, Email, tier FROM customers WHERE id < 4 ORDER BY id", conn))
    assert rows == [
        {"id": 0, "Email": "user0@example.com", "tier": None},
        {"id": 1, "Email": "user1@example.com", "tier": 1},
        {"id": 2, "Email": "user2@example.com", "tier": 2},
        {"id": 3, "Email": "user3@example.com", "tier": None},
    ]


def test_sqlite_params_in_the_drivers_own_paramstyle(conn: sqlite3.Connection) -> None:
    qmark = read_sql("SELECT id FROM customers WHERE id IN (?, ?) ORDER BY id", conn, params=(1, 3))
    named = read_sql("SELECT id FROM customers WHERE id >= :low ORDER BY id", conn, params={"low": 3})
    assert list(qmark) == [{"id": 1}, {"id": 3}]
    assert list(named) == [{"id": 3}, {"id": 4}]


def test_the_query_runs_on_the_first_row_not_at_the_call(conn: sqlite3.Connection) -> None:
    rows = read_sql("SELECT name FROM later", conn)  # no such table yet: nothing has run
    conn.execute("CREATE TABLE later (name TEXT)")
    conn.execute("INSERT INTO later VALUES ('x')")
    assert list(rows) == [{"name": "x"}]


def test_a_failing_query_is_a_source_error_naming_the_query_and_the_driver_error(
    conn: sqlite3.Connection,
) -> None:
    rows = read_sql("SELECT nope FROM customers", conn)
    with pytest.raises(SourceError) as caught:
        next(rows)
    message = str(caught.value)
    assert "SQL query 'SELECT nope FROM customers' failed" in message
    assert "OperationalError: no such column: nope" in message
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert isinstance(caught.value, AutopilotError)


def test_the_query_shown_in_errors_is_one_line_and_shortened(conn: sqlite3.Connection) -> None:
    conditions = " AND ".join(f"id <> {i}" for i in range(100))
    query = f"SELECT nope\n  FROM customers\n WHERE {conditions}"  # noqa: S608
    with pytest.raises(SourceError) as caught:
        list(read_sql(query, conn))
    message = str(caught.value)
    assert "SQL query 'SELECT nope FROM customers WHERE id <> 0 AND" in message
    assert "...' failed" in message
    assert "id <> 99" not in message


def test_a_statement_without_a_result_set_is_a_source_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(SourceError, match="returned no result set"):
        list(read_sql("UPDATE customers SET tier = 1", conn))


def test_duplicate_column_names_are_a_source_error_asking_for_as(conn: sqlite3.Connection) -> None:
    query = "SELECT c.id, d.id FROM customers c JOIN customers d ON c.id = d.id"
    with pytest.raises(
        SourceError, match=r"column 'id' appears twice \(columns 1 and 2\).*distinct names with AS"
    ):
        list(read_sql(query, conn))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", None), "non-empty string"),
        (("   ", None), "non-empty string"),
        ((None, None), "non-empty string"),
        (
            ("SELECT 1", 42),
            "needs a DB-API connection, an SQLAlchemy Engine or Connection, or a database URL",
        ),
        (("SELECT 1", Path("shop.db")), "got PosixPath"),
    ],
)
def test_bad_arguments_fail_at_the_call(arguments: tuple[Any, Any], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        read_sql(*arguments)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "10"])
def test_batch_size_must_be_a_positive_integer(conn: sqlite3.Connection, batch_size: Any) -> None:
    with pytest.raises(SourceError, match="batch_size must be an integer >= 1"):
        read_sql("SELECT 1", conn, batch_size=batch_size)


def test_the_connections_row_factory_does_not_change_the_rows(conn: sqlite3.Connection) -> None:
    expected = [{"id": 1, "Email": "user1@example.com"}]
    query = "SELECT id, Email FROM customers WHERE id = 1"
    conn.row_factory = sqlite3.Row
    assert list(read_sql(query, conn)) == expected
    conn.row_factory = lambda cursor, row: {d[0]: v for d, v in zip(cursor.description, row, strict=True)}
    assert list(read_sql(query, conn)) == expected
    conn.row_factory = lambda cursor, row: {
        d[0].upper(): v for d, v in zip(cursor.description, row, strict=True)
    }
    with pytest.raises(
        SourceError, match=r"row factory returns rows keyed \['EMAIL', 'ID'\], not by the column"
    ):
        list(read_sql(query, conn))
    conn.row_factory = None
    assert list(read_sql(query, conn)) == expected


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(st.none(), st.text()),
            st.one_of(st.none(), st.floats(allow_nan=False)),
            st.one_of(st.none(), st.binary(max_size=8)),
        ),
        max_size=60,
    ),
    batch_size=st.integers(1, 25),
)
def test_every_row_comes_back_exactly_once_in_order_whatever_the_batch_size(
    values: list[tuple[Any, ...]], batch_size: int
) -> None:
    with sqlite3.connect(":memory:") as conn:
        conn.execute("CREATE TABLE t (n INTEGER, s TEXT, f REAL, b BLOB)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", values)
        rows = list(read_sql("SELECT n, s, f, b FROM t ORDER BY rowid", conn, batch_size=batch_size))
    conn.close()
    assert rows == [dict(zip("nsfb", row, strict=True)) for row in values]


# ------------------------------------------------------------------- any DB-API driver: cursor handling


class RecordingConnection:
    """A DB-API connection of an unknown driver (wrapping sqlite3) that records what is done with it."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner
        self.cursors: list[RecordingCursor] = []
        self.closed = False

    def cursor(self) -> RecordingCursor:
        cursor = RecordingCursor(self.inner.cursor())
        self.cursors.append(cursor)
        return cursor

    def close(self) -> None:
        self.closed = True


class RecordingCursor:
    def __init__(self, inner: sqlite3.Cursor) -> None:
        self.inner = inner
        self.arraysize = 1
        self.fetch_sizes: list[int] = []
        self.executed: list[tuple[Any, ...]] = []
        self.closed = False

    @property
    def description(self) -> Any:
        return self.inner.description

    def execute(self, *args: Any) -> None:
        self.executed.append(args)
        self.inner.execute(*args)

    def fetchmany(self, size: int) -> list[Any]:
        self.fetch_sizes.append(size)
        return self.inner.fetchmany(size)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def test_any_driver_rows_are_fetched_batch_by_batch_and_the_cursor_closed_when_exhausted(
    conn: sqlite3.Connection,
) -> None:
    recording = RecordingConnection(conn)
    rows = read_sql("SELECT id FROM customers ORDER BY id", recording, batch_size=2)
    assert recording.cursors == []  # lazy
    assert [row["id"] for row in rows] == [0, 1, 2, 3, 4]
    (cursor,) = recording.cursors
    assert cursor.executed == [("SELECT id FROM customers ORDER BY id",)]  # no params: none passed
    assert cursor.fetch_sizes == [2, 2, 2, 2]  # 2 + 2 + 1, then the empty batch
    assert cursor.arraysize == 2
    assert cursor.closed
    assert not recording.closed  # the caller's connection stays open


def test_any_driver_closing_the_generator_early_closes_the_cursor(conn: sqlite3.Connection) -> None:
    recording = RecordingConnection(conn)
    rows = read_sql("SELECT id FROM customers WHERE id > ?", recording, params=(0,), batch_size=2)
    assert next(rows) == {"id": 1}
    (cursor,) = recording.cursors
    assert cursor.executed == [("SELECT id FROM customers WHERE id > ?", (0,))]
    assert not cursor.closed
    rows.close()
    assert cursor.closed
    assert not recording.closed
    assert cursor.fetch_sizes == [2]  # nothing read beyond the first batch


def test_any_driver_a_failing_fetch_still_closes_the_cursor(conn: sqlite3.Connection) -> None:
    class Broken(RecordingCursor):
        def fetchmany(self, size: int) -> list[Any]:
            raise sqlite3.DatabaseError("disk I/O error")

    recording = RecordingConnection(conn)
    recording.cursor = lambda: recording.cursors.append(Broken(conn.cursor())) or recording.cursors[-1]  # type: ignore[method-assign]
    with pytest.raises(SourceError, match=r"failed while reading rows: DatabaseError: disk I/O error"):
        list(read_sql("SELECT id FROM customers", recording))
    assert recording.cursors[0].closed


# ------------------------------------------------------------------------------- SQLAlchemy (SQLite)


def test_sqlite_through_a_url_an_engine_and_a_connection(tmp_path: Path) -> None:
    db = sqlite_db(tmp_path / "shop.db")
    query = "SELECT id, Email FROM customers WHERE id < :n ORDER BY id"
    expected = [{"id": 0, "Email": "user0@example.com"}, {"id": 1, "Email": "user1@example.com"}]
    assert list(read_sql(query, f"sqlite:///{db}", params={"n": 2})) == expected
    assert list(read_sql(query, sqlalchemy.engine.make_url(f"sqlite:///{db}"), params={"n": 2})) == expected
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    assert list(read_sql(query, engine, params={"n": 2}, batch_size=1)) == expected
    with engine.connect() as connection:
        assert list(read_sql(query, connection, params={"n": 2})) == expected
        assert not connection.closed  # the caller's connection stays open
        assert connection.execute(sqlalchemy.text("SELECT count(*) FROM customers")).scalar() == 5
    engine.dispose()


def test_sqlalchemy_streams_with_yield_per_and_closes_its_connection(tmp_path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{sqlite_db(tmp_path / 'shop.db', rows=7)}")
    seen: list[dict[str, Any]] = []
    checkouts: list[str] = []
    sqlalchemy.event.listen(engine, "checkout", lambda *_: checkouts.append("out"))
    sqlalchemy.event.listen(engine, "checkin", lambda *_: checkouts.append("in"))
    sqlalchemy.event.listen(
        engine,
        "before_cursor_execute",
        lambda conn, cur, stmt, par, ctx, many: seen.append(dict(ctx.execution_options)),
    )
    rows = read_sql("SELECT id FROM customers", engine, batch_size=3)
    assert checkouts == []  # lazy
    assert next(rows) == {"id": 0}
    assert checkouts == ["out"]
    assert seen[0]["stream_results"] is True
    assert seen[0]["yield_per"] == 3
    rows.close()
    assert checkouts == ["out", "in"]  # closing the rows returns the connection read_sql opened
    engine.dispose()


def test_a_failing_query_through_sqlalchemy_does_not_show_the_parameters(tmp_path: Path) -> None:
    url = f"sqlite:///{sqlite_db(tmp_path / 'shop.db')}"
    rows = read_sql(
        "SELECT nope FROM customers WHERE Email = :email", url, params={"email": "ada@example.com"}
    )
    with pytest.raises(SourceError) as caught:
        list(rows)
    message = str(caught.value)
    assert message.startswith("SQL query 'SELECT nope FROM customers WHERE Email = :email' failed: ")
    assert "no such column: nope" in message
    assert "ada@example.com" not in message  # SQLAlchemy's own message would list the parameters


def test_a_url_that_cannot_be_used_fails_at_the_call_without_the_password() -> None:
    with pytest.raises(SourceError, match="not a database URL") as caught:
        read_sql("SELECT 1", "not a url at all with hunter2")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(SourceError) as caught:
        read_sql("SELECT 1", "nosuchdb://ada:hunter2@db.example.com/shop")
    assert str(caught.value).startswith("cannot use database URL nosuchdb://ada:***@db.example.com/shop: ")
    assert "hunter2" not in str(caught.value)


def test_a_bare_postgresql_url_uses_psycopg_3(tmp_path: Path) -> None:
    from autopilot_segments.sources._sql import _engine_from_url

    for url in ("postgresql://ada:pw@db.example.com/shop", "postgres://ada:pw@db.example.com/shop"):
        engine, secret = _engine_from_url(url)
        assert engine.url.drivername == "postgresql+psycopg"
        assert secret == "pw"
    engine, _ = _engine_from_url("postgresql+psycopg2://ada@db.example.com/shop")
    assert engine.url.drivername == "postgresql+psycopg2"  # an explicit driver is kept


# ---------------------------------------------------------------------------------------------- DuckDB


@pytest.fixture
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE customers AS SELECT i AS id, 'user' || i || '@example.com' AS Email, "
        "CAST(i * 1.25 AS DECIMAL(10, 2)) AS spend, DATE '2024-01-01' + CAST(i AS INTEGER) AS since, "
        "CASE WHEN i % 3 = 0 THEN NULL ELSE 'First' || i END AS first_name FROM range(10) t(i)"
    )
    yield connection
    connection.close()


def test_duckdb_rows_keep_decimals_dates_and_nulls(duck: duckdb.DuckDBPyConnection) -> None:
    rows = list(read_sql("SELECT * FROM customers WHERE id < ? ORDER BY id", duck, params=[2]))
    assert rows == [
        {"id": 0, "Email": "user0@example.com", "spend": Decimal("0.00"), "since": dt.date(2024, 1, 1)}
        | {"first_name": None},
        {"id": 1, "Email": "user1@example.com", "spend": Decimal("1.25"), "since": dt.date(2024, 1, 2)}
        | {"first_name": "First1"},
    ]


def test_duckdb_two_queries_read_side_by_side_on_one_connection(duck: duckdb.DuckDBPyConnection) -> None:
    evens = read_sql("SELECT id FROM customers WHERE id % 2 = 0 ORDER BY id", duck, batch_size=2)
    odds = read_sql("SELECT id FROM customers WHERE id % 2 = 1 ORDER BY id", duck, batch_size=2)
    pairs = [(even["id"], odd["id"]) for even, odd in zip(evens, odds, strict=True)]
    assert pairs == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert duck.execute("SELECT count(*) FROM customers").fetchone() == (10,)  # still open


def test_duckdb_errors_are_source_errors(duck: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(SourceError, match=r"SQL query 'SELECT nope FROM customers' failed: BinderException"):
        list(read_sql("SELECT nope FROM customers", duck))


def duckdb_file(path: Path, rows: int = 10) -> Path:
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "CREATE TABLE customers AS SELECT i AS id, 'user' || i || '@example.com' AS Email, "
            "CAST(i * 1.25 AS DECIMAL(10, 2)) AS spend FROM range(?) t(i)",
            [rows],
        )
    return path


def test_a_duckdb_url_opens_the_file_read_only_when_read_and_closes_it(tmp_path: Path) -> None:
    path = duckdb_file(tmp_path / "shop.duckdb")
    rows = read_sql(
        "SELECT id, spend FROM customers WHERE id >= ? ORDER BY id", f"duckdb:///{path}", params=[8]
    )
    duckdb.connect(str(path)).close()  # nothing opened yet: a writer can still open the file
    assert next(rows) == {"id": 8, "spend": Decimal("10.00")}
    with pytest.raises(duckdb.Error):  # now read_sql holds it (read-only)
        duckdb.connect(str(path))
    assert list(rows) == [{"id": 9, "spend": Decimal("11.25")}]
    duckdb.connect(str(path)).close()  # closed once the rows ran out

    url = sqlalchemy.engine.make_url(f"duckdb:///{path}")
    assert list(read_sql("SELECT count(*) AS n FROM customers", url)) == [{"n": 10}]
    assert list(read_sql("SELECT 42 AS answer", "duckdb:///:memory:")) == [{"answer": 42}]
    assert list(read_sql("SELECT 42 AS answer", "duckdb://")) == [{"answer": 42}]
    with pytest.raises(SourceError, match=r"failed: .*read-only"):
        list(read_sql("CREATE TABLE other AS SELECT 1 AS one", f"duckdb:///{path}"))


def test_a_duckdb_url_closed_early_releases_the_file(tmp_path: Path) -> None:
    path = duckdb_file(tmp_path / "shop.duckdb")
    rows = read_sql("SELECT id FROM customers", f"duckdb:///{path}", batch_size=2)
    next(rows)
    rows.close()
    duckdb.connect(str(path)).close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("duckdb:///missing.duckdb", "no DuckDB database file missing.duckdb"),
        ("duckdb:///shop.duckdb?access_mode=READ_WRITE", "a DuckDB URL is duckdb:///relative/path.duckdb"),
        ("duckdb:/shop.duckdb", "a DuckDB URL is duckdb:///relative/path.duckdb"),
    ],
)
def test_a_bad_duckdb_url_fails_at_the_call(url: str, message: str) -> None:
    with pytest.raises(SourceError, match=re.escape(message)):
        read_sql("SELECT 1", url)


def test_a_file_that_is_not_duckdb_is_a_source_error_on_the_first_row(tmp_path: Path) -> None:
    path = tmp_path / "not.duckdb"
    path.write_text("email\nada@example.com\n")
    rows = read_sql("SELECT 1", f"duckdb:///{path}")
    with pytest.raises(SourceError, match=f"cannot open the DuckDB database {re.escape(str(path))}"):
        next(rows)


# ------------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("engine", ["sqlite3", "sqlalchemy-sqlite", "duckdb"])
def test_a_query_exports_to_the_sandbox(tmp_path: Path, engine: str) -> None:
    query = "SELECT Email, first_name, tier FROM customers ORDER BY id"
    if engine == "duckdb":
        source: Any = duckdb.connect()
        source.execute(
            "CREATE TABLE customers AS SELECT i AS id, 'user' || i || '@example.com' AS Email, "
            "'First' || i AS first_name, CASE WHEN i % 3 = 0 THEN NULL ELSE i % 4 END AS tier "
            "FROM range(250) t(i)"
        )
    elif engine == "sqlite3":
        source = sqlite3.connect(sqlite_db(tmp_path / "a.db", 250))
    else:
        source = f"sqlite:///{sqlite_db(tmp_path / 'a.db', 250)}"
    with Sandbox() as sb:
        report = Exporter(make_client(sb), make_mapping()).export(
            read_sql(query, source, batch_size=64), segment=SEGMENT
        )
        assert report.exported == 250
        assert report.rejected == ()
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == {f"user{i}@example.com" for i in range(250)}
        assert sb.contacts["user7@example.com"]["FirstName"] == "First7"
    if not isinstance(source, str):
        source.close()


def test_reading_sqlite_imports_no_optional_library() -> None:
    code = (
        "import sqlite3, sys\n"
        "from autopilot_segments.sources import read_sql\n"
        "conn = sqlite3.connect(':memory:')\n"
        "assert list(read_sql('SELECT 1 AS one', conn)) == [{'one': 1}]\n"
        "optional = ('sqlalchemy', 'psycopg', 'psycopg2', 'duckdb', 'pandas', 'pyarrow')\n"
        "print(sorted(m for m in optional if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]"
