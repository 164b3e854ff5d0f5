"""`OrttoDestination` over real HTTP against the Ortto sandbox: the seam's promises, call by call.

The exporter-level guarantees (one outcome per row, resume, leavers) are in test_destination_contract.py;
this module checks each method of the destination in every ambiguity mode of the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _fakes import FakeTime
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import BadRequestError, ConfigurationError, CustomField, FieldMapping
from autopilot_segments._destinations import as_destination
from autopilot_segments._destinations.base import Destination, Target
from autopilot_segments._destinations.ortto.client import OrttoClient
from autopilot_segments._destinations.ortto.destination import OrttoDestination
from autopilot_segments.sandbox import OrttoSandbox

KEY = "pk-0123456789abcdef0123456789abcdef"
MAPPING = FieldMapping(
    email="email",
    fields={"FirstName": "first", "Phone": "phone"},
    custom=[CustomField("Points", "integer", source="points"), CustomField("Note", "string", source="note")],
)


@pytest.fixture
def sb() -> Iterator[OrttoSandbox]:
    with OrttoSandbox(api_key=KEY) as sandbox:
        sandbox.add_custom_field("Points", "integer")
        sandbox.add_custom_field("Note", "text")
        yield sandbox


def client_for(sb: OrttoSandbox) -> OrttoClient:
    time = FakeTime()
    return OrttoClient(
        sb.api_key, base_url=sb.url, requests_per_second=1000.0, clock=time.clock, sleep=time.sleep
    )


def rows(*items: dict[str, Any]) -> list[Any]:
    mapped = [MAPPING.map_row(item, i + 1) for i, item in enumerate(items)]
    assert all(hasattr(m, "payload") for m in mapped), mapped
    return mapped


def merge_bodies(sb: OrttoSandbox) -> list[dict[str, Any]]:
    return [r.body for r in sb.requests if r.path == "/person/merge" and isinstance(r.body, dict)]


TARGET = Target(id="VIP", title="VIP")


def test_an_ortto_client_becomes_an_ortto_destination(sb: OrttoSandbox) -> None:
    destination = as_destination(client_for(sb))
    assert isinstance(destination, OrttoDestination)
    assert isinstance(destination, Destination)
    assert destination.capabilities.name == "Ortto"
    assert destination.capabilities.max_batch == 100
    assert destination.account_fingerprint.startswith("ortto:")
    assert destination.account_fingerprint != destination.client.account_fingerprint
    assert KEY not in repr(destination)


def test_bad_options_fail_at_construction_saying_what_to_fix(sb: OrttoSandbox) -> None:
    with pytest.raises(ConfigurationError) as caught:
        OrttoDestination(
            client_for(sb),
            tag=" ",
            merge_strategy=4,  # type: ignore[arg-type]
            merge_by=("str::person_id",),
            create_fields="yes",  # type: ignore[arg-type]
        )
    message = str(caught.value)
    for part in ("tag must be", "merge_strategy", "str::person_id", "create_fields"):
        assert part in message


def test_the_target_is_the_tag_and_names_the_audience_filtered_on_it(sb: OrttoSandbox) -> None:
    destination = OrttoDestination(client_for(sb))
    alone = destination.resolve_target("VIP")
    assert (alone.id, alone.created) == ("VIP", False)
    assert "no audience is filtered on it" in alone.note
    audience = sb.add_audience("VIP customers", tag="VIP")
    sb.add_audience("Others", tag="Other")
    target = destination.resolve_target("VIP")
    assert target.id == "VIP"
    assert "'VIP customers'" in target.note
    assert audience in target.note
    assert "Others" not in target.note
    templated = OrttoDestination(client_for(sb), tag="segment: {segment}")
    assert templated.resolve_target("VIP").id == "segment: VIP"
    assert OrttoDestination(client_for(sb), tag="fixed").resolve_target("anything").id == "fixed"


def test_stored_people_are_acknowledged_with_their_person_id_and_tagged(sb: OrttoSandbox) -> None:
    destination = OrttoDestination(client_for(sb))
    contacts = rows(
        {"email": "Ann@Example.com", "first": "Ann", "points": "12"},
        {"email": "bob@example.com", "first": "", "note": "hi"},
    )
    acks = destination.upsert_batch(TARGET, contacts)
    people = sb.people
    assert [a.contact_id for a in acks] == [
        people["ann@example.com"]["id"],
        people["bob@example.com"]["id"],
    ]
    assert sb.tagged("VIP") == {"ann@example.com", "bob@example.com"}
    (body,) = merge_bodies(sb)
    assert body["merge_strategy"] == 2
    assert body["merge_by"] == ["str::email"]
    assert body["async"] is False
    assert body["people"][1]["fields"] == {"str::email": "bob@example.com", "str:cm:note": "hi"}
    assert all("bol::p" not in p["fields"] for p in body["people"])


def test_an_empty_value_never_clears_a_field(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": "ann@example.com", "str::first": "Ann", "int:cm:points": 5}])
    keep_empties = FieldMapping(
        email="email",
        fields={"FirstName": "first"},
        custom=[CustomField("Points", "integer", source="points")],
        omit_empty=False,
    )
    contact = keep_empties.map_row({"email": "ann@example.com", "first": "", "points": None}, 1)
    (ack,) = OrttoDestination(client_for(sb)).upsert_batch(TARGET, [contact])  # type: ignore[list-item]
    assert ack.stored
    person = sb.people["ann@example.com"]["fields"]
    assert (person["str::first"], person["int:cm:points"]) == ("Ann", 5)


@pytest.mark.parametrize("mode", ["per_person", "whole_call"])
def test_an_invalid_person_is_refused_alone_or_fails_the_call_for_bisection(
    sb: OrttoSandbox, mode: str
) -> None:
    sb.configure(invalid_person=mode)
    destination = OrttoDestination(client_for(sb))
    contacts = rows({"email": "ann@example.com"}, {"email": "bob@example.com", "phone": "call me"})
    if mode == "whole_call":
        with pytest.raises(BadRequestError):
            destination.upsert_batch(TARGET, contacts)
        assert sb.people == {}
        # The engine bisects: alone, the invalid one is refused with Ortto's reason.
        (alone,) = destination.upsert_batch(TARGET, contacts[1:])
    else:
        ann, alone = destination.upsert_batch(TARGET, contacts)
        assert ann.stored
    assert not alone.stored
    assert alone.reason == "rejected_by_api"
    assert "invalid" in alone.problem
    assert "phn::phone" in alone.problem
    assert "bob@example.com" not in sb.people


def test_suppressed_people_are_not_exported_with_ortto_s_reason(sb: OrttoSandbox) -> None:
    sb.suppress("bob@example.com")
    destination = OrttoDestination(client_for(sb))
    ann, bob = destination.upsert_batch(
        TARGET, rows({"email": "ann@example.com"}, {"email": "bob@example.com"})
    )
    assert ann.stored
    assert not bob.stored
    assert bob.problem == "Ortto did not store this person: suppressed (Email is suppressed)"
    # Every person of a call suppressed: Ortto answers 400, with one detail per person.
    (again,) = destination.upsert_batch(TARGET, rows({"email": "bob@example.com"}))
    assert not again.stored
    assert "suppressed" in again.problem


@pytest.mark.parametrize("status", ["ignored", "skipped", "omitted"])
def test_create_only_people_that_exist_are_not_counted_exported(sb: OrttoSandbox, status: str) -> None:
    sb.configure(skipped_status=status)
    sb.add_people([{"str::email": "ann@example.com"}])
    destination = OrttoDestination(client_for(sb), merge_strategy=3)
    acks = destination.upsert_batch(TARGET, rows({"email": "ann@example.com"}, {"email": "new@example.com"}))
    if status == "omitted":  # one answer for two people: who was stored is unknown
        assert [a.reason for a in acks] == ["failed", "failed"]
        assert not any(a.stored for a in acks)
    else:
        assert not acks[0].stored
        assert status in acks[0].problem
        assert acks[1].stored
    assert "VIP" not in sb.people["ann@example.com"]["tags"]


@pytest.mark.parametrize("answer", ["accepted", "empty", "people"])
def test_an_async_answer_without_people_confirms_nothing(sb: OrttoSandbox, answer: str) -> None:
    sb.configure(async_answer=answer)
    destination = OrttoDestination(client_for(sb), asynchronous=True)
    acks = destination.upsert_batch(TARGET, rows({"email": "ann@example.com"}, {"email": "bob@example.com"}))
    if answer == "people":
        assert all(a.stored for a in acks)
    else:
        assert [a.reason for a in acks] == ["failed", "failed"]
        assert all(a.contact_id is None and "queued" in a.problem for a in acks)


def test_a_value_over_ortto_s_limits_is_a_row_problem_never_sent(sb: OrttoSandbox) -> None:
    destination = OrttoDestination(client_for(sb))
    ok, long = destination.upsert_batch(
        TARGET, rows({"email": "ann@example.com"}, {"email": "bob@example.com", "note": "x" * 300})
    )
    assert ok.stored
    assert (long.contact_id, long.reason) == (None, "invalid_value")
    assert "over Ortto's limit of 255" in long.problem
    (body,) = merge_bodies(sb)
    assert len(body["people"]) == 1


def test_nothing_is_sent_when_every_contact_is_refused_by_the_dialect(sb: OrttoSandbox) -> None:
    destination = OrttoDestination(client_for(sb))
    (long,) = destination.upsert_batch(TARGET, rows({"email": "bob@example.com", "note": "x" * 300}))
    assert long.reason == "invalid_value"
    assert merge_bodies(sb) == []


def test_a_body_over_2_mb_is_split(sb: OrttoSandbox) -> None:
    names = [f"Long {i}" for i in range(6)]
    for name in names:
        sb.add_custom_field(name, "large_text")
    mapping = FieldMapping(email="email", custom=[CustomField(n, "string") for n in names])
    contacts = [
        mapping.map_row({"email": f"p{i}@example.com", **dict.fromkeys(names, "y" * 4000)}, i + 1)
        for i in range(100)
    ]
    acks = OrttoDestination(client_for(sb)).upsert_batch(TARGET, contacts)  # type: ignore[arg-type]
    assert len(acks) == 100
    assert all(a.stored for a in acks)
    bodies = [r for r in sb.requests if r.path == "/person/merge"]
    assert len(bodies) == 2
    assert sum(len(b.body["people"]) for b in bodies) == 100
    assert all(r.status == 200 for r in bodies)
    assert all(len(json.dumps(b.body)) < 2 * 1024 * 1024 for b in bodies)


def test_a_missing_custom_field_is_a_configuration_error_unless_created_on_request(sb: OrttoSandbox) -> None:
    mapping = FieldMapping(email="email", custom=[CustomField("Tier", "integer", source="tier")])
    contact = mapping.map_row({"email": "ann@example.com", "tier": "3"}, 1)
    strict = OrttoDestination(client_for(sb))
    assert strict.field_conflicts(mapping) == [
        "Ortto has no custom field named 'Tier': create it (type integer)"
    ]
    with pytest.raises(ConfigurationError, match="Tier"):
        strict.upsert_batch(TARGET, [contact])  # type: ignore[list-item]
    assert merge_bodies(sb) == []
    creating = OrttoDestination(client_for(sb), create_fields=True)
    assert creating.field_conflicts(mapping) == []
    assert "int:cm:tier" not in sb.custom_fields  # a check only reads
    (ack,) = creating.upsert_batch(TARGET, [contact])  # type: ignore[list-item]
    assert ack.stored
    assert sb.custom_fields["int:cm:tier"] == "Tier"
    assert sb.people["ann@example.com"]["fields"]["int:cm:tier"] == 3


def test_field_conflicts_name_standard_fields_without_an_ortto_counterpart(sb: OrttoSandbox) -> None:
    mapping = FieldMapping(
        email="email", fields={"Company": "company"}, unsubscribed="unsub", allow_resubscribe=True
    )
    problems = OrttoDestination(client_for(sb)).field_conflicts(mapping)
    assert any("Company has no Ortto built-in field" in p for p in problems)
    assert any("send_email_permission=True" in p for p in problems)
    allowed = OrttoDestination(client_for(sb), send_email_permission=True)
    assert len(allowed.field_conflicts(mapping)) == 1


def test_consent_is_never_sent_unless_opted_in(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": "out@example.com", "bol::p": False}])
    mapping = FieldMapping(email="email", unsubscribed="unsub", allow_resubscribe=True)
    contacts = [mapping.map_row({"email": "out@example.com", "unsub": "false"}, 1)]
    with pytest.raises(ConfigurationError, match="send_email_permission"):
        OrttoDestination(client_for(sb)).upsert_batch(TARGET, contacts)  # type: ignore[arg-type]
    plain = FieldMapping(email="email")
    OrttoDestination(client_for(sb)).upsert_batch(TARGET, [plain.map_row({"email": "out@example.com"}, 1)])  # type: ignore[list-item]
    assert sb.people["out@example.com"]["fields"]["bol::p"] is False
    assert all("bol::p" not in p["fields"] for b in merge_bodies(sb) for p in b["people"])
    opted = OrttoDestination(client_for(sb), send_email_permission=True)
    opted.upsert_batch(TARGET, contacts)  # type: ignore[arg-type]
    assert sb.people["out@example.com"]["fields"]["bol::p"] is True  # the caller asked for it


def test_leavers_lose_the_tag_and_nothing_else(sb: OrttoSandbox) -> None:
    ids = sb.add_people(
        [
            {"str::email": "ann@example.com"},
            {"str::email": "bob@example.com"},
            {"str::email": "cy@example.com"},
        ],
        tags=["VIP", "Other"],
    )
    sb.delete_person("cy@example.com")
    destination = OrttoDestination(client_for(sb))
    results = destination.remove_members(TARGET, ids)
    assert list(results) == [None, None, None]
    assert sb.tagged("VIP") == set()
    assert sb.tagged("Other") == {"ann@example.com", "bob@example.com"}
    assert set(sb.people) == {"ann@example.com", "bob@example.com"}  # nobody created, nobody deleted
    assert all(p["fields"]["bol::p"] is True for p in sb.people.values())


@pytest.mark.parametrize("status", ["ignored", "skipped", "omitted"])
def test_a_leaver_who_is_gone_is_acknowledged_in_every_skipped_mode(sb: OrttoSandbox, status: str) -> None:
    sb.configure(skipped_status=status)
    ids = sb.add_people([{"str::email": "ann@example.com"}, {"str::email": "bob@example.com"}], tags=["VIP"])
    sb.delete_person("ann@example.com")
    assert list(OrttoDestination(client_for(sb)).remove_members(TARGET, ids)) == [None, None]
    assert sb.tagged("VIP") == set()


def test_a_failed_removal_is_returned_per_id(sb: OrttoSandbox) -> None:
    ids = sb.add_people([{"str::email": "ann@example.com"}], tags=["VIP"])
    client = OrttoClient(sb.api_key, base_url=sb.url, requests_per_second=1000.0, max_retries=0)
    sb.inject("503", times=1)
    (error,) = OrttoDestination(client).remove_members(TARGET, ids)
    assert error is not None
    assert "503" in str(error)
    assert sb.tagged("VIP") == {"ann@example.com"}


def test_members_are_the_people_with_the_tag_page_by_page(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": f"m{i}@example.com"} for i in range(1203)], tags=["VIP"])
    sb.add_people([{"str::email": "other@example.com"}], tags=["Other"])
    members = list(OrttoDestination(client_for(sb)).iter_members(TARGET))
    assert len(members) == 1203
    assert set(members) == {f"m{i}@example.com" for i in range(1203)}
    assert len([r for r in sb.requests if r.path == "/person/get"]) == 3


def test_refusal_concerns_all_only_for_a_field_every_contact_carries(sb: OrttoSandbox) -> None:
    destination = OrttoDestination(client_for(sb))
    contacts = rows({"email": "ann@example.com", "points": "1"}, {"email": "bob@example.com", "points": "2"})
    destination.upsert_batch(TARGET, contacts)
    assert destination.refusal_concerns_all(TARGET, contacts, "field int:cm:points does not exist")
    assert not destination.refusal_concerns_all(TARGET, contacts, "phn::phone: expected a phone")
    mixed = rows({"email": "ann@example.com", "points": "1"}, {"email": "bob@example.com"})
    assert not destination.refusal_concerns_all(TARGET, mixed, "field int:cm:points does not exist")


def test_the_report_names_the_tag_and_ortto_not_a_list(sb: OrttoSandbox, tmp_path: Any) -> None:
    from autopilot_segments import Exporter

    sb.add_audience("VIP customers", tag="VIP")
    mapping = FieldMapping(email="email")
    exporter = Exporter(client_for(sb), mapping, state=tmp_path / "s.db", on_leave="remove")
    exporter.export([{"email": f"p{i}@example.com"} for i in range(3)], segment="VIP")
    report = exporter.export([{"email": "p0@example.com"}], segment="VIP", force=True)
    summary = report.summary()
    assert "Segment 'VIP' -> Ortto tag VIP" in summary
    assert "2 leavers removed from the tag" in summary
    assert "list" not in summary.replace("'VIP customers'", "")
    assert report.to_dict()["destination"] == "Ortto"
    plan = exporter.plan([{"email": "new@example.com"}], segment="VIP").summary()
    assert "_autopilot_list" not in plan
    assert "planned: 3 API calls >= " in plan  # the audiences, one merge, one untagging


def test_export_segments_gives_each_segment_its_tag_and_keeps_other_tags(
    sb: OrttoSandbox, tmp_path: Any
) -> None:
    from autopilot_segments import Exporter

    sb.add_people([{"str::email": "ann@example.com"}], tags=["Newsletter"])
    exporter = Exporter(
        client_for(sb), FieldMapping(email="email"), state=tmp_path / "s.db", on_leave="remove"
    )
    reports = exporter.export_segments(
        {
            "Gold": [{"email": "ann@example.com"}, {"email": "bob@example.com"}],
            "Silver": [{"email": "ann@example.com"}, {"email": "cy@example.com"}],
        }
    )
    assert [(r.list_id, r.exported) for r in reports.values()] == [("Gold", 2), ("Silver", 2)]
    assert sb.people["ann@example.com"]["tags"] == ["Newsletter", "Gold", "Silver"]
    again = exporter.export_segments(
        {"Gold": [{"email": "bob@example.com"}], "Silver": [{"email": "cy@example.com"}]}, force=True
    )
    assert [r.removed for r in again.values()] == [1, 1]
    assert sb.people["ann@example.com"]["tags"] == ["Newsletter"]
    assert [h.outcome for h in exporter.history("Gold")] == ["completed", "completed"]


@pytest.mark.parametrize("preserve_tags", [False, True])
def test_where_merge_tags_replace_preserve_tags_keeps_a_person_s_other_tags(
    sb: OrttoSandbox, preserve_tags: bool
) -> None:
    sb.configure(merge_tags="replace")
    sb.add_people([{"str::email": "ann@example.com"}], tags=["Newsletter", "Gold"])
    destination = OrttoDestination(client_for(sb), preserve_tags=preserve_tags)
    acks = destination.upsert_batch(TARGET, rows({"email": "ann@example.com"}, {"email": "new@example.com"}))
    assert all(a.stored for a in acks)
    assert sb.people["new@example.com"]["tags"] == ["VIP"]
    expected = ["Newsletter", "Gold", "VIP"] if preserve_tags else ["VIP"]  # replaced: the other tags lost
    assert sb.people["ann@example.com"]["tags"] == expected
    reads = [r for r in sb.requests if r.path == "/person/get"]
    assert len(reads) == (1 if preserve_tags else 0)


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=100),
    text=st.sampled_from(["y", "é", "日"]),
)
@settings(deadline=None, max_examples=60)
def test_body_chunks_keep_order_and_stay_under_the_limit(sizes: list[int], text: str) -> None:
    from autopilot_segments._destinations.ortto.destination import _ENVELOPE_BYTES, _by_body_size
    from autopilot_segments._http.json_body import encode_json

    limit = _ENVELOPE_BYTES + 12_000
    people = [
        (i, {"fields": {"str::email": f"p{i}@example.com", "txt:cm:x": text * n}})
        for i, n in enumerate(sizes)
    ]
    chunks = list(_by_body_size(people, limit))
    assert [item for chunk in chunks for item in chunk] == people  # every person once, in order
    assert all(chunks)
    for chunk in chunks:
        body = {"people": [p for _, p in chunk], "merge_by": ["str::email"], "merge_strategy": 2}
        if len(chunk) > 1:  # a person alone may exceed it: Ortto then refuses that person's merge
            assert len(encode_json(body)) <= limit


def test_an_export_whose_mapping_does_not_fit_ortto_stops_before_writing(sb: OrttoSandbox) -> None:
    from autopilot_segments import Exporter

    mapping = FieldMapping(email="email", fields={"Company": "company"})
    exporter = Exporter(client_for(sb), mapping)
    with pytest.raises(ConfigurationError) as caught:
        exporter.export([{"email": "ann@example.com", "company": "Acme"}], segment="VIP")
    message = str(caught.value)
    assert "Company has no Ortto built-in field: map it as a custom field" in message
    assert "nothing was written" in message
    assert "keeps the type" not in message  # Autopilot's advice, not Ortto's
    assert merge_bodies(sb) == []


def test_a_plan_that_checks_the_account_names_what_ortto_lacks_and_writes_nothing(sb: OrttoSandbox) -> None:
    from autopilot_segments import Exporter

    mapping = FieldMapping(email="email", custom=[CustomField("Tier", "integer", source="tier")])
    plan = Exporter(client_for(sb), mapping).plan(
        [{"email": "ann@example.com", "tier": "1"}], segment="VIP", check_account=True
    )
    assert plan.dry_run
    assert plan.exported == 1
    assert "Ortto has no custom field named 'Tier'" in plan.list_note
    assert [r.path for r in sb.requests] == ["/person/custom-field/get"]
