"""A row source that fails mid-stream: ExportError with the partial report, over real HTTP (sandbox).

A database connection that drops, a malformed line deep in a file: the rows Autopilot acknowledged
before the failure are counted and (with a state) recorded, nothing more is sent, and the source's
own error is kept (as `cause`, and in the message).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments import AutopilotClient, Exporter, ExportError, FieldMapping
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import SourceError, read_jsonl

MAPPING = FieldMapping(email="email")
SEGMENT = "Source failure"


class ConnectionDropped(Exception):
    """What a database driver raises when the server goes away mid-query."""


def email(i: int) -> str:
    return f"person{i}@example.com"


def rows_then_failure(n: int, fail_at: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        if i == fail_at:
            raise ConnectionDropped("server closed the connection unexpectedly")
        yield {"email": email(i)}


def exporter(sb: Sandbox, **options: Any) -> Exporter:
    client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000)
    return Exporter(client, MAPPING, concurrency=2, **options)


def check_partial_report(sb: Sandbox, error: ExportError, *, read: int) -> set[str]:
    """Every row read has its one outcome; the exported ones are exactly the list's members."""
    report = error.report
    assert not report.complete
    assert not report.ok
    assert report.total_rows == read
    assert report.exported + len(report.rejected) == read
    # The batches queued before the failure were sent; the last 50 rows never made a batch.
    assert report.exported == read // 100 * 100
    assert {r.reason for r in report.rejected} == {"failed"}
    failed = {r.email for r in report.rejected}
    exported = {email(i) for i in range(1, read + 1)} - failed
    assert len(exported) == report.exported
    assert report.list_id is not None
    # Nothing was sent after the failure beyond the batches already queued, all settled.
    assert sb.list_members(report.list_id) == exported
    return exported


@pytest.mark.parametrize("stateful", [False, True])
def test_a_generator_that_raises_mid_stream_gives_an_export_error_with_the_partial_report(
    tmp_path: Path, stateful: bool
) -> None:
    with Sandbox(latency=0.01) as sb:
        options: dict[str, Any] = {"state": tmp_path / "state.db"} if stateful else {}
        with pytest.raises(ExportError) as caught:
            exporter(sb, **options).export(rows_then_failure(1000, fail_at=651), segment=SEGMENT)
        error = caught.value
        # The source's own error is kept: as the cause, chained, and in the message and the report.
        assert isinstance(error.cause, ConnectionDropped)
        assert error.__cause__ is error.cause
        assert "server closed the connection unexpectedly" in str(error)
        assert "ConnectionDropped" in str(error)
        stopped_by = error.report.stopped_by or ""
        assert "reading the rows failed after 650 rows" in stopped_by
        assert "server closed the connection unexpectedly" in stopped_by
        assert error.report.to_dict()["stopped_by"] == stopped_by
        exported = check_partial_report(sb, error, read=650)
        if not stateful:
            return
        # The state recorded exactly what was acknowledged: the run is journaled failed with those
        # counts, and a re-run with the whole segment sends only the rest.
        again = exporter(sb, state=tmp_path / "state.db")
        history = again.history(SEGMENT)
        assert [r.outcome for r in history] == ["failed"]
        assert history[0].counts["exported"] == len(exported)
        rerun = again.export(({"email": email(i)} for i in range(1, 1001)), segment=SEGMENT)
        assert rerun.complete
        assert rerun.unchanged == len(exported)
        assert rerun.exported == 1000 - len(exported)
        assert sb.list_members(rerun.list_id or "") == {email(i) for i in range(1, 1001)}
        assert [r.outcome for r in again.history(SEGMENT)] == ["failed", "completed"]


def test_a_malformed_line_deep_in_a_file_gives_an_export_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "segment.jsonl"
    lines = [json.dumps({"email": email(i)}) for i in range(1, 651)]
    lines.append('{"email": "broken@example.com", ')  # line 651: not valid JSON
    lines.extend(json.dumps({"email": email(i)}) for i in range(652, 700))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Sandbox(latency=0.01) as sb:
        with pytest.raises(ExportError) as caught:
            exporter(sb).export(read_jsonl(path), segment=SEGMENT)
        error = caught.value
        assert isinstance(error.cause, SourceError)
        assert "line 651 is not valid JSON" in str(error)
        check_partial_report(sb, error, read=650)


def test_a_source_that_fails_before_its_first_row_raises_its_own_error_and_writes_nothing() -> None:
    # Nothing was sent, so there is no partial report to give: the source's error as it is.
    with Sandbox() as sb:
        with pytest.raises(ConnectionDropped):
            exporter(sb).export(rows_then_failure(10, fail_at=1), segment=SEGMENT)
        assert sb.requests == []


def test_with_leavers_removed_a_failure_while_reading_everything_first_sends_nothing(tmp_path: Path) -> None:
    # on_leave="remove" reads every row before writing anything (to know the leavers): a source that
    # fails there is the same ExportError, with nothing sent, nobody removed, and the run journaled.
    state = tmp_path / "state.db"
    with Sandbox(latency=0.01) as sb:
        first = exporter(sb, state=state, on_leave="remove").export(
            ({"email": email(i)} for i in range(1, 301)), segment=SEGMENT
        )
        writes_before = [r for r in sb.requests if r.method != "GET"]
        with pytest.raises(ExportError) as caught:
            exporter(sb, state=state, on_leave="remove").export(
                rows_then_failure(1000, fail_at=651), segment=SEGMENT
            )
        error = caught.value
        assert isinstance(error.cause, ConnectionDropped)
        assert "reading the rows failed after 650 rows" in str(error)
        report = error.report
        assert (report.total_rows, report.exported, report.removed) == (650, 0, 0)
        assert len(report.rejected) == 650
        assert {r.reason for r in report.rejected} == {"failed"}
        assert [r for r in sb.requests if r.method != "GET"] == writes_before  # nothing written
        assert sb.list_members(first.list_id or "") == {email(i) for i in range(1, 301)}
        again = exporter(sb, state=state, on_leave="remove")
        assert [r.outcome for r in again.history(SEGMENT)] == ["completed", "failed"]
        rerun = again.export(({"email": email(i)} for i in range(1, 1001)), segment=SEGMENT)
        assert (rerun.unchanged, rerun.exported, rerun.removed) == (300, 700, 0)


def test_the_command_line_says_the_sources_error_once() -> None:
    from autopilot_segments._cli.exit_codes import ExitCode, _describe_failure

    with Sandbox() as sb, pytest.raises(ExportError) as caught:
        exporter(sb).export(rows_then_failure(300, fail_at=251), segment=SEGMENT)
    code, message = _describe_failure(caught.value)
    assert code == ExitCode.FAILURE  # a dropped connection: re-running is safe
    assert message.count("server closed the connection unexpectedly") == 1
    assert "unexpected" not in message.replace("closed the connection unexpectedly", "")
