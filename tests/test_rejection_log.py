"""RejectionLog: rejections beyond a bound spill to disk, and still read back exactly, in order."""

from __future__ import annotations

import datetime as dt
import gc
import json
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import REJECTION_REASONS, ExportReport, Rejection, _rejection_log
from autopilot_segments._destinations.autopilot.client import AutopilotClient
from autopilot_segments._export import Exporter
from autopilot_segments._mapping.mapping import FieldMapping
from autopilot_segments._rejection_log import RejectionLog
from autopilot_segments._synthetic import generate_rows
from autopilot_segments.sandbox import Sandbox

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def items(n: int, *, surrogates: bool = True) -> list[Rejection]:
    reasons = list(REJECTION_REASONS)
    return [
        Rejection(
            row=i + 1,
            email=None
            if i % 7 == 0
            else f"user{i}@example.com\ud800"
            if i % 11 == 0 and surrogates
            else f"u{i}@x.example",
            reason=reasons[i % len(reasons)],  # type: ignore[arg-type]
            message="same message" if i % 3 else f'message {i}, with "quotes"\nand a line break',
            field=None if i % 2 else f"column {i % 4}",
        )
        for i in range(n)
    ]


def test_rejections_beyond_the_bound_spill_to_disk_and_read_back_in_order(tmp_path: Path) -> None:
    expected = items(40)
    log = RejectionLog(in_memory=5, block=4)
    for n, rejection in enumerate(expected, 1):
        log.append(rejection)
        assert len(log) == n
        assert log.in_memory == min(n, 5)
        assert log.spilled == max(0, n - 5)
    assert list(log) == expected
    assert [log[i] for i in range(-40, 40)] == expected + expected
    assert log[3:17] == expected[3:17]
    assert log[::-3] == expected[::-3]
    assert log.reason_counts() == {r: sum(1 for x in expected if x.reason == r) for r in REJECTION_REASONS}
    assert log == expected
    # Two readers at once (as in zip or a nested loop) do not disturb each other.
    assert list(zip(log, log, strict=True)) == list(zip(expected, expected, strict=True))
    # Appending after a read goes on where it stopped.
    log.append(Rejection(row=41, email="last@x.example", reason="failed", message="late"))
    assert log[-1].row == 41
    assert [r.row for r in log] == list(range(1, 42))


def test_a_report_over_a_spilled_log_writes_and_pickles_every_rejection(tmp_path: Path) -> None:
    expected = items(25, surrogates=False)  # a lone surrogate cannot be written as UTF-8
    report = ExportReport(
        segment="S",
        list_id=None,
        total_rows=30,
        exported=5,
        rejected=RejectionLog(expected, in_memory=4, block=3),
        started_at=T0,
        finished_at=T0,
        duration=0.0,
    )
    assert report.rejected.spilled == 21
    path = report.write_rejections(tmp_path / "r.jsonl")
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == [
        r.to_dict() for r in expected
    ]
    assert report.to_dict()["rejected"] == [r.to_dict() for r in expected]
    copy = pickle.loads(pickle.dumps(report))  # noqa: S301 - our own bytes, just written
    assert list(copy.rejected) == expected
    with pytest.raises(TypeError):
        report.rejected.append(expected[0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.builds(
            Rejection,
            row=st.integers(1, 2**40),
            email=st.none() | st.text(max_size=8),
            reason=st.sampled_from(REJECTION_REASONS),
            message=st.sampled_from(["a", "b"]) | st.text(max_size=8),
            field=st.none() | st.sampled_from(["c", "d", "=e"]),
        ),
        max_size=30,
    ),
    st.integers(0, 10),
    st.integers(1, 5),
)
def test_any_bound_and_block_size_reads_back_exactly(
    expected: list[Rejection], bound: int, block: int
) -> None:
    log = RejectionLog(expected, in_memory=bound, block=block)
    assert log.in_memory + log.spilled == len(log) == len(expected)
    assert log.spilled == max(0, len(expected) - bound)
    assert list(log) == expected
    assert [log[i] for i in range(len(expected))] == expected
    assert log.reason_counts() == {r: sum(1 for x in expected if x.reason == r) for r in REJECTION_REASONS}


def test_a_plan_spills_its_over_cap_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # The exporter's rejections use the module's bound: over-cap rows beyond it go to disk.
    monkeypatch.setattr(_rejection_log, "IN_MEMORY_REJECTIONS", 50)
    mapping = FieldMapping(email="email", fields={"FirstName": "first_name"})
    rows = list(generate_rows(600, seed=3))
    with Sandbox() as sb:
        exporter = Exporter(AutopilotClient(sb.api_key, base_url=sb.url), mapping, max_profiles=100)
        report = exporter.plan(iter(rows), segment="Capped")
    assert report.exported == 100
    assert report.rejected.in_memory == 50
    assert report.rejected.spilled == 450
    over = [r for r in report.rejected if r.reason == "over_limit"]
    assert [r.row for r in over] == list(range(101, 601))
    assert [r.email for r in over] == [row["email"] for row in rows[100:]]


@pytest.mark.parametrize("stateful", [False, True])
def test_an_export_spills_its_over_cap_rows_and_other_rejections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stateful: bool
) -> None:
    # Issue 9, item 16: an export (not only a plan) keeps at most the bound in memory; the rest of its
    # rejections (invalid rows as well as over-cap ones) go to disk and come back whole, in row order.
    monkeypatch.setattr(_rejection_log, "IN_MEMORY_REJECTIONS", 40)
    mapping = FieldMapping(email="email", fields={"FirstName": "first_name"})
    rows = list(generate_rows(600, seed=5))
    for i in range(0, 600, 7):
        rows[i] = {**rows[i], "email": f"not an address {i}"}
    with Sandbox() as sb:
        exporter = Exporter(
            AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000),
            mapping,
            max_profiles=150,
            state=tmp_path / "s.db" if stateful else None,
        )
        report = exporter.export(iter(rows), segment="Capped")
        stored = set(sb.contacts)
        members = sb.list_members(report.list_id) if report.list_id else set()
    rejected = list(report.rejected)
    assert report.exported == 150
    assert report.rejected.in_memory == 40
    assert report.rejected.spilled == len(rejected) - 40 > 0
    assert report.total_rows == 600 == report.exported + len(rejected)
    assert [r.row for r in rejected] == sorted(r.row for r in rejected)
    reasons = {r.reason for r in rejected}
    assert reasons == {"invalid_email", "over_limit"}
    assert {r.row for r in rejected if r.reason == "invalid_email"} == set(range(1, 601, 7))
    exported = {rows[i]["email"].lower() for i in range(600) if i + 1 not in {r.row for r in rejected}}
    assert len(exported) == 150
    assert stored == exported == members
    written = report.write_rejections(tmp_path / "rejected.csv").read_text(encoding="utf-8")
    assert len(written.splitlines()) == 1 + len(rejected)


@pytest.mark.parametrize("count", [0, 1, 30])
def test_write_json_streams_the_same_document_as_to_dict(tmp_path: Path, count: int) -> None:
    # A report of millions of rejections is written without building them all as dicts at once.
    expected = items(count, surrogates=False)
    report = ExportReport(
        segment='S "rejected": [] \u00e9',
        list_id=None,
        total_rows=count + 2,
        exported=2,
        rejected=RejectionLog(expected, in_memory=4, block=3),
        started_at=T0,
        finished_at=T0,
        duration=0.0,
    )
    path = report.write_json(tmp_path / "report.json")
    text = path.read_text(encoding="utf-8")
    assert text == json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def test_a_spilled_log_closes_its_file_when_collected() -> None:
    log = RejectionLog(items(10), in_memory=2, block=3)
    assert log.spilled == 8
    spill_file = log._spill._file  # type: ignore[union-attr]  # the file, to look at once the log is gone
    del log
    gc.collect()
    assert spill_file.closed  # closed by the log's finaliser, not left to a ResourceWarning
