"""Crash safety for both destinations: a real export process is SIGKILLed mid-run, then the same export,
run again with the same state, completes it (the Autopilot-only detail is in test_resume.py).

Promises checked against the sandbox's final state: nobody lost, every acknowledged contact not sent
again, at most the batches in flight replayed (no contact merged more than twice), the interrupted run
in the journal; with removals, every leaver removed once the re-run ends, and none deleted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from _contract import KEY_ENV, SEGMENT, Platform, email, start
from _contract_worker import BATCH_SIZE, CONCURRENCY, make_exporter

from autopilot_segments import ExportReport
from autopilot_segments._destinations import as_destination
from autopilot_segments._state import ExportState

WORKER = Path(__file__).with_name("_contract_worker.py")
ROWS = 300
LATENCY = 0.02
IN_FLIGHT_CONTACTS = 2 * CONCURRENCY * BATCH_SIZE


@pytest.fixture(params=["autopilot", "ortto"])
def platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    found, sandbox = start(request.param, latency=LATENCY)
    try:
        yield found
    finally:
        sandbox.stop()


def run_and_kill(platform: Platform, state: Path, args: Sequence[str], *, kill_at: int) -> None:
    """Start the worker and SIGKILL it once the sandbox has seen `kill_at` requests in all."""
    env = {**os.environ, KEY_ENV: platform.api_key}
    process = subprocess.Popen(
        [sys.executable, str(WORKER), platform.name, platform.url, str(state), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    sandbox = platform.sandbox
    try:
        deadline = time.monotonic() + 30
        while len(sandbox.requests) < kill_at:
            assert process.poll() is None, f"the export ended before the kill: {process.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the export never reached the kill point"
            time.sleep(0.001)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5  # requests the dead process had sent still land: wait for them
    while any(r.status is None for r in sandbox.requests) and time.monotonic() < deadline:
        time.sleep(LATENCY)


def resume(platform: Platform, state: Path, first: int, stop: int, on_leave: str = "keep") -> ExportReport:
    from _contract import rows

    exporter = make_exporter(platform.name, platform.url, platform.api_key, str(state), on_leave)
    return exporter.export(rows(range(first, stop)), segment=SEGMENT)


def acknowledged(platform: Platform, state: Path, emails: Sequence[str], target: str) -> set[str]:
    """The emails the state file records as stored in the segment."""
    fingerprint = as_destination(platform.client()).account_fingerprint
    with ExportState.open(state, account=fingerprint) as store:
        hashes = {store.hash_email(e): e for e in emails}
        return {hashes[h] for h in store.lookup(target, list(hashes))}


def outcomes(platform: Platform, state: Path) -> list[str]:
    exporter = make_exporter(platform.name, platform.url, platform.api_key, str(state), "keep")
    return [r.outcome for r in exporter.history(SEGMENT)]


@pytest.mark.parametrize("kill_at", [6, 17])
def test_a_killed_first_export_is_completed_by_running_it_again(
    platform: Platform, tmp_path: Path, kill_at: int
) -> None:
    state = tmp_path / "exports.db"
    everyone = [email(i) for i in range(ROWS)]
    run_and_kill(platform, state, ["0", str(ROWS)], kill_at=kill_at)
    upserted_before = set(platform.upserts())
    report = resume(platform, state, 0, ROWS)
    assert report.ok
    assert report.list_id is not None
    known = acknowledged(platform, state, everyone, report.list_id)
    assert known == set(everyone)
    assert report.total_rows == ROWS
    assert report.unchanged < ROWS
    if kill_at > 10:  # several batches had been acknowledged: they are not sent again
        assert report.unchanged > 0
    assert report.exported == ROWS - report.unchanged
    assert platform.members() == set(everyone)
    assert platform.stored() == set(everyone)
    counts = platform.upserts()
    assert max(counts.values()) <= 2
    replayed = {e for e in everyone if counts[e] == 2}
    assert replayed <= upserted_before
    assert len(replayed) <= IN_FLIGHT_CONTACTS
    assert outcomes(platform, state) == ["interrupted", "completed"]
    again = resume(platform, state, 0, ROWS)
    assert (again.exported, again.unchanged) == (0, ROWS)


def test_a_killed_run_with_removals_is_completed(platform: Platform, tmp_path: Path) -> None:
    state = tmp_path / "exports.db"
    first = resume(platform, state, 0, ROWS)
    assert first.exported == ROWS
    begin = len(platform.sandbox.requests)
    # Rows 0..59 leave. Ortto untags them in 1 call; Autopilot removes them one by one.
    run_and_kill(platform, state, ["60", str(ROWS), "--on-leave", "remove"], kill_at=begin + 2)
    report = resume(platform, state, 60, ROWS, on_leave="remove")
    assert report.ok
    assert report.unchanged == ROWS - 60
    assert report.removed <= 60
    assert platform.members() == {email(i) for i in range(60, ROWS)}
    assert platform.stored() == {email(i) for i in range(ROWS)}  # leavers are never deleted
    assert not any(platform.opted_out(email(i)) for i in range(60))
    assert outcomes(platform, state)[-1] == "completed"
