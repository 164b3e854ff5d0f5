"""The sandbox over real HTTP: auth, upserts, strict validation, merge, lists, pages, every endpoint."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import requests

from autopilot_segments.sandbox import Sandbox

TIMEOUT = 5.0


class Api:
    """A thin test client: one shared keep-alive session, the key header added unless told otherwise."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.session = requests.Session()

    def __call__(
        self, method: str, path: str, body: Any = None, *, key: str | None = "valid"
    ) -> requests.Response:
        headers = {} if key is None else {"autopilotapikey": self.sb.api_key if key == "valid" else key}
        return self.session.request(method, self.sb.url + path, json=body, headers=headers, timeout=TIMEOUT)

    def upsert(self, **contact: Any) -> requests.Response:
        return self("POST", "/contact", {"contact": contact})

    def bulk(self, contacts: list[dict[str, Any]]) -> requests.Response:
        return self("POST", "/contacts", {"contacts": contacts})


@pytest.fixture
def api(autopilot_sandbox: Sandbox) -> Api:
    return Api(autopilot_sandbox)


# -- auth -------------------------------------------------------------------------------------------
def test_missing_key_header_is_a_400_with_autopilots_body(api: Api) -> None:
    answer = api("GET", "/account", key=None)
    assert answer.status_code == 400
    assert answer.json() == {"error": "Bad Request", "message": "No autopilotapikey header provided."}


def test_wrong_key_is_a_401_with_autopilots_body(api: Api) -> None:
    answer = api("GET", "/account", key="0" * 32)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Unauthorized", "message": "Provided autopilotapikey not valid."}
    assert api.sb.requests[-1].applied is False


def test_default_key_is_32_lowercase_hex_and_never_in_repr() -> None:
    sb = Sandbox()
    assert len(sb.api_key) == 32
    assert all(ch in "0123456789abcdef" for ch in sb.api_key)
    assert sb.api_key != Sandbox().api_key
    assert sb.api_key not in repr(sb)
    with sb:
        assert sb.api_key not in repr(sb)
        assert sb.url == f"http://127.0.0.1:{sb.port}/v1"


def test_account_answers_a_mapping(api: Api) -> None:
    answer = api("GET", "/account")
    assert answer.status_code == 200
    assert isinstance(answer.json(), dict)


def test_paths_outside_v1_and_unknown_paths_are_404_and_wrong_methods_405(api: Api) -> None:
    outside = api.sb.url.removesuffix("/v1") + "/account"
    headers = {"autopilotapikey": api.sb.api_key}
    assert api.session.get(outside, headers=headers, timeout=TIMEOUT).status_code == 404
    assert api("GET", "/nothing/here").status_code == 404
    assert api("PUT", "/contact").status_code == 405


# -- single upsert and get ------------------------------------------------------------------------
def test_upsert_returns_a_person_id_and_get_returns_the_full_contact(api: Api) -> None:
    answer = api.upsert(Email="Ann@Example.com", FirstName="Ann", LastName="Lee", Company="ACME")
    assert answer.status_code == 200
    contact_id = answer.json()["contact_id"]
    assert contact_id.startswith("person_")
    assert contact_id == contact_id.upper().replace("PERSON_", "person_")
    got = api("GET", f"/contact/{contact_id}").json()
    assert got["contact_id"] == contact_id
    assert got["Email"] == "Ann@Example.com"
    assert got["Name"] == "Ann Lee"
    assert got["Company"] == "ACME"
    assert got["unsubscribed"] is False
    assert got["api_originated"] is True
    assert got["lists"] == []
    assert got["custom_fields"] == []
    assert got["created_at"].endswith("Z")
    assert got["updated_at"] >= got["created_at"]


def test_contact_is_found_by_url_encoded_email_in_any_case(api: Api) -> None:
    contact_id = api.upsert(Email="mixed.Case+tag@Example.com").json()["contact_id"]
    for ref in ("mixed.case+tag@example.com", "MIXED.CASE+TAG@EXAMPLE.COM"):
        answer = api("GET", "/contact/" + quote(ref, safe=""))
        assert answer.status_code == 200
        assert answer.json()["contact_id"] == contact_id
    assert set(api.sb.contacts) == {"mixed.case+tag@example.com"}


def test_upsert_dedupes_case_insensitively_and_keeps_the_email_as_last_sent(api: Api) -> None:
    first = api.upsert(Email="bob@example.com").json()["contact_id"]
    second = api.upsert(Email="BOB@example.com").json()["contact_id"]
    assert first == second
    assert len(api.sb.contacts) == 1
    assert api.sb.contacts["bob@example.com"]["Email"] == "BOB@example.com"
    assert api.sb.upsert_counts["bob@example.com"] == 2


def test_unknown_contact_is_404_with_autopilots_body(api: Api) -> None:
    answer = api("GET", "/contact/nobody%40example.com")
    assert answer.status_code == 404
    assert answer.json() == {"error": "Not Found", "message": "Contact could not be found."}


def test_merge_leaves_absent_keys_unchanged_and_unsubscribed_sticks(api: Api) -> None:
    api.upsert(Email="c@example.com", FirstName="Cy", Phone="123", custom={"string--Tier": "gold"})
    api("POST", "/contact/c%40example.com/unsubscribe")
    api.upsert(Email="c@example.com", LastName="Ng", custom={"integer--Points": 5})
    got = api.sb.contacts["c@example.com"]
    assert (got["FirstName"], got["LastName"], got["Phone"]) == ("Cy", "Ng", "123")
    assert got["unsubscribed"] is True
    assert {f["kind"]: f["value"] for f in got["custom_fields"]} == {"Tier": "gold", "Points": 5}
    api.upsert(Email="c@example.com", unsubscribed=False)
    assert api.sb.contacts["c@example.com"]["unsubscribed"] is False


def test_unsubscribe_endpoint(api: Api) -> None:
    api.upsert(Email="u@example.com")
    answer = api("POST", "/contact/u%40example.com/unsubscribe")
    assert answer.status_code == 200
    assert api.sb.contacts["u@example.com"]["unsubscribed"] is True
    assert api("POST", "/contact/none%40example.com/unsubscribe").status_code == 404


def test_new_email_renames_the_contact(api: Api) -> None:
    contact_id = api.upsert(Email="old@example.com").json()["contact_id"]
    answer = api.upsert(Email="old@example.com", _NewEmail="New@example.com")
    assert answer.json()["contact_id"] == contact_id
    assert set(api.sb.contacts) == {"new@example.com"}
    assert api.sb.contacts["new@example.com"]["Email"] == "New@example.com"
    api.upsert(Email="other@example.com")
    clash = api.upsert(Email="other@example.com", _NewEmail="new@example.com")
    assert clash.status_code == 400


def test_session_id_and_notify_are_accepted(api: Api) -> None:
    assert api.upsert(Email="s@example.com", _autopilot_session_id="abc", notify=False).status_code == 200


def test_autopilot_list_in_single_upsert_adds_to_the_list(api: Api) -> None:
    list_id = api("POST", "/list", {"name": "Newsletter"}).json()["list_id"]
    api.upsert(Email="l@example.com", _autopilot_list=list_id)
    assert api.sb.list_members(list_id) == {"l@example.com"}
    assert api.sb.contacts["l@example.com"]["lists"] == [list_id]
    assert api.upsert(Email="m@example.com", _autopilot_list="contactlist_nope").status_code == 400


def test_delete_contact_removes_it_everywhere(api: Api) -> None:
    list_id = api.sb.create_list("L")
    api.upsert(Email="d@example.com", _autopilot_list=list_id)
    answer = api("DELETE", "/contact/d%40example.com")
    assert answer.status_code == 200
    assert api.sb.contacts == {}
    assert api.sb.list_members(list_id) == set()
    assert api("DELETE", "/contact/d%40example.com").status_code == 404


# -- strict validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("contact", "expected"),
    [
        ({"FirstName": "x"}, "Email is missing"),
        ({"Email": ""}, "Email is missing"),
        ({"Email": "no-at-sign.example.com"}, "exactly one @"),
        ({"Email": "a@@example.com"}, "exactly one @"),
        ({"Email": "@example.com"}, "empty local part"),
        ({"Email": "a b@example.com"}, "spaces"),
        ({"Email": "a@localhost"}, "dot"),
        ({"Email": "a@1.2.3.4"}, "numeric"),
        ({"Email": "a@[1.2.3.4]"}, "brackets"),
        ({"Email": "zoë@example.com"}, "ASCII"),
        ({"Email": "x@example.com", "Shoe": "42"}, "unknown field"),
        ({"Email": "x@example.com", "FirstName": 3}, "must be a string"),
        ({"Email": "x@example.com", "NumberOfEmployees": 30}, "must be a string"),
        ({"Email": "x@example.com", "Company": None}, "must be a string"),
        ({"Email": "x@example.com", "Title": "t" * 256}, "longer than 255"),
        ({"Email": "x@example.com", "unsubscribed": "false"}, "'unsubscribed' must be true or false"),
        ({"Email": "x@example.com", "notify": 0}, "'notify' must be true or false"),
        ({"Email": "x@example.com", "custom": []}, "'custom' must be a JSON object"),
        ({"Email": "x@example.com", "custom": {"Tier": "a"}}, "not of the form"),
        ({"Email": "x@example.com", "custom": {"text--Tier": "a"}}, "not of the form"),
        ({"Email": "x@example.com", "custom": {"string--Loyalty----Tier": "a"}}, "not of the form"),
        ({"Email": "x@example.com", "custom": {"string--": "a"}}, "not of the form"),
        ({"Email": "x@example.com", "custom": {"string--Loyalty Tier": "a"}}, "not of the form"),
        ({"Email": "x@example.com", "custom": {"integer--Points": True}}, "not a valid integer"),
        ({"Email": "x@example.com", "custom": {"integer--Points": 1.5}}, "not a valid integer"),
        ({"Email": "x@example.com", "custom": {"float--Score": "1.5"}}, "not a valid float"),
        ({"Email": "x@example.com", "custom": {"float--Score": True}}, "not a valid float"),
        ({"Email": "x@example.com", "custom": {"boolean--Vip": 1}}, "not a valid boolean"),
        ({"Email": "x@example.com", "custom": {"date--Joined": "22/11/2016"}}, "not a valid date"),
        ({"Email": "x@example.com", "custom": {"date--Joined": 20161122}}, "not a valid date"),
        ({"Email": "x@example.com", "custom": {"string--Tier": 5}}, "not a valid string"),
        ({"Email": "x@example.com", "_NewEmail": "broken"}, "_NewEmail is not valid"),
    ],
)
def test_invalid_single_upsert_is_a_400_naming_the_problem(
    api: Api, contact: dict[str, Any], expected: str
) -> None:
    answer = api("POST", "/contact", {"contact": contact})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == "Bad Request"
    assert expected in body["message"]
    if contact.get("Email"):
        assert contact["Email"] in body["message"]
    assert api.sb.contacts == {}
    assert api.sb.requests[-1].applied is False


@pytest.mark.parametrize(
    "custom",
    [
        {"string--Loyalty--Tier": "gold"},
        {"integer--Points": -3},
        {"float--Score": 2},
        {"float--Score": 2.5},
        {"boolean--Vip": False},
        {"date--Joined": "2016-11-22T00:00:00.000Z"},
        {"date--Joined": "2016-11-22"},
    ],
)
def test_valid_custom_values_are_stored_with_their_type(api: Api, custom: dict[str, Any]) -> None:
    assert api.upsert(Email="ok@example.com", custom=custom).status_code == 200
    ((key, value),) = custom.items()
    field_type, *parts = key.split("--")
    (stored,) = api.sb.contacts["ok@example.com"]["custom_fields"]
    assert stored == {"kind": " ".join(parts), "value": value, "fieldType": field_type, "deleted": False}
    assert api("GET", "/contacts/custom_fields").json() == [
        {"name": " ".join(parts), "fieldType": field_type}
    ]


def test_a_custom_field_keeps_its_first_type(api: Api) -> None:
    assert api.upsert(Email="a@example.com", custom={"string--Tier": "gold"}).status_code == 200
    answer = api.upsert(Email="b@example.com", custom={"integer--Tier": 1})
    assert answer.status_code == 400
    assert "b@example.com" in answer.json()["message"]
    assert "Tier" in answer.json()["message"]


@pytest.mark.parametrize(
    "body", [None, {}, {"contact": "x@example.com"}, {"contacts": [{"Email": "x@example.com"}]}]
)
def test_single_upsert_needs_a_contact_object(api: Api, body: Any) -> None:
    assert api("POST", "/contact", body).status_code == 400


def test_malformed_json_is_a_400(api: Api) -> None:
    answer = api.session.post(
        api.sb.url + "/contact",
        data=b"{not json",
        headers={"autopilotapikey": api.sb.api_key, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400


# -- bulk upsert -----------------------------------------------------------------------------------
def test_bulk_upsert_answers_ids_and_a_map_keyed_by_email_as_sent(api: Api) -> None:
    answer = api.bulk([{"Email": "One@example.com"}, {"Email": "two@example.com", "FirstName": "T"}])
    assert answer.status_code == 200
    body = answer.json()
    assert set(body["email_contact_map"]) == {"One@example.com", "two@example.com"}
    assert body["contact_ids"] == list(body["email_contact_map"].values())
    assert set(api.sb.contacts) == {"one@example.com", "two@example.com"}
    assert api.sb.upsert_counts == {"one@example.com": 1, "two@example.com": 1}


@pytest.mark.parametrize("bulk_invalid", ["reject", "drop"])
def test_bulk_answer_ids_only_plays_autopilots_published_example(api: Api, bulk_invalid: str) -> None:
    api.sb.configure(bulk_answer="ids_only", bulk_invalid=bulk_invalid)
    answer = api.bulk([{"Email": "One@example.com"}, {"Email": "two@example.com"}])
    assert answer.status_code == 200
    ids = answer.json()
    assert set(ids) == {"contact_ids"}
    contacts = api.sb.contacts
    assert ids["contact_ids"] == [
        contacts["one@example.com"]["contact_id"],
        contacts["two@example.com"]["contact_id"],
    ]
    if bulk_invalid == "drop":
        dropped = api.bulk([{"Email": "three@example.com"}, {"Email": "broken"}]).json()
        assert dropped == {"contact_ids": [api.sb.contacts["three@example.com"]["contact_id"]]}
    with pytest.raises(ValueError, match="bulk_answer"):
        api.sb.configure(bulk_answer="sometimes")


@pytest.mark.parametrize("body", [{}, {"contacts": []}, {"contacts": None}, {"contacts": "a@b.co"}])
def test_bulk_upsert_needs_a_non_empty_contacts_array(api: Api, body: Any) -> None:
    assert api("POST", "/contacts", body).status_code == 400


@pytest.mark.parametrize("bulk_invalid", ["reject", "drop"])
def test_more_than_100_contacts_is_a_400_in_both_modes(api: Api, bulk_invalid: str) -> None:
    api.sb.configure(bulk_invalid=bulk_invalid)
    contacts = [{"Email": f"p{i}@example.com"} for i in range(101)]
    answer = api.bulk(contacts)
    assert answer.status_code == 400
    assert "100" in answer.json()["message"]
    assert api.sb.contacts == {}
    assert api.bulk(contacts[:100]).status_code == 200


def test_bulk_reject_mode_rejects_the_whole_request_naming_the_contact(api: Api) -> None:
    answer = api.bulk([{"Email": "good@example.com"}, {"Email": "bad@example.com", "FirstName": 7}])
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "bad@example.com" in message
    assert "FirstName" in message
    assert api.sb.contacts == {}
    assert not api.sb.upsert_counts


def test_bulk_drop_mode_silently_leaves_invalid_contacts_out(api: Api) -> None:
    api.sb.configure(bulk_invalid="drop")
    answer = api.bulk(
        [
            {"Email": "good@example.com"},
            {"Email": "broken"},
            {"Email": "typed@example.com", "custom": {"integer--Points": "many"}},
            {"Email": "fine@example.com", "custom": {"integer--Points": 2}},
        ]
    )
    assert answer.status_code == 200
    body = answer.json()
    assert set(body["email_contact_map"]) == {"good@example.com", "fine@example.com"}
    assert len(body["contact_ids"]) == 2
    assert set(api.sb.contacts) == {"good@example.com", "fine@example.com"}


def test_bulk_validates_types_introduced_earlier_in_the_same_request(api: Api) -> None:
    answer = api.bulk(
        [
            {"Email": "a@example.com", "custom": {"string--Tier": "x"}},
            {"Email": "b@example.com", "custom": {"boolean--Tier": True}},
        ]
    )
    assert answer.status_code == 400
    assert "b@example.com" in answer.json()["message"]


def test_bulk_list_honoured_and_ignored(api: Api) -> None:
    list_id = api.sb.create_list("Bulk")
    api.bulk([{"Email": "h@example.com", "_autopilot_list": list_id}])
    assert api.sb.list_members(list_id) == {"h@example.com"}
    api.sb.configure(bulk_list="ignored")
    answer = api.bulk([{"Email": "i@example.com", "_autopilot_list": list_id}])
    assert answer.status_code == 200
    assert api.sb.list_members(list_id) == {"h@example.com"}
    assert "i@example.com" in api.sb.contacts


# -- lists and membership ----------------------------------------------------------------------------
def test_create_and_list_lists(api: Api) -> None:
    first = api("POST", "/list", {"name": "Alpha"})
    assert first.status_code == 200
    list_id = first.json()["list_id"]
    assert list_id.startswith("contactlist_")
    api("POST", "/list", {"name": "Beta"})
    lists = api("GET", "/lists").json()["lists"]
    assert [(entry["list_id"], entry["title"]) for entry in lists] == api.sb.lists
    assert [title for _, title in api.sb.lists] == ["Alpha", "Beta"]
    assert api("POST", "/list", {"name": ""}).status_code == 400
    assert api("POST", "/list", {}).status_code == 400


def test_duplicate_list_conflict_and_create(api: Api) -> None:
    api("POST", "/list", {"name": "Dup"})
    conflict = api("POST", "/list", {"name": "dup"})
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "Conflict"
    assert len(api.sb.lists) == 1
    api.sb.configure(duplicate_list="create")
    second = api("POST", "/list", {"name": "Dup"})
    assert second.status_code == 200
    assert [title for _, title in api.sb.lists] == ["Dup", "Dup"]
    assert len({list_id for list_id, _ in api.sb.lists}) == 2


def test_membership_add_check_remove_with_not_modified(api: Api) -> None:
    list_id = api.sb.create_list("M")
    api.upsert(Email="m@example.com")
    member = f"/list/{list_id}/contact/m%40example.com"
    on_list = api("GET", member)
    assert on_list.status_code == 404
    assert on_list.content == b""
    assert api("POST", member).json() == {}
    assert api("POST", member).json() == {"not_modified": True}
    assert api("GET", member).status_code == 200
    assert api.sb.list_members(list_id) == {"m@example.com"}
    assert api("DELETE", member).json() == {}
    assert api("DELETE", member).json() == {"not_modified": True}
    assert api.sb.list_members(list_id) == set()
    assert api("GET", member).status_code == 404


def test_membership_with_unknown_list_or_contact_is_404(api: Api) -> None:
    list_id = api.sb.create_list("M")
    api.upsert(Email="m@example.com")
    assert api("POST", "/list/contactlist_nope/contact/m%40example.com").status_code == 404
    assert api("POST", f"/list/{list_id}/contact/nobody%40example.com").status_code == 404
    assert api("DELETE", f"/list/{list_id}/contact/nobody%40example.com").status_code == 404
    assert api("GET", "/list/contactlist_nope/contacts").status_code == 404


# -- pages -----------------------------------------------------------------------------------------
def _walk(api: Api, first: str) -> list[dict[str, Any]]:
    pages = [api("GET", first).json()]
    while "bookmark" in pages[-1]:
        assert len(pages) < 10, "pagination did not end"
        pages.append(api("GET", f"{first}/{pages[-1]['bookmark']}").json())
    return pages


@pytest.mark.parametrize(
    ("count", "sizes"), [(0, [0]), (1, [1]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])]
)
def test_list_and_all_contacts_pages(api: Api, count: int, sizes: list[int]) -> None:
    list_id = api.sb.create_list("Paged")
    emails = [f"p{i:03d}@example.com" for i in range(count)]
    api.sb.add_contacts([{"Email": e, "_autopilot_list": list_id} for e in emails])
    api.sb.add_contacts([{"Email": "not-on-list@example.com"}])
    for first, expected in (
        (f"/list/{list_id}/contacts", emails),
        ("/contacts", [*emails, "not-on-list@example.com"]),
    ):
        pages = _walk(api, first)
        expected_sizes = sizes if first != "/contacts" else _sizes(count + 1)
        assert [len(p["contacts"]) for p in pages] == expected_sizes
        assert all(p["total_contacts"] == len(expected) for p in pages)
        assert [c["Email"] for p in pages for c in p["contacts"]] == expected
        assert "bookmark" not in pages[-1]


def _sizes(count: int) -> list[int]:
    return [min(100, count - start) for start in range(0, count, 100)] or [0]


def test_unknown_bookmark_is_a_400(api: Api) -> None:
    list_id = api.sb.create_list("L")
    assert api("GET", "/contacts/not-a-bookmark").status_code == 400
    api.sb.add_contacts([{"Email": f"b{i}@example.com", "_autopilot_list": list_id} for i in range(150)])
    bookmark = api("GET", "/contacts").json()["bookmark"]
    assert api("GET", f"/contacts/{bookmark}").status_code == 200
    other = api.sb.create_list("Other")
    assert api("GET", f"/list/{other}/contacts/{bookmark}").status_code == 400


# -- smart segments, triggers, hooks -----------------------------------------------------------------
def test_smart_segments_and_their_pages(api: Api) -> None:
    api.upsert(Email="known@example.com", FirstName="K")
    emails = ["known@example.com"] + [f"s{i}@example.com" for i in range(120)]
    segment_id = api.sb.add_smart_segment("VIPs", emails)
    assert segment_id.startswith("contactlist_sseg")
    assert api("GET", "/smart_segments").json() == {"segments": [{"segment_id": segment_id, "title": "VIPs"}]}
    pages = _walk(api, f"/smart_segments/{segment_id}/contacts")
    assert [len(p["contacts"]) for p in pages] == [100, 21]
    assert pages[0]["contacts"][0]["FirstName"] == "K"
    assert api("GET", "/smart_segments/contactlist_sseg0/contacts").status_code == 404


def test_triggers_and_adding_to_a_journey(api: Api) -> None:
    trigger_id = api.sb.add_trigger("Welcome")
    assert trigger_id == "0001"
    assert api("GET", "/triggers").json() == {
        "triggers": [{"trigger_id": "0001", "journey": "Welcome", "trigger_type": "api"}]
    }
    api.upsert(Email="j@example.com")
    answer = api("POST", f"/trigger/{trigger_id}/contact/j%40example.com")
    assert answer.status_code == 200
    assert isinstance(answer.json(), dict)
    api("POST", f"/trigger/{trigger_id}/contact/j%40example.com")
    assert api.sb.journey_entries(trigger_id) == ["j@example.com", "j@example.com"]
    assert api("POST", "/trigger/9999/contact/j%40example.com").status_code == 404
    assert api("POST", f"/trigger/{trigger_id}/contact/x%40example.com").status_code == 404


def test_hooks_register_list_unregister(api: Api) -> None:
    answer = api("POST", "/hook", {"event": "contact_added", "target_url": "https://example.com/h"})
    assert answer.status_code == 200
    hook_id = answer.json()["hook_id"]
    assert hook_id.startswith("hook_")
    api("POST", "/hook", {"event": "contact_unsubscribed", "target_url": "https://example.com/u"})
    hooks = api("GET", "/hooks").json()["hooks"]
    assert [h["event"] for h in hooks] == ["contact_added", "contact_unsubscribed"]
    assert api("DELETE", f"/hook/{hook_id}").status_code == 200
    assert api("DELETE", f"/hook/{hook_id}").status_code == 404
    assert len(api.sb.hooks) == 1
    assert api("DELETE", "/hooks").status_code == 200
    assert api("GET", "/hooks").json() == {"hooks": []}


@pytest.mark.parametrize(
    "body",
    [
        {"event": "contact_exploded", "target_url": "https://example.com"},
        {"event": "contact_added", "target_url": "ftp://example.com"},
        {"event": "contact_added"},
    ],
)
def test_hook_registration_is_validated(api: Api, body: dict[str, Any]) -> None:
    assert api("POST", "/hook", body).status_code == 400
    assert api.sb.hooks == []


def test_old_hook_style_answers_201_with_id(api: Api) -> None:
    api.sb.configure(hook_style="old")
    answer = api("POST", "/hook", {"event": "contact_left_segment", "target_url": "http://localhost/x"})
    assert answer.status_code == 201
    assert set(answer.json()) == {"id"}
    assert answer.json()["id"] == api.sb.hooks[0]["hook_id"]


# -- seeding and inspection -------------------------------------------------------------------------
def test_add_contacts_validates_and_does_not_count_as_upserts(autopilot_sandbox: Sandbox) -> None:
    sb = autopilot_sandbox
    ids = sb.add_contacts([{"Email": "a@example.com"}, {"Email": "b@example.com"}])
    assert len(ids) == 2
    assert set(sb.contacts) == {"a@example.com", "b@example.com"}
    assert not sb.upsert_counts
    assert sb.requests == []
    with pytest.raises(ValueError, match="Email"):
        sb.add_contacts([{"Email": "c@example.com"}, {"Email": "nope"}])
    assert "c@example.com" not in sb.contacts


def test_reset_forgets_everything(api: Api) -> None:
    api.sb.create_list("L")
    api.upsert(Email="r@example.com")
    api.sb.inject("500")
    api.sb.reset()
    assert (api.sb.contacts, api.sb.lists, api.sb.requests, api.sb.pending_faults) == ({}, [], [], 0)
    assert api("GET", "/account").status_code == 200


def test_chunked_request_bodies_are_read(api: Api) -> None:
    def body() -> Any:
        yield b'{"contacts": [{"Email": '
        yield b'"chunked@example.com"}]}'

    answer = api.session.post(
        api.sb.url + "/contacts",
        data=body(),
        headers={"autopilotapikey": api.sb.api_key, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200
    assert "chunked@example.com" in api.sb.contacts
    assert api("GET", "/account").status_code == 200  # the keep-alive connection is still in step
