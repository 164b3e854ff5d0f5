"""`read_sql` against a real PostgreSQL server started by the tests (the `postgres` fixture, conftest.py):
psycopg 3, psycopg2 and SQLAlchemy; server-side cursors, transactions left as found, no password leaks."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
import sqlalchemy
from _exporting import make_client, make_mapping
from _postgres import PostgresServer, PostgresUnavailable, require_server_binaries
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from autopilot_segments import Exporter, SourceError
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import read_sql

ROWS = 300


@pytest.fixture(scope="module")
def pg(postgres: PostgresServer) -> PostgresServer:
    """The server with a `customers` table of ROWS rows (every 3rd has no tier)."""
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS customers")
        conn.execute(
            """CREATE TABLE customers AS SELECT
                 i AS id, 'user' || i || '@example.com' AS "Email", 'First' || i AS first_name,
                 CASE WHEN i %% 3 = 0 THEN NULL ELSE i %% 4 END AS tier,
                 (i * 1.25)::numeric(10, 2) AS spend,
                 timestamptz '2024-01-01 12:00:00+00' + i * interval '1 day' AS since,
                 md5(i::text)::uuid AS ref, decode('00ff', 'hex') AS raw, '{"a": 1}'::jsonb AS doc
               FROM generate_series(0, %s - 1) AS i""",
            (ROWS,),
        )
    return postgres


@pytest.fixture
def conn(pg: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg.conninfo) as connection:
        yield connection


@pytest.fixture
def conn2(pg: PostgresServer) -> Iterator[Any]:
    connection = psycopg2.connect(pg.conninfo)
    yield connection
    connection.close()


def sessions(pg: PostgresServer) -> dict[int, str]:
    """The last statement of every other client session on the test database, by backend pid."""
    with psycopg.connect(pg.conninfo, autocommit=True) as other:
        rows = other.execute(
            "SELECT pid, query FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() AND datname = %s",
            (pg.database,),
        ).fetchall()
    return {int(pid): str(query) for pid, query in rows}


def disconnected(pg: PostgresServer, pid: int) -> bool:
    """Whether the session `pid` has ended. A backend leaves pg_stat_activity a moment after its client
    disconnects, so this waits for it (up to 10 s; a session that stays is a failure)."""
    deadline = time.monotonic() + 10
    while pid in sessions(pg):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def expected_row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "Email": f"user{i}@example.com",
        "first_name": f"First{i}",
        "tier": None if i % 3 == 0 else i % 4,
        "spend": Decimal(i * 125) / 100,
        "since": dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone.utc) + dt.timedelta(days=i),
    }


# -------------------------------------------------------------------------------------------- psycopg 3


def test_psycopg_rows_with_plain_values_decimal_and_null(conn: psycopg.Connection[Any]) -> None:
    rows = list(read_sql("SELECT * FROM customers WHERE id < %s ORDER BY id", conn, params=(3,)))
    assert [{k: row[k] for k in expected_row(0)} for row in rows] == [expected_row(i) for i in range(3)]
    assert type(rows[1]["spend"]) is Decimal
    assert rows[0]["ref"] == uuid.UUID("cfcd2084-95d5-65ef-66e7-dff9f98764da")  # md5('0')
    assert rows[0]["raw"] == b"\x00\xff"
    assert rows[0]["doc"] == {"a": 1}
    named = read_sql("SELECT id FROM customers WHERE id = %(id)s", conn, params={"id": 7})
    assert list(named) == [{"id": 7}]


def test_psycopg_reads_through_a_server_side_cursor_batch_by_batch(
    pg: PostgresServer, conn: psycopg.Connection[Any]
) -> None:
    rows = read_sql("SELECT id FROM customers ORDER BY id", conn, batch_size=7)
    pid = conn.info.backend_pid
    assert sessions(pg)[pid] == ""  # lazy: nothing has run on the connection yet
    assert next(rows) == {"id": 0}
    # Rows come 7 at a time from a named cursor: the last statement the server saw is a FETCH of 7,
    # not the query itself (which a client-side cursor would have read whole).
    fetch = sessions(pg)[pid]
    declared = conn.execute("SELECT name, statement FROM pg_cursors").fetchall()
    assert len(declared) == 1
    name, statement = declared[0]
    assert name.startswith("autopilot_segments_")
    assert "SELECT id FROM customers ORDER BY id" in statement
    assert fetch == f'FETCH FORWARD 7 FROM "{name}"'
    assert [row["id"] for row in rows] == list(range(1, ROWS))
    assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)  # closed when exhausted


def test_psycopg_closing_the_rows_early_closes_the_cursor_and_keeps_the_connection(
    conn: psycopg.Connection[Any],
) -> None:
    rows = read_sql("SELECT id FROM customers", conn, batch_size=10)
    next(rows)
    assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (1,)
    rows.close()
    assert conn.execute("SELECT count(*) FROM pg_cursors").fetchone() == (0,)
    assert not conn.closed


@pytest.mark.parametrize("autocommit", [False, True])
def test_psycopg_leaves_an_idle_connection_idle(pg: PostgresServer, autocommit: bool) -> None:
    with psycopg.connect(pg.conninfo, autocommit=autocommit) as conn:
        assert len(list(read_sql("SELECT id FROM customers", conn, batch_size=50))) == ROWS
        assert conn.info.transaction_status == TransactionStatus.IDLE


def test_psycopg_inside_the_callers_transaction_sees_its_uncommitted_rows_and_keeps_it_open(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute("CREATE TEMP TABLE pending (email text)")
    conn.execute("INSERT INTO pending VALUES ('new@example.com')")
    assert list(read_sql("SELECT email FROM pending", conn)) == [{"email": "new@example.com"}]
    assert conn.info.transaction_status == TransactionStatus.INTRANS
    conn.rollback()


def test_psycopg_a_row_factory_on_the_connection_does_not_change_the_rows(pg: PostgresServer) -> None:
    with psycopg.connect(pg.conninfo, row_factory=dict_row) as conn:
        assert list(read_sql("SELECT id, tier FROM customers WHERE id = 1", conn)) == [{"id": 1, "tier": 1}]


def test_psycopg_a_failing_query_is_a_source_error_and_the_connection_stays_usable(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(SourceError, match=r"SQL query 'SELECT nope FROM customers' failed: UndefinedColumn"):
        list(read_sql("SELECT nope FROM customers", conn))
    assert conn.info.transaction_status == TransactionStatus.IDLE  # read_sql's transaction rolled back
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_psycopg_a_statement_that_is_not_a_query_is_a_source_error(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(SourceError, match="SQL query 'DELETE FROM customers' failed"):
        list(read_sql("DELETE FROM customers", conn))
    assert conn.execute("SELECT count(*) FROM customers").fetchone() == (ROWS,)


# --------------------------------------------------------------------------------------------- psycopg2


def test_psycopg2_rows_with_bytes_decimal_and_null(conn2: Any) -> None:
    rows = list(read_sql("SELECT * FROM customers WHERE id < %s ORDER BY id", conn2, params=(3,)))
    assert [{k: row[k] for k in expected_row(0)} for row in rows] == [expected_row(i) for i in range(3)]
    assert rows[0]["raw"] == b"\x00\xff"  # psycopg2's memoryview, as bytes
    assert type(rows[0]["raw"]) is bytes


@pytest.mark.parametrize("autocommit", [False, True])
def test_psycopg2_reads_through_a_named_cursor_and_leaves_the_connection_idle(
    pg: PostgresServer, conn2: Any, autocommit: bool
) -> None:
    conn2.autocommit = autocommit
    rows = read_sql("SELECT id FROM customers ORDER BY id", conn2, batch_size=9)
    assert next(rows) == {"id": 0}
    assert sessions(pg)[conn2.get_backend_pid()].startswith('FETCH FORWARD 9 FROM "autopilot_segments_')
    assert [row["id"] for row in rows] == list(range(1, ROWS))
    assert conn2.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with conn2.cursor() as check:
        check.execute("SELECT count(*) FROM pg_cursors")
        assert check.fetchone() == (0,)


def test_psycopg2_a_dict_cursor_factory_on_the_connection_does_not_change_the_rows(
    pg: PostgresServer,
) -> None:
    conn = psycopg2.connect(pg.conninfo, cursor_factory=psycopg2.extras.RealDictCursor)
    try:
        assert list(read_sql("SELECT id, tier FROM customers WHERE id < 2 ORDER BY id", conn)) == [
            {"id": 0, "tier": None},
            {"id": 1, "tier": 1},
        ]
    finally:
        conn.close()


def test_psycopg2_a_failing_query_rolls_back_what_it_opened(conn2: Any) -> None:
    with pytest.raises(SourceError, match=r"SQL query 'SELECT nope FROM customers' failed: UndefinedColumn"):
        list(read_sql("SELECT nope FROM customers", conn2))
    assert conn2.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


# -------------------------------------------------------------------------------------------- SQLAlchemy


def test_a_url_streams_through_a_server_side_cursor_and_closes_its_connection(pg: PostgresServer) -> None:
    rows = read_sql(
        "SELECT id FROM customers WHERE id >= :low ORDER BY id", pg.url, params={"low": 5}, batch_size=11
    )
    before = set(sessions(pg))
    # SQLAlchemy fetches 1 row on execute, so the first batch is that row plus a FETCH of 10.
    assert [next(rows)["id"] for _ in range(12)] == list(range(5, 17))
    (pid,) = set(sessions(pg)) - before
    assert sessions(pg)[pid].startswith("FETCH FORWARD 11 FROM")  # a named cursor, 11 rows at a time
    assert [row["id"] for row in rows] == list(range(17, ROWS))
    assert disconnected(pg, pid)  # the engine read_sql made is disposed of: no connection left


def test_a_url_closed_early_leaves_no_connection(pg: PostgresServer) -> None:
    rows = read_sql("SELECT id FROM customers", pg.url)
    before = set(sessions(pg))
    next(rows)
    (pid,) = set(sessions(pg)) - before
    rows.close()
    assert disconnected(pg, pid)


def test_an_engine_and_a_connection_passed_in_stay_usable(pg: PostgresServer) -> None:
    engine = sqlalchemy.create_engine(pg.url)
    try:
        assert list(read_sql("SELECT id FROM customers WHERE id = :i", engine, params={"i": 3})) == [
            {"id": 3}
        ]
        with engine.connect() as connection:
            assert list(read_sql("SELECT count(*) AS n FROM customers", connection)) == [{"n": ROWS}]
            assert connection.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_the_password_never_appears_in_errors(pg: PostgresServer) -> None:
    wrong = pg.url.replace(pg.password, "Wr0ng-" + pg.password)
    with pytest.raises(SourceError) as caught:
        list(read_sql("SELECT 1", wrong))
    message = str(caught.value)
    assert "password authentication failed" in message
    assert (
        f"cannot connect to postgresql+psycopg://{pg.user}:***@127.0.0.1:{pg.port}/{pg.database}" in message
    )
    assert pg.password not in message

    engine = sqlalchemy.create_engine(pg.url)
    for connection in (pg.url, engine):
        with pytest.raises(SourceError) as caught:
            list(
                read_sql(
                    'SELECT nope FROM customers WHERE "Email" = :e', connection, params={"e": "ada@x.io"}
                )
            )
        assert "UndefinedColumn" in str(caught.value)
        assert pg.password not in str(caught.value)
        assert "ada@x.io" not in str(caught.value)
    engine.dispose()


def test_a_password_given_in_the_url_object_is_used(pg: PostgresServer) -> None:
    url = sqlalchemy.engine.make_url(pg.url_without_password()).set(password=pg.password)
    assert list(read_sql("SELECT 41 + 1 AS answer", url)) == [{"answer": 42}]


# ------------------------------------------------------------------------------------------ end to end


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "url"])
def test_a_query_exports_to_the_sandbox(pg: PostgresServer, driver: str) -> None:
    query = 'SELECT "Email", first_name, tier FROM customers ORDER BY id'
    connection: Any = {
        "psycopg": lambda: psycopg.connect(pg.conninfo),
        "psycopg2": lambda: psycopg2.connect(pg.conninfo),
        "url": lambda: pg.url,
    }[driver]()
    try:
        with Sandbox() as sb:
            rows = read_sql(query, connection, batch_size=64)
            report = Exporter(make_client(sb), make_mapping()).export(rows, segment="PG segment")
            assert report.exported == ROWS
            assert len(report.rejected) == 0
            assert report.list_id is not None
            assert sb.list_members(report.list_id) == {f"user{i}@example.com" for i in range(ROWS)}
            assert sb.contacts["user5@example.com"]["FirstName"] == "First5"
    finally:
        if driver != "url":
            connection.close()


# ------------------------------------------------------------------------------------- the fixture


def test_without_a_server_binary_the_tests_skip_locally_and_fail_in_ci() -> None:
    def missing() -> Path:
        raise PostgresUnavailable("no PostgreSQL server binaries")

    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server binaries"):
        require_server_binaries({}, missing)
    for value in ("true", "1"):
        with pytest.raises(pytest.fail.Exception, match="CI is set but PostgreSQL is not installed"):
            require_server_binaries({"CI": value}, missing)
    assert require_server_binaries({"CI": "true"}, lambda: Path("/opt/pg/bin")) == Path("/opt/pg/bin")


def test_an_async_psycopg_connection_is_refused_at_the_call(pg: PostgresServer) -> None:
    async def attempt() -> str:
        connection = await psycopg.AsyncConnection.connect(pg.conninfo)
        try:
            with pytest.raises(SourceError) as caught:
                read_sql("SELECT 1", connection)
            return str(caught.value)
        finally:
            await connection.close()

    message = asyncio.run(attempt())
    assert message.startswith("read_sql reads through a synchronous connection; got AsyncConnection")


# ------------------------------------------------------------------------------------------ exactness


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
            st.one_of(
                st.none(),
                st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
            ),
            st.one_of(
                st.none(),
                st.decimals(
                    allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9
                ),
            ),
            st.one_of(st.none(), st.booleans()),
        ),
        max_size=40,
    ),
    batch_size=st.integers(1, 15),
    driver=st.sampled_from(["psycopg", "psycopg2"]),
)
def test_every_row_comes_back_exactly_through_the_named_cursor(
    pg: PostgresServer, values: list[tuple[Any, ...]], batch_size: int, driver: str
) -> None:
    with psycopg.connect(pg.conninfo, autocommit=True) as setup:
        setup.execute(
            "CREATE TABLE IF NOT EXISTS exact (k serial, n bigint, s text, d numeric(20, 4), b boolean)"
        )
        setup.execute("TRUNCATE exact RESTART IDENTITY")
        with setup.cursor() as cursor:
            cursor.executemany("INSERT INTO exact (n, s, d, b) VALUES (%s, %s, %s, %s)", values)
    connection: Any = psycopg.connect(pg.conninfo) if driver == "psycopg" else psycopg2.connect(pg.conninfo)
    try:
        rows = list(read_sql("SELECT n, s, d, b FROM exact ORDER BY k", connection, batch_size=batch_size))
    finally:
        connection.close()
    assert rows == [dict(zip("nsdb", row, strict=True)) for row in values]
    assert all(type(row["d"]) is Decimal for row in rows if row["d"] is not None)
