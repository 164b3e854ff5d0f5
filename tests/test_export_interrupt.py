"""Ctrl-C during an export: ExportInterrupted carries the report of what Autopilot acknowledged."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments import AutopilotClient, Exporter, ExportInterrupted, FieldMapping
from autopilot_segments.sandbox import Sandbox

MAPPING = FieldMapping(email="email")


def rows_then_ctrl_c(n: int, interrupt_after: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        if i == interrupt_after:
            raise KeyboardInterrupt  # what Python raises where the main thread is when Ctrl-C comes
        yield {"email": f"person{i}@example.com"}


@pytest.mark.parametrize("stateful", [False, True])
def test_ctrl_c_settles_and_reports_what_was_acknowledged(tmp_path: Path, stateful: bool) -> None:
    with Sandbox(latency=0.02) as sb:
        client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000)
        options: dict[str, Any] = {"state": tmp_path / "state.db"} if stateful else {}
        exporter = Exporter(client, MAPPING, concurrency=2, **options)
        with pytest.raises(KeyboardInterrupt) as caught:
            exporter.export(rows_then_ctrl_c(1000, interrupt_after=651), segment="Ctrl-C")
        assert isinstance(caught.value, ExportInterrupted)
        report = caught.value.export_report
        assert report.interrupted
        assert not report.complete
        assert report.stopped_by == "interrupted by KeyboardInterrupt"
        assert report.total_rows == 650
        # Everything read was either acknowledged (and is on the list) or failed; 600 rows were in
        # full batches, the last 50 never made a batch.
        assert report.exported + len(report.rejected) == 650
        assert report.exported >= 100
        assert {r.reason for r in report.rejected} == {"failed"}
        failed = {r.row for r in report.rejected}
        exported = {f"person{i}@example.com" for i in range(1, 651) if i not in failed}
        assert len(exported) == report.exported
        assert exported <= sb.list_members(report.list_id or "")
        assert report.to_dict()["interrupted"] is True
        copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes, just written
        assert isinstance(copy, ExportInterrupted)
        assert copy.export_report.exported == report.exported
        if stateful:
            # The acknowledged rows were recorded: a re-run sends only the others.
            rerun = exporter.export(
                ({"email": f"person{i}@example.com"} for i in range(1, 1001)), segment="Ctrl-C"
            )
            assert rerun.unchanged == report.exported
            assert rerun.exported == 1000 - report.exported
            assert len(sb.list_members(report.list_id or "")) == 1000


@pytest.mark.parametrize("before_write", [True, False])
def test_ctrl_c_while_a_batch_is_being_recorded_keeps_report_and_state_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before_write: bool
) -> None:
    # Ctrl-C lands while the main thread records an acknowledged batch in the state (the longest step of
    # taking a batch in): the report must not count a batch the state lacks, nor lose its rows.
    from autopilot_segments._state import ExportState

    original = ExportState.record_acknowledged
    calls = {"n": 0}

    def interrupted_on_the_third(self: ExportState, *args: Any, **kwargs: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            if before_write:
                raise KeyboardInterrupt
            original(self, *args, **kwargs)
            raise KeyboardInterrupt  # the batch is in the state; the interrupt comes right after
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ExportState, "record_acknowledged", interrupted_on_the_third)
    with Sandbox() as sb:
        client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000)
        exporter = Exporter(client, MAPPING, concurrency=1, state=tmp_path / "state.db")
        with pytest.raises(ExportInterrupted) as caught:
            exporter.export(({"email": f"person{i}@example.com"} for i in range(1, 1001)), segment="Rec")
        report = caught.value.export_report
        assert report.exported + len(report.rejected) == report.total_rows
        monkeypatch.setattr(ExportState, "record_acknowledged", original)
        rerun = exporter.export(({"email": f"person{i}@example.com"} for i in range(1, 1001)), segment="Rec")
    assert rerun.unchanged == report.exported  # exactly what the report counted was recorded
    assert rerun.exported == 1000 - report.exported
