"""Crash safety: a real export process is SIGKILLed at several points, then the same export completes it.

The sandbox runs here, with a little latency so the kill lands mid-run; the export runs in a subprocess
(tests/_resume_worker.py) against the sandbox's URL with a state file in tmp_path. The test kills it when
the sandbox's request log reaches a given length, reads what the state had recorded, re-runs the export
here, and checks the promises: no contact lost, no acknowledged batch sent again, at most the batches in
flight replayed (so no contact upserted more than twice), the interrupted run in the journal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from autopilot_segments import ExportReport
from autopilot_segments._state import ExportState
from autopilot_segments.sandbox import Sandbox

sys.path.insert(0, str(Path(__file__).parent))
from _resume_worker import BATCH_SIZE, CONCURRENCY, SEGMENT, email, make_exporter, segment_rows

WORKER = Path(__file__).with_name("_resume_worker.py")
ROWS = 300
LATENCY = 0.02
# The exporter keeps at most 2 x concurrency batches submitted; only those can be in flight at a kill.
IN_FLIGHT_CONTACTS = 2 * CONCURRENCY * BATCH_SIZE


def run_and_kill(sb: Sandbox, state: Path, args: Sequence[str], *, kill_at: int) -> None:
    """Start the worker and SIGKILL it once the sandbox has seen `kill_at` requests in all."""
    env = {**os.environ, "AUTOPILOT_SANDBOX_KEY": sb.api_key}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), sb.url, str(state), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while len(sb.requests) < kill_at:
            assert process.poll() is None, f"the export ended before the kill: {process.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the export never reached the kill point"
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    # Requests the dead process had sent are still applied by the sandbox: let them land first.
    deadline = time.monotonic() + 5
    while any(r.status is None for r in sb.requests) and time.monotonic() < deadline:
        time.sleep(LATENCY)


def recorded(sb: Sandbox, state: Path, emails: Sequence[str]) -> dict[str, int]:
    """The emails the state file says Autopilot acknowledged on the segment's list, and by which run."""
    lists = [list_id for list_id, title in sb.lists if title == SEGMENT]
    if not lists:
        return {}
    client = make_exporter(sb.url, sb.api_key, str(state), "keep")._client
    with ExportState.open(state, account=client.account_fingerprint) as store:  # type: ignore[attr-defined]
        hashes = {store.hash_email(e): e for e in emails}
        return {hashes[h]: known.acked_run for h, known in store.lookup(lists[0], list(hashes)).items()}


def resume(
    sb: Sandbox,
    state: Path,
    start: int,
    stop: int,
    *,
    changed: tuple[int, int] = (0, 0),
    on_leave: str = "keep",
    full: bool = False,
) -> ExportReport:
    """The same export, run again here (the worker's exporter and rows)."""
    exporter = make_exporter(sb.url, sb.api_key, str(state), on_leave)
    return exporter.export(segment_rows(start, stop, changed), segment=SEGMENT, full=full)


def outcomes_and_ids(sb: Sandbox, state: Path) -> list[tuple[str, int]]:
    return [
        (r.outcome, r.run_id) for r in make_exporter(sb.url, sb.api_key, str(state), "keep").history(SEGMENT)
    ]


def outcomes(sb: Sandbox, state: Path) -> list[str]:
    return [r.outcome for r in make_exporter(sb.url, sb.api_key, str(state), "keep").history(SEGMENT)]


# A first run of 300 rows in batches of 10 makes about 34 requests when bulk calls honour the list:
# lists, create, re-read, one check, then 30 bulk upserts. Kill right after the list is created, after
# the first batch, mid-way, near the end. When they ignore it, every contact is added explicitly
# after its batch's upsert (about 114 requests for 100 rows): kill early and mid-way, both times
# while some contacts are stored in Autopilot but not yet on the list.
@pytest.mark.parametrize(
    ("bulk_list", "kill_at"),
    [("honoured", 3), ("honoured", 6), ("honoured", 17), ("honoured", 30), ("ignored", 9), ("ignored", 60)],
)
def test_a_killed_first_export_is_completed_by_running_it_again(
    tmp_path: Path, bulk_list: str, kill_at: int
) -> None:
    state = tmp_path / "exports.db"
    n = ROWS if bulk_list == "honoured" else ROWS // 3  # explicit adds make the run 10x longer
    everyone = [email(i) for i in range(n)]
    with Sandbox(latency=LATENCY, bulk_list=bulk_list) as sb:  # type: ignore[arg-type]
        run_and_kill(sb, state, ["0", str(n)], kill_at=kill_at)
        acknowledged = set(recorded(sb, state, everyone))
        upserted_before = set(sb.upsert_counts)
        if bulk_list == "ignored":  # the kill hit the window: stored in Autopilot, not on the list yet
            listed = set().union(*(sb.list_members(list_id) for list_id, _ in sb.lists))
            assert upserted_before - listed
        assert acknowledged <= upserted_before
        report = resume(sb, state, 0, n)

        assert report.ok
        assert report.total_rows == n
        assert report.unchanged == len(acknowledged)  # acknowledged batches are not sent again...
        assert report.exported == n - len(acknowledged)  # ...everything else is
        assert [title for _, title in sb.lists] == [SEGMENT]  # the list created before the kill is reused
        assert report.list_id is not None
        assert not report.list_created
        assert sb.list_members(report.list_id) == set(everyone)
        assert set(sb.contacts) == set(everyone)
        counts = sb.upsert_counts
        assert max(counts.values()) <= 2
        assert all(counts[e] == 1 for e in acknowledged)
        replayed = [e for e in everyone if counts[e] == 2]
        assert set(replayed) <= upserted_before - acknowledged
        assert len(replayed) <= IN_FLIGHT_CONTACTS
        history = outcomes(sb, state)
        if kill_at > 4:  # the run had begun: it was journaled before the first upsert
            assert history == ["interrupted", "completed"]
        else:
            assert history in (["completed"], ["interrupted", "completed"])
        again = resume(sb, state, 0, n)
        assert (again.exported, again.unchanged, again.api_calls) == (0, n, 1)


def test_a_killed_incremental_run_with_removals_is_completed(tmp_path: Path) -> None:
    state = tmp_path / "exports.db"
    with Sandbox(latency=LATENCY) as sb:
        first = resume(sb, state, 0, ROWS)
        assert first.list_id is not None
        start = len(sb.requests)
        # Rows 60.. stay (100..129 changed), 0..59 leave: 1 list read, 3 bulk upserts, then 60 removals.
        args = ["60", str(ROWS), "--changed", "100", "130", "--on-leave", "remove"]
        run_and_kill(sb, state, args, kill_at=start + 1 + 3 + 25)
        deletes_before = [r.path for r in sb.requests if r.method == "DELETE"]
        assert 0 < len(deletes_before) < 60
        report = resume(sb, state, 60, ROWS, changed=(100, 130), on_leave="remove")
        assert report.ok
        assert report.unchanged == ROWS - 60  # the changed rows were acknowledged before the kill
        assert 60 - len(deletes_before) <= report.removed <= 60
        assert sb.list_members(first.list_id) == {email(i) for i in range(60, ROWS)}
        deletes = [r.path for r in sb.requests if r.method == "DELETE"]
        assert len(set(deletes)) == 60
        assert max(deletes.count(p) for p in deletes) <= 2  # at most the removals in flight are replayed
        assert len(deletes) - 60 <= IN_FLIGHT_CONTACTS
        assert all(sb.contacts[email(i)]["unsubscribed"] is False for i in range(60))
        assert max(sb.upsert_counts.values()) <= 2
        assert outcomes(sb, state) == ["completed", "interrupted", "completed"]


def test_a_killed_full_resend_resumes_without_resending_what_it_had_acknowledged(tmp_path: Path) -> None:
    state = tmp_path / "exports.db"
    everyone = [email(i) for i in range(ROWS)]
    with Sandbox(latency=LATENCY) as sb:
        resume(sb, state, 0, ROWS)
        start = len(sb.requests)
        run_and_kill(sb, state, ["0", str(ROWS), "--full"], kill_at=start + 15)
        dead_run = outcomes_and_ids(sb, state)[-1]
        assert dead_run[0] == "interrupted"
        acknowledged = {e for e, run in recorded(sb, state, everyone).items() if run == dead_run[1]}
        assert acknowledged
        report = resume(sb, state, 0, ROWS, full=True)
        assert report.ok
        assert report.exported + report.unchanged == ROWS
        assert report.unchanged == len(acknowledged)  # what the dead full run had acknowledged is not resent
        counts = sb.upsert_counts
        assert all(counts[e] == 2 for e in acknowledged)
        assert max(counts.values()) <= 3  # first run, the full resend, at most one replay in flight
        assert sum(1 for e in everyone if counts[e] == 3) <= IN_FLIGHT_CONTACTS
        assert all(counts[e] >= 2 for e in everyone)  # the full resend reached everyone
        history = make_exporter(sb.url, sb.api_key, str(state), "keep").history(SEGMENT)
        assert [(r.outcome, r.full) for r in history] == [
            ("completed", False),
            ("interrupted", True),
            ("completed", True),
        ]
        assert history[2].resumes == history[1].run_id
        assert history[2].since_run == history[1].run_id
