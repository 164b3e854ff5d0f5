"""`read_sql`: a query's rows, streamed from a DB-API connection, an SQLAlchemy engine/connection or a URL.

Where a driver's default cursor would load the whole result into memory (psycopg, psycopg2), the rows
are read through a server-side (named) cursor; SQLAlchemy is asked to stream (`stream_results`), which
its dialects honour with a server-side cursor where the database has one. Rows are fetched
`batch_size` at a time. Nothing is imported unless the connection given needs it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from typing import Any, Final, NoReturn

from ._common import _DEFAULT_CHUNK, Row, SourceError, _missing_extra
from ._text import _check_header

_QUERY_LABEL_CHARS: Final = 120
_cursor_numbers = itertools.count(1)


def read_sql(
    query: str, connection: Any, *, params: Any = None, batch_size: int = _DEFAULT_CHUNK
) -> Iterator[Row]:
    """Stream the rows of an SQL query as dicts keyed by column name.

    `connection` is one of:
    - a DB-API 2.0 connection (sqlite3, duckdb, psycopg 3, psycopg2, or any other driver): `params` are
      passed to `cursor.execute(query, params)` in the driver's own paramstyle (`?`, `%s`, `%(name)s`...);
    - an SQLAlchemy `Engine` or `Connection`: the query runs as `text(query)`, with `params` a dict for its
      `:name` placeholders;
    - a database URL (`str` or `sqlalchemy.engine.URL`, extra `sql`), e.g.
      `"postgresql://user@host/db"`: an engine is created for this query and disposed of afterwards.

    The query runs when the first row is asked for. Rows are fetched `batch_size` at a time; psycopg and
    psycopg2 read through a server-side cursor, SQLAlchemy with `stream_results`, so the result is never
    held in memory whole. The cursor is closed when the rows run out or the generator is closed; a
    connection or engine you pass stays open (and read_sql neither commits nor rolls back a transaction it
    did not start); one it opened from a URL is closed.

    Values are what the driver returns (`int`, `str`, `Decimal`, `datetime`, ...); NULL is None. Column
    names must be non-empty and unique (use `AS`). A failing query raises `SourceError` naming the query,
    never the password.
    """
    if not isinstance(query, str) or not query.strip():
        raise SourceError("read_sql needs the query as a non-empty string")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SourceError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    label = _query_label(query)
    sqlalchemy = sys.modules.get("sqlalchemy")
    is_url_object = sqlalchemy is not None and isinstance(connection, sqlalchemy.engine.URL)
    if isinstance(connection, str) or is_url_object:
        database = _duckdb_database(connection)
        if database is not None:
            duckdb = _check_duckdb(database)
            return _duckdb_rows(duckdb, database, query, params, batch_size, label)
        engine, secret = _engine_from_url(connection)
        return _sqlalchemy_rows(engine, query, params, batch_size, label, secret, dispose=True)
    if sqlalchemy is not None and isinstance(
        connection, sqlalchemy.engine.Engine | sqlalchemy.engine.Connection
    ):
        secret = connection.engine.url.password
        return _sqlalchemy_rows(connection, query, params, batch_size, label, secret, dispose=False)
    if not callable(getattr(connection, "cursor", None)):
        raise SourceError(
            f"read_sql needs a DB-API connection, an SQLAlchemy Engine or Connection, or a database URL; "
            f"got {type(connection).__name__}"
        )
    if type(connection).__name__.startswith("Async"):
        raise SourceError(
            f"read_sql reads through a synchronous connection; got {type(connection).__name__} "
            "(open a plain one, e.g. psycopg.connect or sqlalchemy.create_engine)"
        )
    return _dbapi_rows(connection, query, params, batch_size, label)


# ------------------------------------------------------------------------------------------- helpers


def _query_label(query: str) -> str:
    text = " ".join(query.split())
    if len(text) > _QUERY_LABEL_CHARS:
        text = text[: _QUERY_LABEL_CHARS - 3] + "..."
    return f"SQL query {text!r}"


def _redact(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "***")
    return text


def _failure(exc: BaseException, what: str, secret: str | None) -> SourceError:
    """A `SourceError` for a driver (or SQLAlchemy) error: its message, never the statement's parameters."""
    # SQLAlchemy's own message appends the statement and its parameters (which may be personal data):
    # the driver's exception (`orig`) says what went wrong without them.
    original = getattr(exc, "orig", None) or exc
    message = " ".join(str(original).split()) or type(original).__name__
    return SourceError(_redact(f"{what}: {type(original).__name__}: {message}", secret))


def _raise_failure(exc: Exception, what: str, secret: str | None) -> NoReturn:
    error = _failure(exc, what, secret)
    if secret and secret in str(exc):
        raise error from None  # the driver's own message holds the password: do not chain it
    raise error from exc


def _names(columns: list[Any] | None, label: str) -> list[str]:
    if columns is None:
        raise SourceError(f"{label} returned no result set (it must be a query returning rows, like SELECT)")
    try:
        return _check_header([str(name) for name in columns], label)
    except SourceError as exc:
        raise SourceError(f"{exc}; give the columns distinct names with AS") from None


def _row_maker(names: list[str], sample: Any, label: str) -> Callable[[Any], Row]:
    """A function building a row dict from one fetched row, chosen by the fetched row's type."""
    if isinstance(sample, Mapping):  # the connection has a dict-like row factory
        if set(sample) != set(names):
            raise SourceError(
                f"{label}: the connection's row factory returns rows keyed {sorted(map(str, sample))}, "
                f"not by the column names {names}; use a connection without a row factory"
            )
        return lambda row: {name: row[name] for name in names}
    return lambda row: dict(zip(names, row, strict=True))


# --------------------------------------------------------------------------------------- SQLAlchemy


def _engine_from_url(url: Any) -> tuple[Any, str | None]:
    try:
        import sqlalchemy
    except ImportError as exc:
        raise _missing_extra("Reading a database URL", "SQLAlchemy", "sql") from exc
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as exc:  # ArgumentError; its message does not repeat the URL
        raise SourceError(f"not a database URL (expected e.g. postgresql://user@host/db): {exc}") from None
    parsed = _default_driver(parsed)
    secret = parsed.password if isinstance(parsed.password, str) else None
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = sqlalchemy.create_engine(parsed, poolclass=sqlalchemy.pool.NullPool)
    except Exception as exc:  # unknown dialect, driver not installed
        raise SourceError(
            _redact(f"cannot use database URL {shown}: {type(exc).__name__}: {exc}", secret)
        ) from None
    return engine, secret


_DUCKDB_URL = re.compile(r"duckdb://(?:/(?P<path>[^?#]*))?")


def _duckdb_database(url: Any) -> str | None:
    """The database of a `duckdb:///path` URL (`:memory:` when it names none), None for other URLs.

    DuckDB is opened directly, not through SQLAlchemy (whose DuckDB dialect is a separate package):
    its own cursor streams the result.
    """
    if not isinstance(url, str):
        return (url.database or ":memory:") if url.drivername == "duckdb" else None
    if not url.startswith("duckdb:"):
        return None
    match = _DUCKDB_URL.fullmatch(url)
    if match is None:
        raise SourceError(
            "a DuckDB URL is duckdb:///relative/path.duckdb, duckdb:////absolute/path.duckdb or "
            "duckdb:///:memory:, without options"
        )
    return match["path"] or ":memory:"


def _check_duckdb(database: str) -> Any:
    """The duckdb module, once the database is known to exist (checked at the call)."""
    try:
        import duckdb
    except ImportError as exc:
        raise _missing_extra("Reading a DuckDB URL", "duckdb", "duckdb") from exc
    if database != ":memory:" and not os.path.isfile(database):
        raise SourceError(f"no DuckDB database file {database}")
    return duckdb


def _duckdb_rows(
    duckdb: Any, database: str, query: str, params: Any, batch_size: int, label: str
) -> Iterator[Row]:
    """Open the database read-only (a file) when the first row is asked for, and close it at the end."""
    try:
        connection = duckdb.connect(database, read_only=database != ":memory:")
    except Exception as exc:  # duckdb.IOException: not a DuckDB file, locked by a writer
        raise SourceError(f"cannot open the DuckDB database {database}: {type(exc).__name__}: {exc}") from exc
    yield from _dbapi_rows(connection, query, params, batch_size, label, close_connection=True)


def _default_driver(url: Any) -> Any:
    """`postgresql://` (or Heroku's `postgres://`) uses psycopg 3 (the `postgres` extra) when installed."""
    import importlib.util

    if url.drivername in ("postgresql", "postgres"):
        if importlib.util.find_spec("psycopg") is not None:
            return url.set(drivername="postgresql+psycopg")
        return url.set(drivername="postgresql")
    return url


def _sqlalchemy_rows(
    bind: Any, query: str, params: Any, batch_size: int, label: str, secret: str | None, *, dispose: bool
) -> Iterator[Row]:
    import sqlalchemy

    with ExitStack() as stack:
        if dispose:
            stack.callback(bind.dispose)
        if isinstance(bind, sqlalchemy.engine.Engine):
            try:
                connection = stack.enter_context(bind.connect())
            except Exception as exc:
                shown = bind.url.render_as_string(hide_password=True)
                _raise_failure(exc, f"cannot connect to {shown} for {label}", secret)
        else:
            connection = bind
        statement = sqlalchemy.text(query).execution_options(stream_results=True, yield_per=batch_size)
        try:
            result = connection.execute(statement, params if params is not None else {})
        except Exception as exc:
            _raise_failure(exc, f"{label} failed", secret)
        stack.callback(result.close)
        if not result.returns_rows:
            raise SourceError(
                f"{label} returned no result set (it must be a query returning rows, like SELECT)"
            )
        names = _names(list(result.keys()), label)
        make_row: Callable[[Any], Row] | None = None
        while True:
            try:
                batch = result.fetchmany(batch_size)
            except Exception as exc:
                _raise_failure(exc, f"{label} failed while reading rows", secret)
            if not batch:
                return
            if make_row is None:
                make_row = _row_maker(names, batch[0], label)
            for row in batch:
                yield make_row(row)


# ------------------------------------------------------------------------------------------- DB-API


def _driver(connection: Any) -> str:
    """Which driver family a DB-API connection belongs to: psycopg, psycopg2, duckdb or other."""
    module = type(connection).__module__.split(".")[0]
    return module if module in ("psycopg", "psycopg2", "duckdb") else "other"


def _dbapi_rows(
    connection: Any, query: str, params: Any, batch_size: int, label: str, *, close_connection: bool = False
) -> Iterator[Row]:
    driver = _driver(connection)
    secret = _dbapi_password(connection, driver)
    with ExitStack() as stack:
        if close_connection:
            stack.callback(connection.close)
        try:
            cursor = _open_cursor(connection, driver, batch_size, stack)
            stack.callback(_close_quietly, cursor)
            if params is None:
                cursor.execute(query)
            else:
                cursor.execute(query, params)
        except Exception as exc:
            _raise_failure(exc, f"{label} failed", secret)
        batch: Any = None
        if cursor.description is None and driver == "psycopg2":
            # A psycopg2 named cursor describes its columns only once rows have been fetched.
            batch = _fetch(cursor, batch_size, label, secret)
        description = cursor.description
        names = _names(None if description is None else [column[0] for column in description], label)
        make_row: Callable[[Any], Row] | None = None
        convert_views = driver == "psycopg2"  # psycopg2 returns bytea as memoryview
        while True:
            if batch is None:
                batch = _fetch(cursor, batch_size, label, secret)
            if not batch:
                return
            if make_row is None:
                make_row = _row_maker(names, batch[0], label)
            rows, batch = batch, None
            for row in rows:
                values = make_row(row)
                if convert_views:
                    for key, value in values.items():
                        if isinstance(value, memoryview):
                            values[key] = value.tobytes()
                yield values


def _fetch(cursor: Any, batch_size: int, label: str, secret: str | None) -> Any:
    try:
        return cursor.fetchmany(batch_size)
    except Exception as exc:
        _raise_failure(exc, f"{label} failed while reading rows", secret)


def _open_cursor(connection: Any, driver: str, batch_size: int, stack: ExitStack) -> Any:
    name = f"autopilot_segments_{next(_cursor_numbers)}"
    if driver == "psycopg":
        from psycopg.rows import tuple_row

        # A named cursor needs a transaction: `transaction()` opens one (or a savepoint inside the
        # caller's) and leaves the connection as it found it.
        stack.enter_context(connection.transaction())
        cursor = connection.cursor(name=name, row_factory=tuple_row, scrollable=False)
        cursor.itersize = batch_size
        return cursor
    if driver == "psycopg2":
        import psycopg2.extensions

        if not connection.autocommit and (
            connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        ):
            # The query would leave a transaction open: end it as psycopg's `transaction()` does.
            stack.enter_context(_psycopg2_transaction(connection))
        # Outside a transaction (autocommit) a named cursor must be WITH HOLD.
        cursor = connection.cursor(
            name=name, cursor_factory=psycopg2.extensions.cursor, withhold=bool(connection.autocommit)
        )
        cursor.itersize = batch_size
        return cursor
    # duckdb: `cursor()` is a second connection to the same database, so this query's pending result
    # cannot be replaced by another query run on the caller's connection while rows are being read.
    cursor = connection.cursor()
    if driver == "other":
        # A read-only arraysize does not matter: fetchmany(batch_size) says the size anyway.
        with contextlib.suppress(AttributeError, TypeError):
            cursor.arraysize = batch_size
    return cursor


@contextlib.contextmanager
def _psycopg2_transaction(connection: Any) -> Iterator[None]:
    """Commit the transaction the query opened when the rows are read, roll it back on error or close."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            connection.rollback()
        raise
    connection.commit()


def _close_quietly(cursor: Any) -> None:
    # A failed query may leave the cursor unclosable; the query's own error is the one to report.
    with contextlib.suppress(Exception):
        cursor.close()


def _dbapi_password(connection: Any, driver: str) -> str | None:
    try:
        if driver == "psycopg" or driver == "psycopg2":
            password = connection.info.password
        else:
            return None
    except Exception:
        return None
    return password if isinstance(password, str) and password else None
