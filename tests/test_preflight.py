"""Custom-field conflicts: a preflight before anything is written, and bisection that stops early."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from _exporting import make_client

from autopilot_segments import (
    AutopilotClient,
    ConfigurationError,
    CustomField,
    Exporter,
    FieldMapping,
)
from autopilot_segments._destinations.autopilot.preflight import FieldConflict, check_custom_fields
from autopilot_segments.sandbox import Sandbox

SEGMENT = "VIP customers"


def mapping(**types: Any) -> FieldMapping:
    fields = types or {"Tier": "integer"}
    return FieldMapping(
        email="Email",
        fields={"FirstName": "first_name"},
        custom=[
            CustomField(name, kind, source=name.lower().replace(" ", "_")) for name, kind in fields.items()
        ],
    )


def rows(n: int, **values: Any) -> list[dict[str, Any]]:
    extra = values or {"tier": 3}
    return [{"Email": f"user{i}@example.com", "first_name": f"F{i}", **extra} for i in range(n)]


def writes(sb: Sandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sb.requests if r.method != "GET"]


# -- the preflight -----------------------------------------------------------------------------------


def test_check_custom_fields_names_each_conflict_and_its_two_types() -> None:
    with Sandbox() as sb:
        sb.add_custom_field("Tier", "string")
        sb.add_custom_field("Loyalty Points", "float")
        sb.add_custom_field("Birthday", "date")
        wanted = mapping(
            **{"Tier": "integer", "Loyalty Points": "integer", "Birthday": "date", "New": "boolean"}
        )
        conflicts = check_custom_fields(make_client(sb), wanted)
        assert conflicts == [
            FieldConflict(name="Tier", mapping_type="integer", account_type="string"),
            FieldConflict(name="Loyalty Points", mapping_type="integer", account_type="float"),
        ]
        assert [(r.method, r.path) for r in sb.requests] == [("GET", "/contacts/custom_fields")]
        assert "'Tier'" in conflicts[0].describe()
        assert "integer" in conflicts[0].describe()
        assert "string" in conflicts[0].describe()


def test_a_mapping_without_custom_fields_needs_no_call() -> None:
    with Sandbox() as sb:
        assert check_custom_fields(make_client(sb), FieldMapping(email="Email")) == []
        assert sb.requests == []


@pytest.mark.parametrize("stateful", [False, True])
def test_an_export_with_a_conflicting_field_stops_before_anything_is_written(
    stateful: bool, tmp_path: Path
) -> None:
    with Sandbox() as sb:
        sb.add_custom_field("Tier", "string")
        sb.add_custom_field("Score", "integer")
        exporter = Exporter(
            make_client(sb),
            mapping(Tier="integer", Score="float"),
            state=tmp_path / "s.db" if stateful else None,
        )
        with pytest.raises(ConfigurationError) as info:
            exporter.export(rows(500, tier=1, score=2.5), segment=SEGMENT)
        message = str(info.value)
        for named in ("'Tier'", "'Score'", "integer", "string", "float"):
            assert named in message
        assert writes(sb) == []
        assert sb.lists == []
        assert [r.path for r in sb.requests].count("/contacts/custom_fields") == 1


def test_an_export_without_conflict_reads_the_definitions_once_then_runs() -> None:
    with Sandbox() as sb:
        sb.add_custom_field("Tier", "integer")
        report = Exporter(make_client(sb), mapping()).export(rows(250), segment=SEGMENT)
        assert report.exported == 250
        assert [r.path for r in sb.requests].count("/contacts/custom_fields") == 1
        # read before the first write (side by side with the list look-up, a read too)
        first_write = next(i for i, r in enumerate(sb.requests) if r.method != "GET")
        assert [r.path for r in sb.requests[:first_write]].count("/contacts/custom_fields") == 1


def test_an_unreadable_definition_list_does_not_stop_the_export() -> None:
    with Sandbox() as sb:
        sb.inject("503", times=10, method="GET", path_prefix="/contacts/custom_fields")
        report = Exporter(make_client(sb, max_retries=1), mapping()).export(rows(20), segment=SEGMENT)
        assert report.exported == 20


def test_a_stateful_rerun_that_sends_nothing_makes_no_preflight(tmp_path: Path) -> None:
    with Sandbox() as sb:
        exporter = Exporter(make_client(sb), mapping(), state=tmp_path / "s.db")
        exporter.export(rows(30), segment=SEGMENT)
        before = len(sb.requests)
        again = exporter.export(rows(30), segment=SEGMENT)
        assert again.unchanged == 30
        assert [r.path for r in sb.requests[before:]] == ["/lists"]
        # A changed contact is sent: then the definitions are read first, once.
        before = len(sb.requests)
        exporter.export(rows(30, tier=4), segment=SEGMENT)
        paths = [r.path for r in sb.requests[before:]]
        assert paths.count("/contacts/custom_fields") == 1
        assert paths.index("/contacts/custom_fields") < paths.index("/contacts")


def test_plan_reports_the_conflict_only_when_asked_to_read_the_account() -> None:
    with Sandbox() as sb:
        sb.add_custom_field("Tier", "string")
        exporter = Exporter(make_client(sb), mapping())
        quiet = exporter.plan(rows(10), segment=SEGMENT)
        assert sb.requests == []
        assert "Tier" not in quiet.list_note
        checked = exporter.plan(rows(10), segment=SEGMENT, check_account=True)
        assert [(r.method, r.path) for r in sb.requests] == [("GET", "/contacts/custom_fields")]
        assert "ConfigurationError" in checked.list_note
        assert "'Tier'" in checked.list_note
        assert checked.exported == 10  # the rows are still valid; the export would stop before writing


# -- bisection stops when the halves fail for the same reason -------------------------------------------


class _FieldAppearsAfterPreflight(AutopilotClient):
    """Another writer defines Tier as text right after the preflight read: every contact is refused."""

    def __init__(self, sb: Sandbox) -> None:
        super().__init__(sb.api_key, base_url=sb.url, requests_per_second=10_000.0, backoff_factor=0.0)
        self._sb = sb

    def custom_fields(self) -> Any:
        answer = super().custom_fields()
        self._sb.add_custom_field("Tier", "string")
        return answer


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_batch_refused_as_a_whole_costs_at_most_three_calls(concurrency: int) -> None:
    source = rows(1000)
    with Sandbox() as sb:
        report = Exporter(_FieldAppearsAfterPreflight(sb), mapping(), concurrency=concurrency).export(
            source, segment=SEGMENT
        )
        bulk_calls = [r for r in sb.requests if r.path == "/contacts"]
        assert len(bulk_calls) <= 3 * math.ceil(1000 / 100)
        assert report.exported == 0
        assert report.counts["rejected_by_api"] == 1000
        assert {r.row for r in report.rejected} == set(range(1, 1001))
        assert all("Tier" in r.message and "whole batch" in r.message for r in report.rejected)
        assert all("@" not in r.message for r in report.rejected)  # no other contact's email
        assert report.api_calls <= 3 * 10 + 5


def test_a_field_only_some_contacts_carry_is_isolated_not_refused_batch_wide() -> None:
    source = rows(100, tier=None)
    source[0]["tier"] = 1  # the first contact of each half: both halves fail with the same message
    source[50]["tier"] = 2
    with Sandbox() as sb:
        report = Exporter(_FieldAppearsAfterPreflight(sb), mapping()).export(source, segment=SEGMENT)
        assert report.exported == 98
        assert sorted(r.row for r in report.rejected) == [1, 51]
        assert all("whole batch" not in r.message for r in report.rejected)


def test_definitions_without_an_autopilot_type_are_not_compared() -> None:
    class _Other:
        def custom_fields(self) -> list[object]:
            return [type("OrttoLike", (), {"name": "Tier", "field_id": "str:cm:tier"})()]

    assert check_custom_fields(_Other(), mapping()) == []
