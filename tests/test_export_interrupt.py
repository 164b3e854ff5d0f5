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
