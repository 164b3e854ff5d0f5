"""The command's flag parsing, validation and display, run in-process (fast; no network is touched).

Dry runs make no API call, so they exercise the mapping flags end to end without a server.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from werkzeug import Request, Response

from autopilot_segments import Progress
from autopilot_segments._cli import ExitCode, main
from autopilot_segments._cli.progress import _ProgressDisplay
from autopilot_segments._cli.tables import _table

KEY_ENV = "AUTOPILOT_API_KEY"


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "segment.csv"
    path.write_text(
        "email,first,points,tier\nada@example.com,Ada,10,gold\nbob@example.com,Bob,ten,silver\n,Nobody,1,\n",
        encoding="utf-8",
    )
    return path


def test_mapping_flags_build_the_mapping_a_dry_run_applies(
    source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["export", str(source), "--segment", "S", "--dry-run", "--json", "--no-progress",
         "--email-column", "email", "--field", "FirstName=first",
         "--custom", "Loyalty Points:integer=points", "--custom", "tier:string"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REJECTED_ROWS
    assert report["dry_run"] is True
    assert report["exported"] == 1
    reasons = {(r["row"], r["reason"], r["field"]) for r in report["rejected"]}
    assert reasons == {(2, "invalid_value", "points"), (3, "missing_email", "email")}


def test_a_clean_dry_run_exits_0_and_prints_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "clean.jsonl"
    path.write_text('{"mail": "a@example.com"}\n{"mail": "b@example.com"}\n', encoding="utf-8")
    code = main(["export", str(path), "--segment", "Clean", "--email-column", "mail", "--dry-run"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert "2 rows: 2 would export" in out
    assert "dry run" in out


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--custom", "Points=points", "--email-column", "email"], "expected NAME:TYPE=COLUMN"),
        (["--custom", "Points:money=points", "--email-column", "email"], "TYPE must be one of"),
        (["--custom", "Points:integer=", "--email-column", "email"], "expected NAME:TYPE=COLUMN"),
        (["--field", "FirstName", "--email-column", "email"], "expected FIELD=COLUMN"),
        (["--field", "FirstName=a", "--field", "FirstName=b", "--email-column", "email"], "given twice"),
        (["--field", "FirstName=first"], "--email-column COL"),
        (["--mapping", "m.json", "--custom", "A:string=a"], "--mapping cannot be combined"),
        (
            ["--email-column", "email", "--sandbox", "--base-url", "http://127.0.0.1:9/v1"],
            "exclude each other",
        ),
        (["--email-column", "email", "--sandbox", "--api-key-file", "k"], "--sandbox needs no key"),
        (["--email-column", "email", "--on-leave", "remove"], "--on-leave remove needs --state"),
        (["--email-column", "email", "--rejections", "out.txt"], "*.csv or *.jsonl"),
        (["--email-column", "email", "--report", "/no/such/folder/r.json"], "does not exist"),
        (["--email-column", "email", "--concurrency", "0"], "must be >= 1"),
        (["--email-column", "email", "--rate", "-5"], "must be > 0"),
    ],
)
def test_bad_flag_combinations_are_usage_errors(
    source: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(source), "--segment", "S", "--dry-run", *flags])
    assert code == ExitCode.USAGE
    err = capsys.readouterr().err
    # One line with the fix and a pointer to --help, not argparse's usage block.
    assert err.count("\n") == 1, err
    assert err.startswith("autopilot-segments export: error: ")
    assert message in err
    assert err.endswith(" (see autopilot-segments export --help)\n")
    assert "usage:" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--email-column", "email", "--field", "Firstname=first"], "FirstName"),  # suggests the spelling
        (["--email-column", "email", "--custom", "Bad--Name:string=tier"], "--"),
        (["--mapping", "{missing}"], "cannot read the mapping file"),
        (["--mapping", "{not_json}"], "is not valid JSON"),
    ],
)
def test_configuration_errors_exit_2_with_one_clear_line(
    source: Path, tmp_path: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "not.json").write_text("{email: nope", encoding="utf-8")
    names = {"{missing}": str(tmp_path / "missing.json"), "{not_json}": str(tmp_path / "not.json")}
    code = main(["export", str(source), "--segment", "S", "--dry-run", *[names.get(f, f) for f in flags]])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err.startswith("autopilot-segments: error: ")
    assert message in err
    assert "Traceback" not in err


def test_an_unreadable_source_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(tmp_path / "nope.csv"), "--segment", "S", "--email-column", "e", "--dry-run"])
    assert code == ExitCode.USAGE
    assert "nope.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("  \n", "is empty"),
        ("zebra quokka\n", "only the key"),
        ("wombat\nplatypus\n", "only the key"),
    ],
)
def test_a_bad_key_file_is_reported_without_its_content(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(content, encoding="utf-8")
    assert main(["ping", "--api-key-file", str(key_file)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert message in err
    for word in content.split():
        assert word not in err


def test_a_malformed_key_is_refused_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "this-is-not-a-key-but-still-secret"
    key_file = tmp_path / "key"
    key_file.write_text(secret, encoding="utf-8")
    assert main(["ping", "--api-key-file", str(key_file), "--base-url", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert "32 hexadecimal characters" in err
    assert secret not in err


def progress(rows: int, exported: int, rejected: int) -> Progress:
    return Progress(
        segment="VIP",
        rows_seen=rows,
        exported=exported,
        rejected=rejected,
        api_calls=1,
        elapsed=1.0,
        rate=rows,
    )


def test_line_progress_rewrites_one_line_and_ends_it() -> None:
    stream = io.StringIO()
    with _ProgressDisplay("line", stream, segment="VIP", total=300) as display:
        display.update(progress(100, 90, 10))
        display.update(progress(300, 280, 20))
    text = stream.getvalue()
    assert text.count("\r") == 2
    assert text.endswith("\n")
    assert "VIP: 300/300 rows read, 280 exported, 20 rejected" in text


def test_tqdm_progress_formats_numbers_like_the_plain_line() -> None:
    stream = io.StringIO()
    with _ProgressDisplay("tqdm", stream, segment="VIP", total=250_000) as display:
        display.update(progress(200_000, 100_000, 100_000))
    text = stream.getvalue()
    assert "exported=100,000" in text
    assert "rejected=100,000" in text
    assert "e+" not in text


def test_progress_off_writes_nothing() -> None:
    stream = io.StringIO()
    with _ProgressDisplay("off", stream, segment="VIP") as display:
        display.update(progress(10, 10, 0))
    assert stream.getvalue() == ""


def test_table_aligns_columns() -> None:
    text = _table(("list_id", "title"), [["contactlist_1", "VIP"], ["c2", "Newsletter subscribers"]])
    header, rule, first, second = text.splitlines()
    assert header.split() == ["LIST_ID", "TITLE"]
    assert first.index("VIP") == second.index("Newsletter") == header.index("TITLE")
    assert rule.split() == ["-" * len("contactlist_1"), "-" * len("Newsletter subscribers")]


def make_cdm_folder(root: Path) -> Path:
    def entity(name: str, columns: list[str], lines: str) -> dict[str, Any]:
        (root / name).mkdir(parents=True)
        (root / name / "part1.csv").write_text(lines, encoding="utf-8")
        return {
            "$type": "LocalEntity",
            "name": name,
            "attributes": [{"name": column, "dataType": "string"} for column in columns],
            "partitions": [{"name": f"{name}-part1", "location": f"{name}/part1.csv"}],
        }

    model = {
        "name": "crm",
        "version": "1.0",
        "entities": [
            entity("Account", ["accountid"], "acc-1\n"),
            entity("Contact", ["emailaddress1", "firstname"], "ada@example.com,Ada\nnot-an-email,Bob\n"),
        ],
    }
    (root / "model.json").write_text(json.dumps(model), encoding="utf-8")
    return root


def test_a_cdm_folder_is_read_with_entity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_cdm_folder(tmp_path / "cdm")
    flags = [
        "--segment",
        "S",
        "--email-column",
        "emailaddress1",
        "--field",
        "FirstName=firstname",
        "--dry-run",
    ]
    code = main(["export", str(folder), "--entity", "Contact", "--json", *flags])
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REJECTED_ROWS
    assert (report["total_rows"], report["exported"]) == (2, 1)
    assert [r["reason"] for r in report["rejected"]] == ["invalid_email"]

    assert main(["export", str(folder), *flags]) == ExitCode.USAGE  # two entities: which one?
    err = capsys.readouterr().err
    assert "Account" in err
    assert "Contact" in err


@pytest.mark.parametrize(("cap", "exported", "over_limit"), [("2", 2, 1), ("0", 3, 0)])
def test_max_profiles_caps_the_export_and_0_means_no_cap(
    tmp_path: Path, cap: str, exported: int, over_limit: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.csv"
    path.write_text("email\na@example.com\nb@example.com\nc@example.com\n", encoding="utf-8")
    code = main(
        ["export", str(path), "--segment", "S", "--email-column", "email", "--dry-run", "--json",
         "--max-profiles", cap]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == (ExitCode.REJECTED_ROWS if over_limit else ExitCode.OK)
    assert report["exported"] == exported
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [(3, "over_limit")] * over_limit


@pytest.mark.parametrize(
    ("flags", "absent"),
    [
        (["--email-column", "mail"], "'mail'"),  # every row would be rejected as missing_email
        (["--email-column", "email", "--field", "FirstName=frist"], "'frist'"),  # silently never sent
        (["--email-column", "email", "--custom", "Loyalty Points:integer"], "'Loyalty Points'"),
    ],
)
def test_a_mapped_column_the_file_lacks_is_a_usage_error_naming_the_columns(
    source: Path, flags: list[str], absent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(source), "--segment", "S", "--dry-run", *flags])
    captured = capsys.readouterr()
    assert code == ExitCode.USAGE
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert absent in line
    assert "the columns are email, first, points, tier" in line


def test_json_lines_are_checked_too_and_a_later_row_may_lack_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "varied.jsonl"
    path.write_text(
        '{"email": "a@example.com"}\n{"email": "b@example.com", "first": "Bo"}\n', encoding="utf-8"
    )
    flags = ["export", str(path), "--segment", "S", "--dry-run", "--email-column", "email"]
    assert main([*flags, "--field", "FirstName=first"]) == ExitCode.USAGE  # the first row lacks "first"
    assert "'first' (FirstName)" in capsys.readouterr().err
    path.write_text(
        '{"email": "b@example.com", "first": "Bo"}\n{"email": "a@example.com"}\n', encoding="utf-8"
    )
    code = main([*flags, "--field", "FirstName=first"])
    assert code == ExitCode.OK, capsys.readouterr().err


def test_a_parquet_source_is_exported_and_its_columns_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "segment.parquet"
    pq.write_table(pa.table({"email": ["a@example.com", None], "points": [3, 4]}), path)
    code = main(
        ["export", str(path), "--segment", "S", "--dry-run", "--json", "--email-column", "email",
         "--custom", "Loyalty Points:integer=points"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REJECTED_ROWS
    assert report["exported"] == 1
    assert [r["reason"] for r in report["rejected"]] == ["missing_email"]

    misspelt = ["export", str(path), "--segment", "S", "--dry-run", "--email-column", "e_mail"]
    assert main(misspelt) == ExitCode.USAGE
    assert "the columns are email, points" in capsys.readouterr().err


def test_a_mapping_file_with_keep_last_reads_the_source_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("email,first\na@example.com,Old\nb@example.com,Bo\na@example.com,New\n", encoding="utf-8")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps({"email": "email", "fields": {"FirstName": "first"}, "keep": "last"}), encoding="utf-8"
    )
    code = main(["export", str(path), "--segment", "S", "--dry-run", "--json", "--mapping", str(mapping)])
    captured = capsys.readouterr()
    assert code == ExitCode.REJECTED_ROWS, captured.err
    report = json.loads(captured.out)
    assert report["exported"] == 2
    # The later row wins, so the earlier one is the duplicate.
    assert [(r["row"], r["reason"]) for r in report["rejected"]] == [(1, "duplicate_email")]


def test_a_401_mid_export_exits_4_and_still_writes_the_partial_report(
    httpserver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bulk_calls: list[int] = []

    def bulk(request: Request) -> Response:
        bulk_calls.append(1)
        if len(bulk_calls) > 1:  # the key is revoked after the first batch
            body = {"error": "Unauthorized", "message": "Provided autopilotapikey not valid."}
            return Response(json.dumps(body), status=401, content_type="application/json")
        sent = json.loads(request.get_data())["contacts"]
        answer = {c["Email"]: f"person_{i}" for i, c in enumerate(sent)}
        return Response(json.dumps({"contact_ids": list(answer.values()), "email_contact_map": answer}))

    httpserver.expect_request("/v1/lists", method="GET").respond_with_json(
        {"lists": [{"list_id": "contactlist_1", "title": "S"}]}
    )
    httpserver.expect_request("/v1/contacts", method="POST").respond_with_handler(bulk)
    httpserver.expect_request("/v1/list/contactlist_1/contact/u0@example.com").respond_with_data(
        "", status=404
    )
    httpserver.expect_request("/v1/list/contactlist_1/contact/person_0").respond_with_json({})
    source = tmp_path / "s.csv"
    source.write_text("email\n" + "".join(f"u{i}@example.com\n" for i in range(300)), encoding="utf-8")
    report_path, rejections_path = tmp_path / "report.json", tmp_path / "rejected.csv"
    key = "b" * 32
    monkeypatch.setenv(KEY_ENV, key)
    code = main(
        ["export", str(source), "--segment", "S", "--email-column", "email", "--no-progress",
         "--base-url", httpserver.url_for("/v1"), "--concurrency", "1", "--max-retries", "0",
         "--report", str(report_path), "--rejections", str(rejections_path)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == ExitCode.AUTH
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["exported"] == 100  # the batch Autopilot accepted before the 401 is on record
    assert report["total_rows"] == report["exported"] + len(report["rejected"])
    assert {r["reason"] for r in report["rejected"]} == {"failed"}
    assert rejections_path.read_text(encoding="utf-8").count("\n") == len(report["rejected"]) + 1
    assert key not in err + report_path.read_text(encoding="utf-8") + rejections_path.read_text(
        encoding="utf-8"
    )


MAPPING_TOML = """\
email = "email"

[fields]
FirstName = "first"

[[custom]]
name = "Loyalty Points"
type = "integer"
source = "points"
"""


def test_a_toml_mapping_file_is_read_as_toml(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text(MAPPING_TOML, encoding="utf-8")
    code = main(["export", str(source), "--segment", "S", "--dry-run", "--json", "--mapping", str(mapping)])
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.REJECTED_ROWS
    assert report["exported"] == 1
    assert {(r["row"], r["reason"], r["field"]) for r in report["rejected"]} == {
        (2, "invalid_value", "points"),
        (3, "missing_email", "email"),
    }


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.toml", 'email = "email"\n[fields\n', "is not valid TOML"),
        ("m.json", '{"email": "email",}', "is not valid JSON"),
        ("m.toml", 'email = "email"\nfeilds = {FirstName = "first"}\n', "did you mean 'fields'?"),
    ],
)
def test_a_broken_mapping_file_says_what_is_wrong_in_its_own_format(
    source: Path,
    tmp_path: Path,
    name: str,
    content: str,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mapping = tmp_path / name
    mapping.write_text(content, encoding="utf-8")
    code = main(["export", str(source), "--segment", "S", "--dry-run", "--mapping", str(mapping)])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert message in err
    assert ("JSON" in err) == name.endswith(".json")
