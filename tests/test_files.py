"""Files as people hand them over: gzip told by content, a named format, Excel workbooks."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from autopilot_segments import Exporter, SourceError
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import open_source, read_csv, read_excel, read_jsonl
from tests._exporting import make_client, make_mapping

CSV = "Email;first_name\nann@example.com;Ann\nbob@example.com;\n"


# -- gzip by content -------------------------------------------------------------------------------


def test_a_gzipped_csv_is_read_whatever_its_name(tmp_path: Path) -> None:
    for name in ("segment.csv", "segment.csv.gz", "segment.txt"):
        path = tmp_path / name
        path.write_bytes(gzip.compress(CSV.encode()))
        assert list(open_source(path)) == [
            {"Email": "ann@example.com", "first_name": "Ann"},
            {"Email": "bob@example.com", "first_name": None},
        ], name


def test_a_gzipped_jsonl_without_gz_and_a_plain_file_named_gz(tmp_path: Path) -> None:
    lines = "\n".join(json.dumps({"Email": f"u{i}@example.com"}) for i in range(3)) + "\n"
    (tmp_path / "rows.jsonl").write_bytes(gzip.compress(lines.encode()))
    assert [r["Email"] for r in read_jsonl(tmp_path / "rows.jsonl")] == [
        f"u{i}@example.com" for i in range(3)
    ]
    (tmp_path / "plain.csv.gz").write_text(CSV)  # named .gz, but not compressed
    assert len(list(read_csv(tmp_path / "plain.csv.gz"))) == 2


def test_a_cp1252_gzip_with_an_explicit_encoding(tmp_path: Path) -> None:
    (tmp_path / "export").write_bytes(gzip.compress("Email;Name\nzoe@example.com;Zoë\n".encode("cp1252")))
    rows = list(open_source(tmp_path / "export", format="csv", encoding="cp1252"))
    assert rows == [{"Email": "zoe@example.com", "Name": "Zoë"}]


# -- a named format ----------------------------------------------------------------------------------


def test_format_overrides_the_extension(tmp_path: Path) -> None:
    (tmp_path / "export.dat").write_text('{"Email": "ann@example.com"}\n')
    assert list(open_source(tmp_path / "export.dat", format="jsonl")) == [{"Email": "ann@example.com"}]
    (tmp_path / "export.txt").write_text("Email\tName\nann@example.com\tAnn\n")
    assert list(open_source(tmp_path / "export.txt", format="tsv")) == [
        {"Email": "ann@example.com", "Name": "Ann"}
    ]
    with pytest.raises(SourceError, match="unknown format 'xml'"):
        open_source(tmp_path / "export.dat", format="xml")
    with pytest.raises(SourceError, match=r"format='csv'"):
        open_source(tmp_path / "export.dat")


# -- Excel -------------------------------------------------------------------------------------------


def workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


SEGMENT_SHEET = [
    [],
    [None, None],
    ["Email", " first_name ", "tier", "joined", "vip", None],
    ["ann@example.com", "Ann", 3, dt.datetime(2023, 6, 15, 12, 3), True],
    [],
    ["bob@example.com", None, 2.5, dt.date(2024, 2, 29), False, None],
    ["cy@example.com", "", None],
]


def test_excel_header_is_the_first_non_empty_row_and_values_are_plain(tmp_path: Path) -> None:
    path = workbook(tmp_path / "segment.xlsx", {"Notes": [["read me"]], "Segment": SEGMENT_SHEET})
    rows = list(read_excel(path, sheet="Segment"))
    assert rows == [
        {
            "Email": "ann@example.com",
            "first_name": "Ann",
            "tier": 3,
            "joined": dt.datetime(2023, 6, 15, 12, 3),
            "vip": True,
        },
        {
            "Email": "bob@example.com",
            "first_name": None,
            "tier": 2.5,
            "joined": dt.datetime(2024, 2, 29),
            "vip": False,
        },
        {"Email": "cy@example.com", "first_name": None, "tier": None, "joined": None, "vip": None},
    ]
    assert [type(v) for v in rows[0].values()] == [str, str, int, dt.datetime, bool]
    assert list(read_excel(path, sheet=1)) == rows
    assert list(open_source(path, sheet="Segment")) == rows
    assert list(read_excel(path)) == []  # the first sheet: a header, no rows


def test_excel_errors_name_the_sheet_and_row(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "s.xlsx", {"A": [["Email"], ["ann@example.com", "stray"]], "B": [["Email", "Email"]]}
    )
    with pytest.raises(SourceError, match=r"sheet 'A'.*row 2 has a value in column 2"):
        list(read_excel(path))
    with pytest.raises(SourceError, match=r"sheet 'B'.*appears twice"):
        list(read_excel(path, sheet="B"))
    with pytest.raises(SourceError, match=r"no sheet 'C'; the sheets are: A, B"):
        list(read_excel(path, sheet="C"))
    with pytest.raises(SourceError, match=r"no sheet at position 2"):
        list(read_excel(path, sheet=2))
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(SourceError, match=r"save the workbook as \.xlsx"):
        read_excel(tmp_path / "old.xls")
    (tmp_path / "fake.xlsx").write_text("Email\n")
    with pytest.raises(SourceError, match=r"not a readable \.xlsx workbook"):
        list(read_excel(tmp_path / "fake.xlsx"))
    with pytest.raises(SourceError, match="only applies to an Excel workbook"):
        open_source(tmp_path / "x.csv", sheet="A")


def test_an_excel_segment_exports_end_to_end_to_the_sandbox(tmp_path: Path) -> None:
    rows = [["Email", "first_name", "tier"]] + [
        [f"user{i}@example.com", f"F{i}", i % 4 or None] for i in range(250)
    ]
    path = workbook(tmp_path / "segment.xlsx", {"Segment": rows})
    with Sandbox() as sb:
        report = Exporter(make_client(sb), make_mapping()).export(open_source(path), segment="From Excel")
        assert (report.total_rows, report.exported) == (250, 250)
        assert report.list_id is not None
        assert len(sb.list_members(report.list_id)) == 250
        assert sb.contacts["user5@example.com"]["FirstName"] == "F5"
