"""Property: whatever the segment and whatever the faults, the list holds exactly what the report says."""

from __future__ import annotations

from typing import Any

import pytest
from _exporting import TierDefinedAfterPreflight
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from autopilot_segments import (
    APIConnectionError,
    APIError,
    CustomField,
    Exporter,
    FieldMapping,
)
from autopilot_segments.sandbox import FaultPlan, Sandbox

NAMES = [f"person{i}" for i in range(12)]
# 429 is left out of the random faults only for speed: each one pauses the client's limiter for a
# second by design. It is covered in test_exporter.py.
FAULT_KINDS = ("500", "502", "503", "drop_before", "drop_after")

valid_row = st.builds(lambda name: {"Email": f"{name}@example.com"}, st.sampled_from(NAMES))
invalid_row = st.sampled_from([{"Email": "no-at-sign"}, {"Email": ""}, {"first_name": "no email"}])
# A Tier value the sandbox refuses (it knows Tier as a string field): passes local validation.
api_offender = st.builds(
    lambda name, tier: {"Email": f"{name}@example.com", "tier": tier},
    st.sampled_from(NAMES),
    st.integers(0, 9),
)
segments = st.lists(
    st.one_of(valid_row, valid_row, valid_row, invalid_row, api_offender), min_size=3, max_size=40
)
fault_plans = st.builds(
    FaultPlan,
    rate=st.sampled_from([0.0, 0.1, 0.25]),
    kinds=st.lists(st.sampled_from(FAULT_KINDS), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 10_000),
)


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox() as sb:
        yield sb


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    source=segments,
    faults=fault_plans,
    bulk_list=st.sampled_from(["honoured", "ignored"]),
    bulk_invalid=st.sampled_from(["reject", "drop"]),
    duplicate_list=st.sampled_from(["conflict", "create"]),
    concurrency=st.integers(1, 4),
    batch_size=st.sampled_from([3, 7, 100]),
    list_exists=st.booleans(),
    # Up to a few members, or every name (a re-run: every probe finds a member, the list is read).
    members_before=st.one_of(st.sets(st.sampled_from(NAMES), max_size=4), st.just(set(NAMES))),
)
# Always tried: a contact already on an existing list comes first and bulk calls ignore the list, so
# a detector that took that member for proof of `_autopilot_list` would leave the others off the list.
@example(
    source=[{"Email": "person0@example.com"}, {"Email": "person1@example.com"}],
    faults=FaultPlan(rate=0.0, kinds=["500"], seed=0),
    bulk_list="ignored",
    bulk_invalid="reject",
    duplicate_list="conflict",
    concurrency=1,
    batch_size=100,
    list_exists=True,
    members_before={"person0"},
)
def test_the_list_holds_exactly_the_rows_reported_exported(
    sandbox: Sandbox,
    source: list[dict[str, Any]],
    faults: FaultPlan,
    bulk_list: Any,
    bulk_invalid: Any,
    duplicate_list: Any,
    concurrency: int,
    batch_size: int,
    list_exists: bool,
    members_before: set[str],
) -> None:
    # Every row has every column, as from a file or a query (the first row's columns are checked).
    source = [{"Email": None, "tier": None, **row} for row in source]
    sb = sandbox
    sb.reset()
    sb.configure(faults=None, bulk_list=bulk_list, bulk_invalid=bulk_invalid, duplicate_list=duplicate_list)
    # Tier is defined as text after the preflight read: the API refuses the rows carrying an integer one.
    client = TierDefinedAfterPreflight(sb)
    # An existing list takes the probe-before-send path; contacts already on it must never make the
    # exporter believe that bulk calls add members when they do not.
    preexisting = {f"{name}@example.com" for name in members_before} if list_exists else set()
    if list_exists:
        list_id = sb.create_list("Property segment")
        if preexisting:
            sb.add_contacts([{"Email": member} for member in preexisting])
            for member in preexisting:
                client.add_to_list(list_id, member)
    sb.configure(faults=faults)
    mapping = FieldMapping(email="Email", custom=[CustomField("Tier", "integer", source="tier")])
    exporter = Exporter(client, mapping, concurrency=concurrency, batch_size=batch_size)

    try:
        report = exporter.export(source, segment="Property segment")
    except (APIError, APIConnectionError):
        # Only finding or creating the list may fail the whole export (creating a list is not
        # replayed by the transport); then nothing at all has been written.
        event("finding or creating the list failed")
        sb.configure(faults=None)
        assert [r for r in sb.requests if r.path == "/contacts"] == []
        assert all(r.path in ("/contacts/custom_fields", "/lists", "/list") for r in sb.requests)
        return
    sb.configure(faults=None)

    # Every row has exactly one outcome.
    rejected_rows = [r.row for r in report.rejected]
    assert len(set(rejected_rows)) == len(rejected_rows)
    assert set(rejected_rows) <= set(range(1, len(source) + 1))
    assert report.total_rows == len(source) == report.exported + len(report.rejected)

    exported_rows = [row for i, row in enumerate(source, start=1) if i not in set(rejected_rows)]
    exported = {row["Email"] for row in exported_rows}
    assert len(exported) == len(exported_rows)  # duplicates never count twice
    assert all(row["tier"] is None for row in exported_rows)  # the API refuses those

    assert report.list_id is not None
    members = sb.list_members(report.list_id)
    failed = {r.email for r in report.rejected if r.reason == "failed"}
    # A batch whose retries ran out may still have been applied (drop_after): such rows are "failed",
    # never "exported". Everything "exported" is on the list, and nothing else is but those (and the
    # members it had before, which an export without state keeps).
    assert exported <= members <= exported | failed | preexisting
    if not failed:
        assert members == exported | preexisting
    event(f"the list's members were read: {'were read' in report.list_membership}")
    api_rejected = report.counts["rejected_by_api"] > 0
    event(f"failed rows: {bool(failed)}; exported: {bool(exported)}; api-rejected: {api_rejected}")
    titled = sorted(list_id for list_id, title in sb.lists if title == "Property segment")
    assert report.list_id == titled[0]
