"""Tabular objects passed straight in: every kind streams plain-Python rows, and exports end to end.

Each kind (pandas, Polars DataFrame and LazyFrame, pyarrow Table/RecordBatch/RecordBatchReader/Dataset,
DuckDB relation, DB-API cursors from sqlite3 and DuckDB) is read through `sources.rows_of`, the one
dispatch `Exporter.export`, `Exporter.plan` and `FieldMapping.map_rows` use. Spark is in test_spark.py.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import ConfigurationError, Exporter, FieldMapping, MappedContact, Rejection
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import rows_of
from tests._exporting import make_client, make_mapping

PLAIN = {str, int, float, bool, Decimal, dt.datetime, dt.date, type(None)}
N = 7
UTC = dt.timezone.utc


def columns() -> dict[str, list[Any]]:
    """Seven rows of every common type, with a missing value in each column and a NaN among the floats."""
    return {
        "Email": [f"user{i}@example.com" for i in range(N - 1)] + [None],
        "first_name": ["Ada", None, "Émile", "Bo", "Cy", "Di", "Ed"],
        "tier": [1, 2, None, 4, 5, 6, 7],
        "score": [0.5, math.nan, None, 2.25, -1.0, 3.0, 4.5],
        "joined": [dt.datetime(2023, 6, 15, 12, 3, 2, 123456), None]
        + [dt.datetime(2024, 1, i) for i in range(1, 6)],
        "day": [
            dt.date(2023, 12, 20),
            dt.date(2024, 2, 29),
            None,
            *[dt.date(2024, 3, i) for i in range(1, 5)],
        ],
        "amount": [Decimal("1.50"), None, Decimal("-2.25"), *[Decimal(f"{i}.00") for i in range(4)]],
        "active": [True, False, None, True, True, False, True],
    }


def expected_rows() -> list[dict[str, Any]]:
    data = columns()
    data["score"] = [None if isinstance(v, float) and math.isnan(v) else v for v in data["score"]]
    return [dict(zip(data, values, strict=True)) for values in zip(*data.values(), strict=True)]


def arrow_table() -> pa.Table:
    return pa.table(columns())


def pandas_frame() -> pd.DataFrame:
    data = columns()
    frame = pd.DataFrame({k: v for k, v in data.items() if k not in ("tier", "active", "joined")})
    frame["tier"] = pd.array(data["tier"], dtype="Int64")
    frame["active"] = pd.array(data["active"], dtype="boolean")
    frame["joined"] = pd.to_datetime(data["joined"])  # datetime64[ns] with NaT
    return frame[list(data)]


def polars_frame() -> pl.DataFrame:
    return pl.from_arrow(arrow_table())  # type: ignore[return-value]


def duckdb_relation(con: duckdb.DuckDBPyConnection) -> Any:
    con.register("staged", arrow_table())
    con.execute("CREATE TABLE segment AS SELECT * FROM staged")
    return con.table("segment").order("Email NULLS LAST")


def duckdb_cursor() -> Any:
    con = duckdb.connect()
    duckdb_relation(con)
    return con.execute("SELECT * FROM segment ORDER BY Email NULLS LAST")


def sqlite_cursor(tmp_path: Path) -> sqlite3.Cursor:
    connection = sqlite3.connect(tmp_path / "segment.db")
    connection.execute("CREATE TABLE segment (Email TEXT, first_name TEXT, tier INTEGER, score REAL)")
    data = columns()
    connection.executemany(
        "INSERT INTO segment VALUES (?, ?, ?, ?)",
        zip(data["Email"], data["first_name"], data["tier"], data["score"], strict=True),
    )
    connection.commit()
    return connection.execute("SELECT * FROM segment ORDER BY rowid")


def assert_plain(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for value in row.values():
            assert type(value) in PLAIN, (type(value), value)
            assert not (isinstance(value, float) and math.isnan(value))


# -- every kind gives the same plain rows ---------------------------------------------------------


def test_pandas_frame_rows_are_plain() -> None:
    rows = list(rows_of(pandas_frame(), batch_size=3))
    assert_plain(rows)
    assert rows == expected_rows()


def test_polars_frame_and_lazy_frame_rows_are_plain() -> None:
    frame = polars_frame()
    assert list(rows_of(frame, batch_size=3)) == expected_rows()
    lazy = frame.lazy().filter(pl.col("tier").is_null() | (pl.col("tier") > 0))
    rows = list(rows_of(lazy, batch_size=2))
    assert_plain(rows)
    assert rows == expected_rows()


def test_arrow_table_batch_reader_and_dataset_rows_are_plain(tmp_path: Path) -> None:
    table = arrow_table()
    assert list(rows_of(table, batch_size=3)) == expected_rows()
    assert list(rows_of(table.to_batches()[0])) == expected_rows()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=2))
    assert list(rows_of(reader)) == expected_rows()
    pq.write_table(table.slice(0, 4), tmp_path / "part-0.parquet")
    pq.write_table(table.slice(4), tmp_path / "part-1.parquet")
    rows = list(rows_of(pads.dataset(tmp_path, format="parquet"), batch_size=2))
    assert_plain(rows)
    assert rows == expected_rows()


def test_duckdb_relation_and_cursor_rows_are_plain() -> None:
    con = duckdb.connect()
    relation = duckdb_relation(con)
    rows = list(rows_of(relation, batch_size=3))
    assert_plain(rows)
    assert rows == expected_rows()
    assert list(rows_of(relation)) == rows  # a relation runs again for each pass
    assert list(rows_of(duckdb_cursor(), batch_size=2)) == expected_rows()


def test_sqlite_cursor_rows_are_plain(tmp_path: Path) -> None:
    rows = list(rows_of(sqlite_cursor(tmp_path), batch_size=3))
    assert_plain(rows)
    wanted = [{k: row[k] for k in ("Email", "first_name", "tier", "score")} for row in expected_rows()]
    assert rows == wanted  # SQLite stores NaN as NULL already; the tier is an int, not 1.0


def test_nanosecond_timestamps_and_durations_become_microsecond_python_values() -> None:
    table = pa.table(
        {
            "at": pa.array([1_000_000_001_999, None], pa.timestamp("ns", tz="UTC")),
            "naive": pa.array([1_500_000_000, 0], pa.timestamp("ns")),
            "took": pa.array([2_000_999, None], pa.duration("ns")),
            "ratio": pa.array([math.nan, 1.0], pa.float32()),
        }
    )
    rows = list(rows_of(table))
    assert rows == [
        {
            "at": dt.datetime(1970, 1, 1, 0, 16, 40, 1, tzinfo=UTC),
            "naive": dt.datetime(1970, 1, 1, 0, 0, 1, 500000),
            "took": dt.timedelta(microseconds=2000),
            "ratio": None,
        },
        {"at": None, "naive": dt.datetime(1970, 1, 1), "took": None, "ratio": 1.0},
    ]
    assert type(rows[0]["at"]) is dt.datetime
    assert type(rows[0]["took"]) is dt.timedelta


def test_pandas_timezone_and_numpy_dtypes_are_unwrapped() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2024-01-02T03:04:05+02:00", None], utc=True),
            "n": pd.Series([1, 2], dtype="int32"),
            "f": pd.Series([1.5, math.nan], dtype="float32"),
            "cat": pd.Categorical(["a", None]),
        }
    )
    rows = list(rows_of(frame))
    assert rows == [
        {"at": dt.datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC), "n": 1, "f": 1.5, "cat": "a"},
        {"at": None, "n": 2, "f": None, "cat": None},
    ]
    assert {type(v) for row in rows for v in row.values()} <= PLAIN


# -- streaming: a batch at a time, never the whole thing ------------------------------------------


def test_a_record_batch_reader_is_read_one_batch_at_a_time() -> None:
    table = pa.table({"Email": [f"u{i}@example.com" for i in range(100)]})
    pulled: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(table.to_batches(max_chunksize=10)):
            pulled.append(number)
            yield batch

    rows = iter(rows_of(pa.RecordBatchReader.from_batches(table.schema, batches())))
    assert next(rows) == {"Email": "u0@example.com"}
    assert pulled == [0]
    assert [next(rows)["Email"] for _ in range(10)][-1] == "u10@example.com"
    assert pulled == [0, 1]


class CountingCursor(sqlite3.Cursor):
    """A real sqlite3 cursor that records the size of each fetchmany call."""

    fetches: list[int]

    def fetchmany(self, size: int | None = None) -> list[Any]:
        self.fetches.append(len(rows := super().fetchmany(size)))
        return rows


def test_a_cursor_is_fetched_a_batch_at_a_time(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "big.db")
    connection.execute("CREATE TABLE t (Email TEXT)")
    connection.executemany("INSERT INTO t VALUES (?)", ((f"u{i}@example.com",) for i in range(25)))
    cursor = connection.cursor(CountingCursor)
    cursor.fetches = []
    cursor.execute("SELECT Email FROM t ORDER BY rowid")
    rows = iter(rows_of(cursor, batch_size=10))
    assert next(rows) == {"Email": "u0@example.com"}
    assert cursor.fetches == [10]
    assert len(list(rows)) == 24
    assert cursor.fetches == [10, 10, 5, 0]


def test_a_polars_lazy_frame_runs_in_streaming_batches() -> None:
    lazy = pl.LazyFrame({"Email": [f"u{i}@example.com" for i in range(50)]}).with_columns(
        pl.col("Email").str.to_uppercase()
    )
    rows = list(rows_of(lazy, batch_size=7))
    assert rows[0] == {"Email": "U0@EXAMPLE.COM"}
    assert len(rows) == 50


def test_reiterable_kinds_read_again_and_one_shot_kinds_are_iterators(tmp_path: Path) -> None:
    table = arrow_table()
    for obj in (pandas_frame(), polars_frame(), polars_frame().lazy(), table, pads.dataset(table)):
        rows = rows_of(obj)
        assert not isinstance(rows, Iterator), type(obj)
        assert list(rows) == list(rows) == expected_rows()
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert isinstance(rows_of(reader), Iterator)
    assert isinstance(rows_of(sqlite_cursor(tmp_path)), Iterator)
    assert len(rows_of(pandas_frame())) == len(rows_of(table)) == len(rows_of(polars_frame())) == N  # type: ignore[arg-type]


# -- what is not rows is a TypeError that says what to pass ---------------------------------------


@pytest.mark.parametrize(
    ("make", "hint"),
    [
        (lambda: "segment.csv", "open_source(path)"),
        (lambda: Path("segment.csv"), "open_source(path)"),
        (lambda: b"Email\nann@example.com\n", "open_source(path)"),
        (lambda: {"Email": "ann@example.com"}, "[row]"),
        (lambda: [("ann@example.com", "Ann")], "row 1 is a tuple"),
        (lambda: iter([["ann@example.com"]]), "row 1 is a list"),
        (lambda: (row for row in ["ann@example.com"]), "row 1 is a str"),
        (lambda: 42, "iterable of mappings"),
        (lambda: None, "iterable of mappings"),
        (lambda: pd.Series(["ann@example.com"]), "series.to_frame()"),
        (lambda: pl.Series(["ann@example.com"]), "series.to_frame()"),
        (lambda: pa.chunked_array([["ann@example.com"]]), "pyarrow Table"),
    ],
)
def test_anything_else_is_a_type_error_saying_what_to_pass(make: Callable[[], Any], hint: str) -> None:
    mapping = make_mapping()
    with pytest.raises(TypeError, match="pass") as raised:
        list(mapping.map_rows(make()))
    assert hint in str(raised.value)
    with Sandbox() as sb:
        with pytest.raises(TypeError, match="pass"):
            Exporter(make_client(sb), mapping).export(make(), segment="Wrong input")
        with pytest.raises(TypeError, match="pass"):
            Exporter(make_client(sb), mapping).plan(make(), segment="Wrong input")
        assert sb.requests == []  # refused before any call


def test_an_open_file_and_a_cursor_without_a_result_are_type_errors(tmp_path: Path) -> None:
    (tmp_path / "segment.csv").write_text("Email\nann@example.com\n")
    with open(tmp_path / "segment.csv") as fh, pytest.raises(TypeError, match=r"open file .*open_source"):
        rows_of(fh)
    with pytest.raises(TypeError, match=r"cursor.execute\(query\)"):
        rows_of(sqlite3.connect(":memory:").cursor())


def test_a_sqlalchemy_result_is_refused_with_its_mappings_accepted() -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as connection:
        query = sqlalchemy.text("SELECT 'ann@example.com' AS Email")
        with pytest.raises(TypeError, match=r"pass result\.mappings\(\)"):
            rows_of(connection.execute(query))
        assert list(rows_of(connection.execute(query).mappings())) == [{"Email": "ann@example.com"}]
    engine.dispose()


def test_keep_last_needs_a_reiterable_kind(tmp_path: Path) -> None:
    mapping = FieldMapping(email="Email", keep="last")
    frame = pd.DataFrame({"Email": ["a@example.com", "b@example.com", "A@example.com"]})
    outcomes = list(mapping.map_rows(frame))
    assert [type(o) for o in outcomes] == [Rejection, MappedContact, MappedContact]
    with pytest.raises(ConfigurationError, match="one-shot"):
        mapping.map_rows(sqlite_cursor(tmp_path))


def test_recognising_a_kind_imports_no_optional_library() -> None:
    script = textwrap.dedent(
        """
        import sys
        from autopilot_segments import FieldMapping
        from autopilot_segments.sources import rows_of
        list(FieldMapping(email="Email").map_rows([{"Email": "ann@example.com"}]))
        list(rows_of(iter([{"Email": "ann@example.com"}])))
        for bad in ("x.csv", 42, {"a": 1}):
            try:
                rows_of(bad)
            except TypeError:
                pass
        loaded = {"pandas", "polars", "pyarrow", "duckdb", "pyspark", "numpy", "openpyxl"} & set(sys.modules)
        print(sorted(loaded))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# -- end to end: each kind exported to the sandbox ------------------------------------------------

KINDS: dict[str, Callable[[Path], Any]] = {
    "pandas": lambda tmp: pandas_frame(),
    "polars": lambda tmp: polars_frame(),
    "polars-lazy": lambda tmp: polars_frame().lazy(),
    "arrow-table": lambda tmp: arrow_table(),
    "arrow-reader": lambda tmp: pa.RecordBatchReader.from_batches(
        arrow_table().schema, arrow_table().to_batches(max_chunksize=3)
    ),
    "arrow-dataset": lambda tmp: pads.dataset(arrow_table()),
    "duckdb-relation": lambda tmp: duckdb_relation(duckdb.connect()),
    "duckdb-cursor": lambda tmp: duckdb_cursor(),
    "sqlite-cursor": sqlite_cursor,
}


def tiers(sb: Sandbox, email: str) -> list[Any]:
    return [
        field["value"] for field in sb.contacts[email].get("custom_fields", []) if field["kind"] == "Tier"
    ]


def test_the_kinds_cover_every_adapter() -> None:
    assert len(KINDS) == 9


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_exports_end_to_end_to_the_sandbox(kind: str, tmp_path: Path) -> None:
    obj = KINDS[kind](tmp_path)
    mapping = make_mapping()
    with Sandbox() as sb:
        report = Exporter(make_client(sb), mapping, batch_size=4).export(obj, segment=f"Tabular {kind}")
        assert report.total_rows == N
        assert report.exported == N - 1
        assert [r.reason for r in report.rejected] == ["missing_email"]
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == {f"user{i}@example.com" for i in range(N - 1)}
        assert sb.contacts["user0@example.com"]["FirstName"] == "Ada"
        assert "FirstName" not in sb.contacts["user1@example.com"]  # a missing value is not sent
        assert tiers(sb, "user3@example.com") == [4]
        assert tiers(sb, "user2@example.com") == []  # tier missing: nothing sent, not "None" nor NaN


def test_plan_and_export_segments_take_frames() -> None:
    with Sandbox() as sb:
        exporter = Exporter(make_client(sb), make_mapping())
        plan = exporter.plan(polars_frame(), segment="Planned")
        assert (plan.total_rows, plan.exported) == (N, N - 1)
        assert sb.requests == []
        reports = exporter.export_segments({"From pandas": pandas_frame(), "From arrow": arrow_table()})
        assert {name: r.exported for name, r in reports.items()} == {
            "From pandas": N - 1,
            "From arrow": N - 1,
        }


# -- property: any batch size, any mix of missing values, the same rows from every kind --------------

COLUMN_VALUES = {
    "text": st.one_of(st.none(), st.text(max_size=8)),
    "number": st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62)),
    "ratio": st.one_of(
        st.none(), st.just(math.nan), st.floats(allow_nan=False, allow_infinity=False, width=64)
    ),
    "flag": st.one_of(st.none(), st.booleans()),
}
RECORDS = st.lists(st.fixed_dictionaries(COLUMN_VALUES), max_size=40)


def expected_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in records]


@settings(max_examples=30, deadline=None)
@given(records=RECORDS, batch_size=st.integers(min_value=1, max_value=9))
def test_every_kind_gives_the_same_rows_whatever_the_batch_size(
    records: list[dict[str, Any]], batch_size: int
) -> None:
    schema = pa.schema(
        [("text", pa.string()), ("number", pa.int64()), ("ratio", pa.float64()), ("flag", pa.bool_())]
    )
    table = pa.Table.from_pylist(records, schema=schema)
    frame = pd.DataFrame(
        {
            "text": pd.array([r["text"] for r in records], dtype=object),
            "number": pd.array([r["number"] for r in records], dtype="Int64"),
            "ratio": pd.array([r["ratio"] for r in records], dtype="float64"),
            "flag": pd.array([r["flag"] for r in records], dtype="boolean"),
        }
    )
    polars = pl.from_arrow(table)
    connection = duckdb.connect()
    connection.register("staged", table)
    kinds: dict[str, Any] = {
        "arrow": table,
        "reader": pa.RecordBatchReader.from_batches(schema, table.to_batches(max_chunksize=3)),
        "pandas": frame,
        "polars": polars,
        "lazy": polars.lazy(),
        "duckdb": connection.sql("SELECT * FROM staged"),
    }
    expected = expected_of(records)
    for kind, obj in kinds.items():
        rows = list(rows_of(obj, batch_size=batch_size))
        assert rows == expected, kind
        assert_plain(rows)
    connection.close()
