"""Typed models: wire names, tolerant parsing, round-trips, bulk-upsert accounting."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments import (
    BulkUpsertResult,
    ClientStats,
    ConfigurationError,
    Contact,
    ContactList,
    CustomFieldDefinition,
    CustomFieldValue,
    Hook,
    SmartSegment,
    Trigger,
)
from autopilot_segments._destinations.autopilot.models import STANDARD_FIELDS

WIRE_NAMES = [
    "Email", "Twitter", "FirstName", "LastName", "Salutation", "Company", "NumberOfEmployees", "Title",
    "Industry", "Phone", "MobilePhone", "Fax", "Website", "MailingStreet", "MailingCity", "MailingState",
    "MailingPostalCode", "MailingCountry", "owner_name", "LeadSource", "Status", "LinkedIn",
]  # fmt: skip


def test_every_standard_field_has_its_exact_wire_name() -> None:
    assert sorted(STANDARD_FIELDS.values()) == sorted(WIRE_NAMES)
    assert STANDARD_FIELDS["email"] == "Email"
    assert STANDARD_FIELDS["first_name"] == "FirstName"
    assert STANDARD_FIELDS["linked_in"] == "LinkedIn"
    assert STANDARD_FIELDS["owner_name"] == "owner_name"
    fields = {f.name for f in attrs.fields(Contact)}
    assert set(STANDARD_FIELDS) <= fields


def test_to_api_sends_only_set_fields_and_never_unsubscribed_by_default() -> None:
    contact = Contact(email="ada@example.com", first_name="Ada", mailing_postal_code="75001")
    assert contact.to_api() == {"Email": "ada@example.com", "FirstName": "Ada", "MailingPostalCode": "75001"}
    assert "unsubscribed" not in contact.to_api()
    assert Contact(email="a@b.co", unsubscribed=True).to_api()["unsubscribed"] is True
    # `false` re-subscribes: a model read as subscribed must not carry that back without an opt-in.
    assert "unsubscribed" not in Contact(email="a@b.co", unsubscribed=False).to_api()
    assert Contact(email="a@b.co", unsubscribed=False).to_api(allow_resubscribe=True)["unsubscribed"] is False


def test_to_api_writes_custom_fields_in_the_upsert_shape() -> None:
    contact = Contact(
        email="a@b.co",
        custom_fields=[
            CustomFieldValue(name="Loyalty Tier", field_type="string", value="gold"),
            CustomFieldValue(name="Points", field_type="integer", value=12),
            CustomFieldValue(name="Old", field_type="string", value="x", deleted=True),
        ],
    )
    assert contact.to_api()["custom"] == {"string--Loyalty--Tier": "gold", "integer--Points": 12}


def test_custom_field_names_that_cannot_round_trip_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="--"):
        Contact(custom_fields=[CustomFieldValue(name="a--b", field_type="string")]).to_api()
    with pytest.raises(ConfigurationError, match="type"):
        Contact(custom_fields=[CustomFieldValue(name="a", field_type="text")]).to_api()


def test_from_api_parses_a_returned_contact_and_keeps_unknown_keys() -> None:
    data: dict[str, Any] = {
        "Email": "ada@example.com",
        "FirstName": "Ada",
        "NumberOfEmployees": 50,
        "LinkedIn": "ada",
        "contact_id": "person_1",
        "Name": "Ada L",
        "unsubscribed": True,
        "lists": ["contactlist_1", {"list_id": "contactlist_2"}, 7],
        "created_at": "2016-11-22T00:00:00.000Z",
        "updated_at": "2016-11-23T00:00:00.000Z",
        "api_originated": True,
        "mail_received": {"n": 2},
        "custom_fields": [
            {"kind": "Loyalty Tier", "value": "gold", "fieldType": "string", "deleted": False},
            {"kind": "Gone", "value": None, "fieldType": "date", "deleted": True},
            "garbage",
        ],
    }
    contact = Contact.from_api(data)
    assert contact.email == "ada@example.com"
    assert contact.first_name == "Ada"
    assert contact.number_of_employees == "50"
    assert contact.linked_in == "ada"
    assert contact.contact_id == "person_1"
    assert contact.unsubscribed is True
    assert contact.lists == ("contactlist_1", "contactlist_2")
    assert contact.created_at == "2016-11-22T00:00:00.000Z"
    assert contact.custom_fields == (
        CustomFieldValue(name="Loyalty Tier", field_type="string", value="gold", deleted=False),
        CustomFieldValue(name="Gone", field_type="date", value=None, deleted=True),
    )
    assert dict(contact.extra) == {"Name": "Ada L", "api_originated": True, "mail_received": {"n": 2}}
    # read-only keys never go back out
    assert set(contact.to_api()) == {
        "Email",
        "FirstName",
        "NumberOfEmployees",
        "LinkedIn",
        "unsubscribed",
        "custom",
    }


def test_from_api_tolerates_a_nearly_empty_contact_and_refuses_non_objects() -> None:
    assert Contact.from_api({}) == Contact()
    with pytest.raises(TypeError):
        Contact.from_api(["not", "a", "contact"])  # type: ignore[arg-type]


def test_documented_write_keys_in_extra_are_sent() -> None:
    contact = Contact(
        email="a@b.co", extra={"_autopilot_list": "contactlist_1", "notify": False, "Name": "x"}
    )
    assert contact.to_api() == {"Email": "a@b.co", "_autopilot_list": "contactlist_1", "notify": False}


text = st.text(min_size=1, max_size=20)
custom_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ]{0,15}[A-Za-z0-9]", fullmatch=True).filter(
    lambda n: "  " not in n
)


@given(
    standard=st.dictionaries(st.sampled_from(sorted(STANDARD_FIELDS)), text, max_size=8),
    unsubscribed=st.none() | st.booleans(),
    custom=st.lists(
        st.builds(
            CustomFieldValue,
            name=custom_name,
            field_type=st.sampled_from(["string", "integer", "float", "date", "boolean"]),
            value=st.none() | st.integers() | text | st.booleans(),
        ),
        max_size=4,
        unique_by=lambda f: f.name,
    ),
)
def test_to_api_from_api_round_trip(
    standard: dict[str, str], unsubscribed: bool | None, custom: list[CustomFieldValue]
) -> None:
    contact = Contact(**standard, unsubscribed=unsubscribed, custom_fields=custom)  # type: ignore[arg-type]
    # With the opt-in the wire shape is faithful; without it only `unsubscribed=False` is left out.
    assert Contact.from_api(contact.to_api(allow_resubscribe=True)) == contact
    expected = contact if unsubscribed is not False else attrs.evolve(contact, unsubscribed=None)
    assert Contact.from_api(contact.to_api()) == expected


def test_simple_models_parse_and_ignore_extra_keys() -> None:
    assert ContactList.from_api({"list_id": "contactlist_1", "title": "VIP", "x": 1}) == ContactList(
        list_id="contactlist_1", title="VIP"
    )
    assert SmartSegment.from_api({"segment_id": "contactlist_sseg1"}) == SmartSegment(
        segment_id="contactlist_sseg1", title=""
    )
    assert Trigger.from_api({"trigger_id": "0001", "journey": "Welcome", "trigger_type": "api"}) == Trigger(
        trigger_id="0001", journey="Welcome", trigger_type="api"
    )
    assert Hook.from_api({"id": "hook_1"}) == Hook(hook_id="hook_1")
    assert Hook.from_api(
        {"hook_id": "hook_2", "event": "contact_added", "target_url": "https://x"}
    ).event == ("contact_added")
    assert CustomFieldDefinition.from_api({"name": "Tier", "fieldType": "string"}) == CustomFieldDefinition(
        name="Tier", field_type="string"
    )
    with pytest.raises(KeyError):
        ContactList.from_api({"title": "no id"})
    with pytest.raises(KeyError):
        Hook.from_api({"event": "contact_added"})


def test_bulk_result_reports_missing_emails_case_insensitively() -> None:
    result = BulkUpsertResult.from_api(
        {
            "contact_ids": ["person_1", "person_2"],
            "email_contact_map": {"ada@example.com": "person_1", "bob@example.com": "person_2"},
            "extra_key": True,
        },
        ["Ada@Example.com", "bob@example.com", "eve@example.com", "eve@example.com"],
    )
    assert result.contact_ids == ("person_1", "person_2")
    assert dict(result.email_contact_map) == {"ada@example.com": "person_1", "bob@example.com": "person_2"}
    assert result.missing == ("eve@example.com",)


@given(
    stored=st.sets(st.from_regex(r"[a-z]{1,6}@[a-z]{1,5}\.com", fullmatch=True), max_size=10),
    dropped=st.sets(st.from_regex(r"[a-z]{1,6}@drop\.org", fullmatch=True), max_size=5),
)
def test_missing_is_exactly_the_submitted_emails_absent_from_the_map(
    stored: set[str], dropped: set[str]
) -> None:
    submitted = sorted(e.upper() for e in stored) + sorted(dropped)
    body = {
        "contact_ids": [f"person_{i}" for i in range(len(stored))],
        "email_contact_map": dict.fromkeys(stored, "p"),
    }
    result = BulkUpsertResult.from_api(body, submitted)
    assert set(result.missing) == dropped


def test_models_are_frozen() -> None:
    contact = Contact(email="a@b.co")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        contact.email = "c@d.co"  # type: ignore[misc]
    assert ClientStats() == ClientStats(requests=0, retries=0, rate_limited=0)
    assert hash(Contact(email="a@b.co")) == hash(Contact(email="a@b.co"))
