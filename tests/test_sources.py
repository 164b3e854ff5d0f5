"""The streaming readers: CSV, JSON Lines, pandas, Parquet, CDM folders, dispatch and the bundled sample."""

from __future__ import annotations

import csv
import datetime as dt
import gc
import gzip
import inspect
import io
import json
import sys
import tracemalloc
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot_segments import AutopilotError, SourceError
from autopilot_segments._synthetic import generate_rows, write_csv
from autopilot_segments.sources import (
    cdm_entities,
    from_dataframe,
    open_source,
    read_any,
    read_cdm,
    read_csv,
    read_jsonl,
    read_parquet,
    sample_mapping_path,
    sample_segment_path,
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def open_text_handles(path: Path) -> list[io.TextIOWrapper]:
    """Text file objects on `path` that are still open (found through the garbage collector)."""
    gc.collect()
    return [
        obj
        for obj in gc.get_objects()
        # Other tests leave wrappers around in-memory buffers, which have no name at all.
        if isinstance(obj, io.TextIOWrapper) and getattr(obj, "name", None) == str(path) and not obj.closed
    ]


# ----------------------------------------------------------------------------------------------- CSV


def test_csv_rows_are_dicts_keyed_by_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "email,name,points\na@example.com,Ann,3\nb@example.com,Bo,4\n")
    assert list(read_csv(path)) == [
        {"email": "a@example.com", "name": "Ann", "points": "3"},
        {"email": "b@example.com", "name": "Bo", "points": "4"},
    ]


def test_csv_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufeffemail,name\na@example.com,Zoë\n")
    assert list(read_csv(path)) == [{"email": "a@example.com", "name": "Zoë"}]


def test_csv_byte_order_mark_is_dropped_even_with_plain_utf8_and_blank_lines_before_the_header(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "blank.csv", "\n\nemail,name\na@example.com,Zoë\n")
    assert list(read_csv(path, encoding="utf-8")) == [{"email": "a@example.com", "name": "Zoë"}]
    path = write(tmp_path / "bom.csv", "\ufeffemail,name\na@example.com,Zoë\n")
    assert list(read_csv(path, encoding="utf-8")) == [{"email": "a@example.com", "name": "Zoë"}]


def test_csv_quoting_and_embedded_newlines(tmp_path: Path) -> None:
    text = (
        "email,note,city\r\n"
        'a@example.com,"line one\nline two","Paris, France"\r\n'
        'b@example.com,"she said ""hi""",\r\n'
    )
    path = write(tmp_path / "q.csv", text)
    assert list(read_csv(path)) == [
        {"email": "a@example.com", "note": "line one\nline two", "city": "Paris, France"},
        {"email": "b@example.com", "note": 'she said "hi"', "city": None},
    ]


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_csv_delimiter_is_sniffed(tmp_path: Path, delimiter: str) -> None:
    lines = [
        ["email", "first name", "city"],
        ["a@example.com", "Ann", "Köln"],
        ["b@example.com", "Bo", "Oslo"],
    ]
    path = write(tmp_path / "d.csv", "\n".join(delimiter.join(line) for line in lines) + "\n")
    assert list(read_csv(path)) == [
        {"email": "a@example.com", "first name": "Ann", "city": "Köln"},
        {"email": "b@example.com", "first name": "Bo", "city": "Oslo"},
    ]


def test_csv_semicolon_file_with_commas_inside_values(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", "email;company\na@example.com;Acme, Inc\nb@example.com;Globex\n")
    assert list(read_csv(path)) == [
        {"email": "a@example.com", "company": "Acme, Inc"},
        {"email": "b@example.com", "company": "Globex"},
    ]


def test_csv_single_column_file_falls_back_to_comma(tmp_path: Path) -> None:
    path = write(tmp_path / "one.csv", "email\na@example.com\nb@example.com\n")
    assert [row["email"] for row in read_csv(path)] == ["a@example.com", "b@example.com"]


def test_csv_explicit_delimiter_wins_over_sniffing(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a;b,c\n1;2,3\n")
    assert list(read_csv(path, delimiter=",")) == [{"a;b": "1;2", "c": "3"}]
    assert list(read_csv(path, delimiter=";")) == [{"a": "1", "b,c": "2,3"}]


def test_csv_delimiter_must_be_one_character(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a\n1\n")
    with pytest.raises(SourceError, match="single character"):
        read_csv(path, delimiter=";;")


def test_csv_empty_file_and_header_only_yield_nothing(tmp_path: Path) -> None:
    assert list(read_csv(write(tmp_path / "empty.csv", ""))) == []
    assert list(read_csv(write(tmp_path / "header.csv", "email,name\n"))) == []
    assert list(read_csv(write(tmp_path / "header_no_newline.csv", "email,name"))) == []


def test_csv_short_rows_get_none_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "r.csv", "email,name,city\na@example.com,Ann\n\nb@example.com\n,,\n")
    assert list(read_csv(path)) == [
        {"email": "a@example.com", "name": "Ann", "city": None},
        {"email": "b@example.com", "name": None, "city": None},
        {"email": None, "name": None, "city": None},
    ]


def test_csv_extra_cells_name_the_line_where_the_record_starts(tmp_path: Path) -> None:
    text = 'email,note\na@example.com,"two\nlines"\nb@example.com,ok,surprise\n'
    path = write(tmp_path / "extra.csv", text)
    rows = read_csv(path)
    assert next(rows) == {"email": "a@example.com", "note": "two\nlines"}
    with pytest.raises(SourceError, match=r"line 4 has 3 cells but the header has 2 columns") as info:
        next(rows)
    assert "surprise" not in str(info.value)  # cell values may be personal data


def test_csv_empty_trailing_cells_are_tolerated(tmp_path: Path) -> None:
    path = write(tmp_path / "trailing.csv", "email,name\na@example.com,Ann,,\n")
    assert list(read_csv(path)) == [{"email": "a@example.com", "name": "Ann"}]


def test_csv_duplicate_header_names_are_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.csv", "email,name,Email,name\na,b,c,d\n")
    with pytest.raises(SourceError, match=r"'name' appears twice \(columns 2 and 4\)"):
        list(read_csv(path))


def test_csv_empty_header_name_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "blank.csv", "email, ,name\na,b,c\n")
    with pytest.raises(SourceError, match="column 2 has no name"):
        list(read_csv(path))


def test_csv_header_names_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "spaces.csv", " email , name\na@example.com,Ann\n")
    assert list(read_csv(path)) == [{"email": "a@example.com", "name": "Ann"}]


def test_csv_columns_select_and_rename(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "email,name,city\na@example.com,Ann,Oslo\n")
    assert list(read_csv(path, columns=["city", "email"])) == [{"city": "Oslo", "email": "a@example.com"}]
    assert list(read_csv(path, columns={"email": "Email", "name": "FirstName"})) == [
        {"Email": "a@example.com", "FirstName": "Ann"}
    ]
    with pytest.raises(SourceError, match=r"no column\(s\) 'phone'; the columns are email, name, city"):
        list(read_csv(path, columns=["email", "phone"]))


def test_csv_fieldnames_read_a_headerless_file(tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", "a@example.com,Ann\nb@example.com,Bo\n")
    assert list(read_csv(path, fieldnames=["email", "name"])) == [
        {"email": "a@example.com", "name": "Ann"},
        {"email": "b@example.com", "name": "Bo"},
    ]


def test_csv_gzip_is_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "g.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\ufeffemail;name\na@example.com;José\n")
    assert list(read_csv(path)) == [{"email": "a@example.com", "name": "José"}]


def test_csv_wrong_encoding_is_a_source_error_and_encoding_fixes_it(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", "email,name\na@example.com,José\n", encoding="cp1252")
    with pytest.raises(SourceError, match="not valid utf-8-sig text"):
        list(read_csv(path))
    assert list(read_csv(path, encoding="cp1252")) == [{"email": "a@example.com", "name": "José"}]


def test_csv_missing_file_fails_at_the_call(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="is a folder"):
        read_csv(tmp_path)


def test_csv_file_is_opened_lazily_and_closed_when_exhausted_or_closed(tmp_path: Path) -> None:
    path = write(tmp_path / "lazy.csv", "email\nfirst@example.com\nsecond@example.com\n")
    rows = read_csv(path)
    assert inspect.isgenerator(rows)
    # Not opened at the call: what the file holds when iteration starts is what is read.
    write(tmp_path / "lazy.csv", "email\nchanged@example.com\nsecond@example.com\n")
    assert open_text_handles(path) == []
    assert next(rows) == {"email": "changed@example.com"}
    assert len(open_text_handles(path)) == 1
    rows.close()
    assert open_text_handles(path) == []

    exhausted = read_csv(path)
    assert len(list(exhausted)) == 2
    assert open_text_handles(path) == []


def test_csv_streams_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    write_csv(path, generate_rows(25_000, seed=3))
    size = path.stat().st_size
    assert size > 2_500_000

    tracemalloc.start()
    try:
        rows = read_csv(path)
        first = next(rows)
        _, peak_first = tracemalloc.get_traced_memory()
        count = 1 + sum(1 for _ in rows)
        _, peak_all = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first["email"] is not None
    assert count == 25_000
    # One row, or all of them, costs a small bounded buffer (the sniffing sample is the biggest part),
    # never a sizeable share of the file.
    assert peak_first < size / 5
    assert peak_all < peak_first + 100_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.data(),
    width=st.integers(min_value=1, max_value=5),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_csv_round_trips_whatever_csv_writer_wrote(
    tmp_path: Path, data: st.DataObject, width: int, delimiter: str
) -> None:
    header = [f"col{i}" for i in range(width)]
    cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
    rows = data.draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=8))
    path = tmp_path / "round.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        writer.writerows(rows)
    expected = [dict(zip(header, [value or None for value in row], strict=True)) for row in rows]
    assert list(read_csv(path, delimiter=delimiter)) == expected


# ---------------------------------------------------------------------------------------- JSON Lines


def test_jsonl_yields_objects_and_skips_blank_lines(tmp_path: Path) -> None:
    text = '{"email": "a@example.com", "points": 3, "tags": ["x"]}\n\n   \n{"email": null, "vip": true}\n'
    path = write(tmp_path / "a.jsonl", text)
    assert list(read_jsonl(path)) == [
        {"email": "a@example.com", "points": 3, "tags": ["x"]},
        {"email": None, "vip": True},
    ]


def test_jsonl_handles_a_byte_order_mark_and_a_last_line_without_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "bom.jsonl", '\ufeff{"name": "Łukasz"}\n{"name": "山田"}')
    assert list(read_jsonl(path)) == [{"name": "Łukasz"}, {"name": "山田"}]


def test_jsonl_bad_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"a": 1}\n\n{"a": 2,,}\n{"a": 3}\n')
    rows = read_jsonl(path)
    assert next(rows) == {"a": 1}
    with pytest.raises(SourceError, match=r"bad\.jsonl: line 3 is not valid JSON") as info:
        next(rows)
    assert isinstance(info.value, AutopilotError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("line", "kind"), [("[1, 2]", "list"), ("42", "int"), ('"x"', "str"), ("null", "NoneType")]
)
def test_jsonl_non_object_line_names_the_line(tmp_path: Path, line: str, kind: str) -> None:
    path = write(tmp_path / "n.jsonl", '{"a": 1}\n' + line + "\n")
    with pytest.raises(SourceError, match=rf"line 2 is a JSON {kind}, not an object"):
        list(read_jsonl(path))


def test_jsonl_is_lazy_and_closes_its_file(tmp_path: Path) -> None:
    path = write(tmp_path / "lazy.jsonl", '{"a": 1}\n{"a": 2}\n')
    rows = read_jsonl(path)
    assert open_text_handles(path) == []
    assert next(rows) == {"a": 1}
    assert len(open_text_handles(path)) == 1
    rows.close()
    assert open_text_handles(path) == []


# -------------------------------------------------------------------------------------------- pandas


def test_dataframe_missing_values_become_none_and_numpy_values_become_python() -> None:
    tz = dt.timezone(dt.timedelta(hours=2))
    df = pd.DataFrame(
        {
            "email": ["a@example.com", None, "c@example.com"],
            "points": np.array([1, 2, 3], dtype=np.int64),
            "score": [1.5, np.nan, 2.0],
            "joined": [pd.Timestamp("2021-03-04 05:06:07", tz=tz), pd.NaT, pd.Timestamp("2022-01-01", tz=tz)],
            "seen": pd.to_datetime(["2020-01-01", None, "2020-01-03"]),
            "nullable": pd.array([7, None, 9], dtype="Int64"),
            "flag": pd.array([True, None, False], dtype="boolean"),
            "label": pd.array(["x", None, "z"], dtype="string"),
            "mixed": [np.int32(4), np.float64("nan"), pd.NA],
            "wait": [pd.Timedelta(minutes=5), pd.NaT, pd.Timedelta(0)],
        },
        index=[10, 20, 30],
    )
    rows = list(from_dataframe(df))
    assert rows == [
        {
            "email": "a@example.com",
            "points": 1,
            "score": 1.5,
            "joined": dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=tz),
            "seen": dt.datetime(2020, 1, 1),
            "nullable": 7,
            "flag": True,
            "label": "x",
            "mixed": 4,
            "wait": dt.timedelta(minutes=5),
        },
        dict.fromkeys(df.columns) | {"points": 2},
        {
            "email": "c@example.com",
            "points": 3,
            "score": 2.0,
            "joined": dt.datetime(2022, 1, 1, tzinfo=tz),
            "seen": dt.datetime(2020, 1, 3),
            "nullable": 9,
            "flag": False,
            "label": "z",
            "mixed": None,
            "wait": dt.timedelta(0),
        },
    ]
    python_types = (str, int, float, bool, dt.datetime, dt.timedelta, type(None))
    for row in rows:
        for key, value in row.items():
            assert type(value) in python_types, (key, type(value))
    assert rows[0]["joined"].utcoffset() == dt.timedelta(hours=2)


def test_dataframe_numpy_scalars_in_object_columns_are_unboxed() -> None:
    df = pd.DataFrame(
        {"v": pd.Series([np.int64(5), np.float32(0.5), np.bool_(True), np.str_("s")], dtype=object)}
    )
    values = [row["v"] for row in from_dataframe(df)]
    assert values == [5, 0.5, True, "s"]
    assert [type(v) for v in values] == [int, float, bool, str]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(min_value=0, max_value=40), chunk_size=st.integers(min_value=1, max_value=50))
def test_dataframe_chunking_never_changes_the_rows(n: int, chunk_size: int) -> None:
    df = pd.DataFrame({"i": range(n), "s": [f"r{i}" if i % 3 else None for i in range(n)]})
    assert list(from_dataframe(df, chunk_size=chunk_size)) == [
        {"i": i, "s": f"r{i}" if i % 3 else None} for i in range(n)
    ]


def test_dataframe_is_converted_lazily_chunk_by_chunk() -> None:
    df = pd.DataFrame({"email": [f"u{i}@example.com" for i in range(10)]})
    rows = from_dataframe(df, chunk_size=2)
    assert next(rows) == {"email": "u0@example.com"}
    # Rows beyond the current chunk are read when reached: a change made now is seen.
    df.loc[6, "email"] = "changed@example.com"
    assert [row["email"] for row in rows][5] == "changed@example.com"


def test_dataframe_errors() -> None:
    with pytest.raises(SourceError, match="appears twice"):
        from_dataframe(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(SourceError, match="needs a pandas DataFrame, got list"):
        from_dataframe([{"a": 1}])
    with pytest.raises(SourceError, match="chunk_size"):
        from_dataframe(pd.DataFrame({"a": [1]}), chunk_size=0)


def test_dataframe_without_pandas_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(SourceError, match=r"pip install 'autopilot-segments\[pandas\]'"):
        from_dataframe(object())


# ------------------------------------------------------------------------------------------- Parquet


def write_parquet(path: Path, n: int) -> list[dict[str, Any]]:
    utc = dt.timezone.utc
    expected = [
        {
            "email": None if i % 4 == 0 else f"u{i}@example.com",
            "points": None if i % 5 == 0 else i * 10,
            "score": None if i % 3 == 0 else i / 4,
            "vip": None if i % 7 == 0 else i % 2 == 0,
            "joined": None if i % 6 == 0 else dt.datetime(2020, 1, 1 + i % 28, tzinfo=utc),
            "price": None if i % 8 == 0 else Decimal(f"{i}.50"),
        }
        for i in range(n)
    ]
    schema = pa.schema(
        [
            ("email", pa.string()),
            ("points", pa.int64()),
            ("score", pa.float64()),
            ("vip", pa.bool_()),
            ("joined", pa.timestamp("us", tz="UTC")),
            ("price", pa.decimal128(10, 2)),
        ]
    )
    pq.write_table(pa.Table.from_pylist(expected, schema=schema), path, row_group_size=4)
    return expected


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(min_value=0, max_value=23), batch_size=st.integers(min_value=1, max_value=30))
def test_parquet_rows_with_nulls_across_batch_boundaries(tmp_path: Path, n: int, batch_size: int) -> None:
    path = tmp_path / "p.parquet"
    expected = write_parquet(path, n)
    assert list(read_parquet(path, batch_size=batch_size)) == expected


def test_parquet_values_are_python_objects_and_timezones_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    write_parquet(path, 3)
    row = list(read_parquet(path))[1]
    assert type(row["points"]) is int
    assert type(row["score"]) is float
    assert type(row["vip"]) is bool
    assert row["joined"].tzinfo is not None
    assert row["joined"].utcoffset() == dt.timedelta(0)
    assert row["price"] == Decimal("1.50")


def test_parquet_columns_select_and_unknown_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    expected = write_parquet(path, 5)
    assert list(read_parquet(path, columns=["email", "vip"])) == [
        {"email": row["email"], "vip": row["vip"]} for row in expected
    ]
    with pytest.raises(SourceError, match=r"no column\(s\) 'phone'; the columns are email, points"):
        list(read_parquet(path, columns=["email", "phone"]))


def test_parquet_reads_one_batch_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "big.parquet"
    table = pa.table({"email": [f"user{i}@example.com" for i in range(200_000)]})
    pq.write_table(table, path, row_group_size=20_000)
    tracemalloc.start()
    try:
        rows = read_parquet(path, batch_size=1_000)
        assert next(rows) == {"email": "user0@example.com"}
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rows.close()
    # The whole column as Python dicts would take tens of megabytes; one batch of 1,000 rows is small.
    assert peak < 2_000_000


def test_parquet_errors(tmp_path: Path) -> None:
    not_parquet = write(tmp_path / "fake.parquet", "email\nx\n")
    with pytest.raises(SourceError, match="not a readable Parquet file"):
        list(read_parquet(not_parquet))
    with pytest.raises(SourceError, match="no such file"):
        read_parquet(tmp_path / "missing.parquet")
    with pytest.raises(SourceError, match="batch_size"):
        read_parquet(not_parquet, batch_size=0)


def test_parquet_without_pyarrow_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(SourceError, match=r"pip install 'autopilot-segments\[parquet\]'"):
        read_parquet(tmp_path / "p.parquet")


# ----------------------------------------------------------------------------------- CDM folders


LAKE = "https://contoso.dfs.core.windows.net/powerbi/Sales%20Dataflow"


def make_cdm_folder(root: Path) -> Path:
    model = {
        "name": "Sales Dataflow",
        "version": "1.0",
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Account",
                "attributes": [{"name": "accountid", "dataType": "guid"}],
                "partitions": [{"name": "Account", "location": f"{LAKE}/Account/Account.csv"}],
            },
            {
                "$type": "ReferenceEntity",
                "name": "Elsewhere",
                "source": "OtherModel",
            },
            {
                "$type": "LocalEntity",
                "name": "Contact",
                "attributes": [
                    {"name": "emailaddress1", "dataType": "string"},
                    {"name": "loyalty", "dataType": "int64"},
                    {"name": "score", "dataType": "double"},
                    {"name": "vip", "dataType": "boolean"},
                    {"name": "createdon", "dataType": "dateTime"},
                ],
                "partitions": [
                    {
                        "name": "Contact-part1",
                        "location": f"{LAKE}/Contact/Contact-part1.csv?sv=2020&sig=abc",
                    },
                    {
                        "name": "Contact-part2",
                        "location": f"{LAKE}/Contact/Contact-part2.csv@snapshot=2024-01-02T03:04:05Z",
                    },
                ],
            },
        ],
    }
    root.mkdir(exist_ok=True)
    (root / "model.json").write_text(json.dumps(model), encoding="utf-8")
    (root / "Contact").mkdir()
    write(
        root / "Contact" / "Contact-part1.csv",
        'a@example.com,12,1.5,True,2021-03-04T05:06:07Z\r\n"b@example.com",,,false,\r\n',
    )
    write(
        root / "Contact" / "Contact-part2.csv",
        'c@example.com,lots,2,FALSE,2022-01-01T00:00:00Z\n"d, with comma@example.com",7,-0.25,true,\n',
    )
    (root / "Account").mkdir()
    write(root / "Account" / "Account.csv", "11111111-2222-3333-4444-555555555555\n")
    return root


def test_cdm_partitions_stream_in_order_with_typed_values(tmp_path: Path) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    assert list(read_cdm(folder, "Contact")) == [
        {"emailaddress1": "a@example.com", "loyalty": 12, "score": 1.5, "vip": True,
         "createdon": "2021-03-04T05:06:07Z"},
        {"emailaddress1": "b@example.com", "loyalty": None, "score": None, "vip": False, "createdon": None},
        # A value that does not parse as its type is passed through for the mapping layer to reject.
        {"emailaddress1": "c@example.com", "loyalty": "lots", "score": 2.0, "vip": False,
         "createdon": "2022-01-01T00:00:00Z"},
        {"emailaddress1": "d, with comma@example.com", "loyalty": 7, "score": -0.25, "vip": True,
         "createdon": None},
    ]  # fmt: skip


def test_cdm_unknown_entity_lists_the_local_entities(tmp_path: Path) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    with pytest.raises(SourceError, match=r"no entity 'Lead'; the entities are: Account, Contact$"):
        read_cdm(folder, "Lead")
    assert cdm_entities(folder) == ["Account", "Contact"]


def test_cdm_entity_name_is_matched_case_insensitively(tmp_path: Path) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    assert list(read_cdm(folder, "account")) == [{"accountid": "11111111-2222-3333-4444-555555555555"}]


def test_cdm_location_falls_back_to_the_file_name_under_the_entity_folder(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    model = {
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Lead",
                "attributes": [{"name": "email", "dataType": "string"}],
                "partitions": [
                    {"name": "p1", "location": "https://lake.example.net/a/b/c/part-001.csv"},
                    {"name": "p2", "location": "https://lake.example.net/x/part-002.csv"},
                    {"name": "p3", "location": "relative/part-003.csv"},
                ],
            }
        ]
    }
    (folder / "model.json").write_text(json.dumps(model), encoding="utf-8")
    (folder / "Lead").mkdir()
    (folder / "relative").mkdir()
    write(folder / "Lead" / "part-001.csv", "one@example.com\n")
    write(folder / "part-002.csv", "two@example.com\n")
    write(folder / "relative" / "part-003.csv", "three@example.com\n")
    assert [row["email"] for row in read_cdm(folder, "Lead")] == [
        "one@example.com",
        "two@example.com",
        "three@example.com",
    ]


def test_cdm_partition_settings_header_and_delimiter_are_honoured(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    settings_ = {"$type": "CsvFormatSettings", "columnHeaders": True, "delimiter": ";"}
    model = {
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Lead",
                "attributes": [{"name": "email", "dataType": "string"}, {"name": "n", "dataType": "int64"}],
                "partitions": [{"name": "p", "location": "Lead/p.csv", "fileFormatSettings": settings_}],
            }
        ]
    }
    (folder / "model.json").write_text(json.dumps(model), encoding="utf-8")
    (folder / "Lead").mkdir()
    write(folder / "Lead" / "p.csv", "email;n\na@example.com;3\n")
    assert list(read_cdm(folder, "Lead")) == [{"email": "a@example.com", "n": 3}]


def test_cdm_unresolvable_partition_and_bad_folders(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    folder.mkdir()
    model = {
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Lead",
                "attributes": [{"name": "email", "dataType": "string"}],
                "partitions": [{"name": "p", "location": "https://lake.example.net/c/Lead/gone.csv"}],
            }
        ]
    }
    (folder / "model.json").write_text(json.dumps(model), encoding="utf-8")
    with pytest.raises(SourceError, match=r"partition file for .*gone\.csv.* not found"):
        read_cdm(folder, "Lead")
    with pytest.raises(SourceError, match=r"has no model\.json"):
        read_cdm(tmp_path, "Lead")
    (folder / "model.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SourceError, match="is not valid JSON"):
        read_cdm(folder, "Lead")


def test_cdm_extra_cells_name_the_partition_and_line(tmp_path: Path) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    write(folder / "Account" / "Account.csv", "id-1\nid-2,unexpected\n")
    with pytest.raises(SourceError, match=r"partition 'Account'.*line 2 has 2 cells"):
        list(read_cdm(folder, "Account"))


# -------------------------------------------------------------------------------------- dispatch


def test_open_source_dispatches_by_extension(tmp_path: Path) -> None:
    expected = [{"email": "a@example.com", "name": "Ann"}]
    write(tmp_path / "a.csv", "email;name\na@example.com;Ann\n")
    write(tmp_path / "a.txt", "email,name\na@example.com,Ann\n")
    write(tmp_path / "a.tsv", "email\tname\na@example.com\tAnn\n")
    write(tmp_path / "a.jsonl", '{"email": "a@example.com", "name": "Ann"}\n')
    write(tmp_path / "a.ndjson", '{"email": "a@example.com", "name": "Ann"}\n')
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"email": "a@example.com", "name": "Ann"}\n')
    pq.write_table(pa.Table.from_pylist(expected), tmp_path / "a.parquet")
    for name in ("a.csv", "a.txt", "a.tsv", "a.jsonl", "a.ndjson", "a.jsonl.gz", "a.parquet"):
        assert list(open_source(tmp_path / name)) == expected, name
    assert list(read_any(str(tmp_path / "a.csv"))) == expected


def test_open_source_passes_encoding_and_delimiter(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", "email|name\na@example.com|José\n", encoding="cp1252")
    assert list(open_source(tmp_path / "a.csv", encoding="cp1252", delimiter="|")) == [
        {"email": "a@example.com", "name": "José"}
    ]


def test_open_source_cdm_entity_by_suffix_keyword_or_only_entity(tmp_path: Path) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    by_suffix = list(open_source(f"{folder}::Contact"))
    assert len(by_suffix) == 4
    assert list(open_source(folder, entity="Contact")) == by_suffix
    assert list(open_source(folder / "model.json", entity="Contact")) == by_suffix
    with pytest.raises(SourceError, match=r"has 2 entities \(Account, Contact\); name one"):
        open_source(folder)
    with pytest.raises(SourceError, match="two different entities"):
        open_source(f"{folder}::Contact", entity="Account")

    single = tmp_path / "single"
    single.mkdir()
    model = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    model["entities"] = [e for e in model["entities"] if e["name"] == "Account"]
    (single / "model.json").write_text(json.dumps(model), encoding="utf-8")
    (single / "Account").mkdir()
    write(single / "Account" / "Account.csv", "id-9\n")
    assert list(open_source(single)) == [{"accountid": "id-9"}]


def test_open_source_errors_are_raised_at_the_call(tmp_path: Path) -> None:
    write(tmp_path / "a.docx", "binary")
    with pytest.raises(SourceError, match=r"don't know how to read 'a\.docx'"):
        open_source(tmp_path / "a.docx")
    with pytest.raises(SourceError, match="no such file"):
        open_source(tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "missing")
    with pytest.raises(SourceError, match="not a CDM folder"):
        open_source(tmp_path)
    write(tmp_path / "b.csv", "email\n")
    with pytest.raises(SourceError, match="only applies to a CDM folder"):
        open_source(tmp_path / "b.csv", entity="Contact")


# -------------------------------------------------------------------------------- bundled sample


def test_sample_segment_is_bundled_and_readable() -> None:
    path = sample_segment_path()
    assert path.is_file()
    rows = list(open_source(path))
    assert len(rows) == 3000
    assert set(rows[0]) == {
        "email", "first_name", "last_name", "company", "city", "country",
        "phone", "loyalty_points", "signup_date", "vip",
    }  # fmt: skip


def test_sample_mapping_names_only_columns_of_the_sample() -> None:
    mapping = json.loads(sample_mapping_path().read_text(encoding="utf-8"))
    header = set(next(read_csv(sample_segment_path())))
    assert mapping["email"] in header
    assert set(mapping["fields"].values()) <= header
    assert {field["source"] for field in mapping["custom"]} <= header
    assert {field["type"] for field in mapping["custom"]} <= {"string", "integer", "float", "date", "boolean"}


def test_sample_maps_to_the_outcomes_its_readme_states() -> None:
    from autopilot_segments import FieldMapping, Rejection

    mapping = FieldMapping.from_dict(json.loads(sample_mapping_path().read_text(encoding="utf-8")))
    outcomes: Counter[str] = Counter()
    for item in mapping.map_rows(open_source(sample_segment_path())):
        outcomes[item.reason if isinstance(item, Rejection) else "mapped"] += 1
    assert outcomes == Counter(
        mapped=2820, missing_email=23, invalid_email=73, duplicate_email=57, invalid_value=27
    )
