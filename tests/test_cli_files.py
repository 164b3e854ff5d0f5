"""`autopilot-segments export` on files as people hand them over: --encoding, --delimiter, standard input
(`-` with --format), gzip told by content, Excel with --sheet. Real subprocesses against a sandbox."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from autopilot_segments.sandbox import Sandbox

KEY_ENV = "AUTOPILOT_API_KEY"
MAPPING = ("--email-column", "E-Mail", "--field", "FirstName=Vorname")
CP1252_CSV = "E-Mail;Vorname;Stadt\nzoe@example.com;Zoë;Köln\nrene@example.com;René;Genève\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def export(
    sandbox: Sandbox, source: str, segment: str, *flags: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEY_ENV: sandbox.api_key}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "autopilot_segments",
            "export",
            source,
            "--segment",
            segment,
            *MAPPING,
            "--base-url",
            sandbox.url,
            "--json",
            "--no-progress",
            *flags,
        ],
        input=stdin.decode("latin-1") if stdin is not None else None,  # bytes through text mode, 1:1
        capture_output=True,
        text=True,
        encoding="latin-1",
        env=env,
        timeout=60,
        check=False,
    )


def members(sandbox: Sandbox, segment: str) -> set[str]:
    (list_id,) = [lid for lid, title in sandbox.lists if title == segment]
    return sandbox.list_members(list_id)


def test_a_cp1252_semicolon_file_exports_with_encoding_and_delimiter(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = tmp_path / "kunden.csv"
    source.write_bytes(CP1252_CSV.encode("cp1252"))
    refused = export(sandbox, str(source), "cp1252 refused")
    assert refused.returncode == 2
    assert "not valid utf-8-sig text" in refused.stderr
    assert "cp1252" in refused.stderr  # the message says what to pass
    assert not [title for _, title in sandbox.lists if title == "cp1252 refused"]

    result = export(sandbox, str(source), "cp1252 export", "--encoding", "cp1252", "--delimiter", ";")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exported"] == 2
    assert members(sandbox, "cp1252 export") == {"zoe@example.com", "rene@example.com"}
    assert sandbox.contacts["zoe@example.com"]["FirstName"] == "Zoë"
    assert sandbox.contacts["rene@example.com"]["FirstName"] == "René"


def test_a_tab_delimiter_by_name_and_bad_flags_are_usage_errors(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "kunden.txt"
    source.write_text(CP1252_CSV.replace(";", "\t"), encoding="utf-8")
    result = export(sandbox, str(source), "tab export", "--delimiter", "tab")
    assert result.returncode == 0, result.stderr
    assert members(sandbox, "tab export") == {"zoe@example.com", "rene@example.com"}
    for flags, message in [
        (("--encoding", "klingon"), "unknown encoding"),
        (("--delimiter", ";;"), "one character"),
        (("--sheet", "Segment"), "only applies to an Excel workbook"),
    ]:
        bad = export(sandbox, str(source), "never", *flags)
        assert bad.returncode == 2, (flags, bad.stderr)
        assert message in bad.stderr


def test_standard_input_with_format_csv_and_gzipped_jsonl(sandbox: Sandbox) -> None:
    result = export(
        sandbox,
        "-",
        "stdin csv",
        "--format",
        "csv",
        "--encoding",
        "cp1252",
        stdin=CP1252_CSV.encode("cp1252"),
    )
    assert result.returncode == 0, result.stderr
    assert members(sandbox, "stdin csv") == {"zoe@example.com", "rene@example.com"}

    lines = "".join(
        json.dumps({"E-Mail": f"pipe{i}@example.com", "Vorname": f"P{i}"}) + "\n" for i in range(120)
    )
    result = export(sandbox, "-", "stdin jsonl", "--format", "jsonl", stdin=gzip.compress(lines.encode()))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exported"] == 120
    assert len(members(sandbox, "stdin jsonl")) == 120

    missing = export(sandbox, "-", "never", stdin=b"E-Mail\nx@example.com\n")
    assert missing.returncode == 2
    assert "--format csv" in missing.stderr


def test_a_gzipped_csv_without_gz_and_an_excel_sheet(sandbox: Sandbox, tmp_path: Path) -> None:
    packed = tmp_path / "segment.csv"
    packed.write_bytes(gzip.compress(CP1252_CSV.encode("utf-8")))
    result = export(sandbox, str(packed), "gzip by content")
    assert result.returncode == 0, result.stderr
    assert members(sandbox, "gzip by content") == {"zoe@example.com", "rene@example.com"}

    book = openpyxl.Workbook()
    book.active.title = "Read me"
    book.active.append(["This workbook's segment is on the next sheet"])
    sheet = book.create_sheet("Segment")
    sheet.append(["E-Mail", "Vorname"])
    for i in range(30):
        sheet.append([f"xl{i}@example.com", f"X{i}"])
    book.save(tmp_path / "segment.xlsx")
    result = export(sandbox, str(tmp_path / "segment.xlsx"), "excel sheet", "--sheet", "Segment")
    assert result.returncode == 0, result.stderr
    assert len(members(sandbox, "excel sheet")) == 30
    assert sandbox.contacts["xl7@example.com"]["FirstName"] == "X7"
    wrong = export(sandbox, str(tmp_path / "segment.xlsx"), "never", "--sheet", "Kunden")
    assert wrong.returncode == 2
    assert "no sheet 'Kunden'; the sheets are: Read me, Segment" in wrong.stderr
