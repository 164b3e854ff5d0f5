"""The export engine against an in-memory destination: the seam is neutral, the guarantees hold.

Nothing here speaks HTTP or knows Autopilot: `MemoryDestination` implements `_destinations.base`
and the `Exporter` must keep its promises through that alone (one outcome per row, bisection of
refused batches, partial acknowledgements, aborts, state and leavers).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from _memory_destination import MemoryDestination
from hypothesis import given, settings
from hypothesis import strategies as st

import autopilot_segments
from autopilot_segments import (
    AuthenticationError,
    AutopilotClient,
    Exporter,
    ExportError,
    ExportInterrupted,
    ExportReport,
    FieldMapping,
)
from autopilot_segments._cli.interrupts import _describe_interrupt
from autopilot_segments._destinations import as_destination
from autopilot_segments._destinations.autopilot.destination import AutopilotDestination
from autopilot_segments._destinations.base import Destination

SEGMENT = "Loyal"


def email(i: int) -> str:
    return f"user{i}@example.com"


def rows(ids: range) -> list[dict[str, object]]:
    return [{"Email": email(i), "first_name": f"N{i}"} for i in ids]


def mapping() -> FieldMapping:
    return FieldMapping(email="Email", fields={"FirstName": "first_name"})


def assert_one_outcome_per_row(report: ExportReport, n: int | None = None) -> None:
    """Every row read ends in exactly one outcome (an aborted run may read fewer than the input)."""
    if n is not None:
        assert report.total_rows == n
    assert report.exported + report.unchanged + len(report.rejected) == report.total_rows
    assert len({r.row for r in report.rejected}) == len(report.rejected)


def test_as_destination_passes_a_destination_through_and_wraps_an_autopilot_client() -> None:
    memory = MemoryDestination()
    assert isinstance(memory, Destination)
    assert as_destination(memory) is memory
    client = AutopilotClient("0123456789abcdef" * 2, base_url="http://127.0.0.1:9")
    wrapped = as_destination(client)
    assert isinstance(wrapped, AutopilotDestination)
    assert wrapped.account_fingerprint == client.account_fingerprint  # unchanged: old states stay valid
    assert wrapped.capabilities.max_batch == 100


def test_every_row_is_exported_and_tagged_in_batches_of_the_destination_size() -> None:
    memory = MemoryDestination(max_batch=30)
    report = Exporter(memory, mapping(), concurrency=3).export(rows(range(100)), segment=SEGMENT)
    assert_one_outcome_per_row(report, 100)
    assert report.exported == 100
    assert report.list_id == SEGMENT
    assert report.list_created
    assert report.list_membership == "tagged in the upsert"
    assert memory.members(SEGMENT) == {email(i) for i in range(100)}
    assert max(len(batch) for batch in memory.upserts) == 30


def test_batch_size_above_the_destination_maximum_is_refused_at_construction() -> None:
    with pytest.raises(Exception, match="batch_size must be between 1 and 30"):
        Exporter(MemoryDestination(max_batch=30), mapping(), batch_size=31)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=0, max_value=120),
    invalid=st.sets(st.integers(min_value=0, max_value=119), max_size=6),
    left_out=st.sets(st.integers(min_value=0, max_value=119), max_size=6),
    unconfirmed=st.sets(st.integers(min_value=0, max_value=119), max_size=6),
    batch=st.integers(min_value=1, max_value=40),
)
def test_one_outcome_per_row_whatever_the_destination_answers(
    n: int, invalid: set[int], left_out: set[int], unconfirmed: set[int], batch: int
) -> None:
    left_out -= invalid
    unconfirmed -= invalid | left_out
    memory = MemoryDestination(
        max_batch=40,
        invalid=frozenset(email(i) for i in invalid),
        left_out=frozenset(email(i) for i in left_out),
        unconfirmed=frozenset(email(i) for i in unconfirmed),
    )
    exporter = Exporter(memory, mapping(), batch_size=batch, concurrency=2)
    report = exporter.export(rows(range(n)), segment=SEGMENT, force=True)
    assert_one_outcome_per_row(report, n)
    by_email = {r.email: r for r in report.rejected}
    present = set(range(n))
    assert {e for e, r in by_email.items() if r.reason == "rejected_by_api"} == {
        email(i) for i in (invalid | left_out) & present
    }
    assert {e for e, r in by_email.items() if r.reason == "failed"} == {
        email(i) for i in unconfirmed & present
    }
    # Exported means acknowledged with an id: never a refused or unconfirmed contact.
    assert report.exported == len(present - invalid - left_out - unconfirmed)


def test_bisection_isolates_the_refused_contacts_and_names_the_destination() -> None:
    memory = MemoryDestination(max_batch=64, invalid=frozenset({email(5), email(40)}))
    report = Exporter(memory, mapping(), batch_size=64, concurrency=1).export(
        rows(range(64)), segment=SEGMENT
    )
    assert report.exported == 62
    assert sorted(r.row for r in report.rejected) == [6, 41]
    assert all(r.message.startswith("Memory rejected this contact: invalid value") for r in report.rejected)
    # Two offenders in 64 contacts: far fewer calls than one per contact.
    assert len(memory.upserts) <= 2 * 2 * 6 + 1


def test_partial_acknowledgements_keep_their_reasons_and_stop_on_error_stops() -> None:
    memory = MemoryDestination(left_out=frozenset({email(1)}), unconfirmed=frozenset({email(2)}))
    report = Exporter(memory, mapping(), concurrency=1).export(rows(range(10)), segment=SEGMENT)
    assert report.exported == 8
    reasons = {r.email: (r.reason, r.message) for r in report.rejected}
    assert reasons == {
        email(1): ("rejected_by_api", "the memory destination left it out"),
        email(2): ("failed", "storage unknown"),
    }
    memory = MemoryDestination(max_batch=5, unconfirmed=frozenset({email(2)}))
    exporter = Exporter(memory, mapping(), concurrency=1, batch_size=5, stop_on_error=True)
    with pytest.raises(ExportError) as stopped:
        exporter.export(rows(range(50)), segment=SEGMENT)
    partial = stopped.value.report
    assert not partial.complete
    assert_one_outcome_per_row(partial)
    assert partial.total_rows < 50  # it stopped reading
    assert partial.counts["failed"] >= 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_fatal_error_aborts_with_a_partial_report_and_sends_nothing_more(concurrency: int) -> None:
    memory = MemoryDestination(max_batch=10, fatal_after=4)  # the target, then three upserts
    exporter = Exporter(memory, mapping(), concurrency=concurrency, batch_size=10)
    with pytest.raises(AuthenticationError) as caught:
        exporter.export(rows(range(200)), segment=SEGMENT)
    partial = caught.value.export_report
    assert partial is not None
    assert not partial.complete
    assert_one_outcome_per_row(partial)
    assert partial.exported == 10 * min(3, partial.exported // 10)
    # Upserts already started when the 401 came are the only ones after the third.
    assert len(memory.upserts) <= 3 + concurrency


def test_state_and_leavers_work_through_the_seam_in_removal_batches(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    memory = MemoryDestination(removal_batch=7, failing_removals=frozenset())

    def exporter() -> Exporter:
        return Exporter(memory, mapping(), state=state, on_leave="remove", concurrency=2)

    first = exporter().export(rows(range(40)), segment=SEGMENT)
    assert first.exported == 40
    again = exporter().export(rows(range(20)), segment=SEGMENT, force=True)
    assert (again.exported, again.unchanged, again.removed) == (0, 20, 20)
    assert memory.members(SEGMENT) == {email(i) for i in range(20)}
    assert sorted(len(call) for call in memory.removal_calls) == [6, 7, 7]
    failing = memory.contacts[email(3)]
    memory.failing_removals = frozenset({failing})
    third = exporter().export(rows(range(10, 20)), segment=SEGMENT, force=True)
    assert (third.removed, third.removal_failed) == (9, 1)
    memory.failing_removals = frozenset()
    fourth = exporter().export(rows(range(10, 20)), segment=SEGMENT, force=True)
    assert (fourth.removed, fourth.unchanged) == (1, 10)
    assert memory.members(SEGMENT) == {email(i) for i in range(10, 20)}


def test_plan_prices_through_the_destination() -> None:
    plan = Exporter(MemoryDestination(max_batch=25), mapping()).plan(rows(range(60)), segment=SEGMENT)
    assert plan.exported == 60
    assert (plan.planned_calls, plan.planned_calls_worst) == (1 + 3, 1 + 3)


def test_the_report_has_destination_neutral_aliases() -> None:
    report = Exporter(MemoryDestination(), mapping()).export(rows(range(3)), segment=SEGMENT)
    assert (report.target_id, report.target_created, report.membership) == (
        report.list_id,
        report.list_created,
        report.list_membership,
    )
    assert report.target_note == report.list_note
    assert "target_id" not in report.to_dict()  # the serialised keys stay as they were


def _imports(path: Path) -> set[str]:
    """The modules `path` imports, as written (relative ones with their leading dots)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" if node.module else base + alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_engine_reaches_destinations_only_through_the_seam() -> None:
    engine = Path(autopilot_segments.__file__).parent / "_export"
    modules = sorted(engine.glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        imports = _imports(module)
        destination_side = {
            i for i in imports if i.startswith(("..", "autopilot_segments")) and "_destinations" in i
        }
        assert destination_side <= {
            ".._destinations",
            ".._destinations.as_destination",
            ".._destinations.base",
        } | {i for i in destination_side if i.startswith(".._destinations.base.")}, module.name
        for platform in (".._client", ".._models", ".._destinations.autopilot", ".._destinations.ortto"):
            assert not any(i.startswith(platform) for i in imports), (module.name, platform)
        assert "_autopilot_list" not in module.read_text(encoding="utf-8"), module.name


def test_no_engine_or_destination_module_exceeds_600_lines() -> None:
    package = Path(autopilot_segments.__file__).parent
    for module in [*package.glob("_export/*.py"), *package.glob("_destinations/**/*.py")]:
        assert len(module.read_text(encoding="utf-8").splitlines()) <= 600, module.name


def test_ctrl_c_settles_through_the_seam_and_the_cli_line_names_the_destination() -> None:
    def interrupted_rows() -> Iterator[dict[str, object]]:
        yield from rows(range(120))
        raise KeyboardInterrupt

    memory = MemoryDestination(max_batch=50)
    with pytest.raises(ExportInterrupted) as caught:
        Exporter(memory, mapping(), concurrency=2).export(interrupted_rows(), segment=SEGMENT)
    report = caught.value.export_report
    assert report is not None
    assert report.interrupted
    assert_one_outcome_per_row(report, 120)
    # Batches acknowledged before or while the interrupt settled count; the others were never sent.
    assert report.exported == len(memory.members(SEGMENT))
    assert report.exported % 50 == 0
    assert report.counts["failed"] == 120 - report.exported
    _code, line = _describe_interrupt(caught.value, state=None)
    assert "exported (acknowledged by Memory)" in line
