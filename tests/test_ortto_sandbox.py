"""The Ortto sandbox over real HTTP: every call an export needs, strict validation, and every switch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from autopilot_segments.sandbox import FaultPlan, OrttoSandbox


@pytest.fixture
def sb() -> Iterator[OrttoSandbox]:
    with OrttoSandbox() as sandbox:
        yield sandbox


def post(sb: OrttoSandbox, path: str, body: Any, *, method: str = "POST") -> requests.Response:
    return requests.request(method, sb.url + path, json=body, headers={"X-Api-Key": sb.api_key}, timeout=5)


def merge(sb: OrttoSandbox, *people: dict[str, Any], **options: Any) -> requests.Response:
    return post(sb, "/person/merge", {"people": list(people), **options})


def person(email: str, **fields: Any) -> dict[str, Any]:
    return {"fields": {"str::email": email, **fields}}


def test_the_key_travels_in_x_api_key_and_a_wrong_key_is_401(sb: OrttoSandbox) -> None:
    wrong = requests.post(sb.url + "/person/get", json={}, headers={"X-Api-Key": "nope"}, timeout=5)
    missing = requests.post(sb.url + "/person/get", json={}, timeout=5)
    assert (wrong.status_code, missing.status_code) == (401, 401)
    assert wrong.json()["code"] == 401
    assert "request_id" in wrong.json()


def test_merge_creates_then_merges_in_request_order(sb: OrttoSandbox) -> None:
    first = merge(sb, person("ann@example.com", **{"str::first": "Ann"}), person("bob@example.com"))
    assert first.status_code == 200
    created = first.json()["people"]
    assert [p["status"] for p in created] == ["created", "created"]
    again = merge(sb, person("bob@example.com"), person("ANN@example.com", **{"str::last": "Lee"}))
    assert [p["status"] for p in again.json()["people"]] == ["merged", "merged"]
    assert [p["person_id"] for p in again.json()["people"]] == [
        created[1]["person_id"],
        created[0]["person_id"],
    ]
    assert sb.people["ann@example.com"]["fields"]["str::first"] == "Ann"  # not sent: left alone
    assert sb.people["ann@example.com"]["fields"]["str::last"] == "Lee"


def test_a_new_person_is_subscribed_by_default_and_bol_p_is_kept_when_sent(sb: OrttoSandbox) -> None:
    merge(sb, person("ann@example.com"), person("bob@example.com", **{"bol::p": False}))
    assert sb.people["ann@example.com"]["fields"]["bol::p"] is True
    assert sb.people["bob@example.com"]["fields"]["bol::p"] is False
    merge(sb, person("bob@example.com", **{"str::first": "Bob"}))
    assert sb.people["bob@example.com"]["fields"]["bol::p"] is False  # a merge without it changes nothing


def test_merge_strategies_append_overwrite_ignore(sb: OrttoSandbox) -> None:
    merge(sb, person("ann@example.com", **{"str::first": "Ann"}))
    merge(sb, person("ann@example.com", **{"str::first": "Anne", "str::last": "Lee"}), merge_strategy=1)
    assert sb.people["ann@example.com"]["fields"]["str::first"] == "Ann"
    assert sb.people["ann@example.com"]["fields"]["str::last"] == "Lee"
    merge(sb, person("ann@example.com", **{"str::first": None}), merge_strategy=2)
    assert "str::first" not in sb.people["ann@example.com"]["fields"]  # null clears under overwrite
    ignored = merge(
        sb, person("ann@example.com", **{"str::first": "X"}), person("new@example.com"), merge_strategy=3
    )
    assert [p["status"] for p in ignored.json()["people"]] == ["ignored", "created"]
    assert "str::first" not in sb.people["ann@example.com"]["fields"]


@pytest.mark.parametrize("status", ["ignored", "skipped", "omitted"])
def test_skip_non_existing_answers_as_the_switch_says(sb: OrttoSandbox, status: str) -> None:
    sb.configure(skipped_status=status)
    merge(sb, person("ann@example.com"))
    answer = merge(sb, person("ann@example.com"), person("new@example.com"), skip_non_existing=True).json()
    expected = ["merged"] if status == "omitted" else ["merged", status]
    assert [p["status"] for p in answer["people"]] == expected
    assert "new@example.com" not in sb.people


def test_one_invalid_person_fails_only_itself_or_the_whole_call(sb: OrttoSandbox) -> None:
    answer = merge(sb, person("ann@example.com"), person("not-an-email"))
    assert answer.status_code == 200
    assert answer.json()["people"][1] == {
        "status": "invalid",
        "error": "str::email: not a valid email address",
    }
    sb.configure(invalid_person="whole_call")
    refused = merge(sb, person("bob@example.com"), person("not-an-email"))
    assert refused.status_code == 400
    assert refused.json()["details"] == [
        {"status": "invalid", "error": "str::email: not a valid email address"}
    ]
    assert "bob@example.com" not in sb.people


def test_no_valid_person_is_a_400_with_details(sb: OrttoSandbox) -> None:
    sb.suppress("gone@example.com")
    answer = merge(sb, person("gone@example.com"), person("x"))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("No valid contacts provided")
    assert [d["status"] for d in answer.json()["details"]] == ["suppressed", "invalid"]


def test_a_suppressed_email_is_answered_suppressed_and_not_created(sb: OrttoSandbox) -> None:
    sb.suppress("Gone@Example.com")
    answer = merge(sb, person("ann@example.com"), person("gone@example.com")).json()
    assert answer["people"][1] == {"status": "suppressed", "error": "Email is suppressed"}
    assert set(sb.people) == {"ann@example.com"}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"str::first": 5}, "str::first: expected a string"),
        ({"str::first": "x" * 256}, "str::first: longer than 255 characters"),
        ({"str:cm:nope": "x"}, "field str:cm:nope does not exist"),
        ({"bol::gdpr": "yes"}, "bol::gdpr: expected true or false"),
        ({"geo::city": "Paris"}, 'geo::city: expected {"name": "..."}'),
        ({"dtz::b": {"year": 2023, "month": 2, "day": 30}}, "dtz::b: not a calendar date"),
        ({"phn::phone": "0412"}, "phn::phone: expected"),
    ],
)
def test_values_are_checked_by_field_type(sb: OrttoSandbox, fields: dict[str, Any], problem: str) -> None:
    answer = merge(sb, person("ann@example.com", **fields), person("ok@example.com")).json()
    assert answer["people"][0]["status"] == "invalid"
    assert answer["people"][0]["error"].startswith(problem)


def test_typed_custom_fields_and_built_ins_are_accepted(sb: OrttoSandbox) -> None:
    points = sb.add_custom_field("Loyalty Points", "integer")
    spend = sb.add_custom_field("Spend", "decimal")
    assert (points, spend) == ("int:cm:loyalty-points", "dec:cm:spend")
    fields = {
        points: 1200,
        spend: 12_500,
        "phn::phone": {"c": "61", "n": "412345678"},
        "geo::city": {"name": "Sydney"},
        "dtz::b": {"year": 1990, "month": 6, "day": 15, "timezone": "Australia/Sydney"},
    }
    assert merge(sb, person("ann@example.com", **fields)).json()["people"][0]["status"] == "created"
    assert sb.people["ann@example.com"]["fields"][spend] == 12_500
    bad = merge(sb, person("bob@example.com", **{spend: 12.5}), person("ok@example.com")).json()
    assert bad["people"][0]["error"].startswith("dec:cm:spend: expected an integer (decimals are sent as")


@pytest.mark.parametrize(
    "options",
    [
        {"merge_by": []},
        {"merge_by": ["str::email", "str::ei", "str::first", "str::last"]},
        {"merge_by": ["str::person_id", "str::email"]},
        {"merge_strategy": 4},
        {"find_strategy": 3},
        {"async": "yes"},
        {"unknown": 1},
    ],
)
def test_bad_merge_options_refuse_the_call(sb: OrttoSandbox, options: dict[str, Any]) -> None:
    answer = merge(sb, person("ann@example.com"), **options)
    assert answer.status_code == 400
    assert sb.people == {}


def test_people_count_and_body_size_are_capped(sb: OrttoSandbox) -> None:
    assert post(sb, "/person/merge", {"people": []}).status_code == 400
    hundred_and_one = [person(f"p{i}@example.com") for i in range(101)]
    assert merge(sb, *hundred_and_one).status_code == 400
    assert merge(sb, *hundred_and_one[:100]).status_code == 200
    huge = [person(f"q{i}@example.com", **{"str::first": "x" * 255}) for i in range(100)]
    huge_body = {"people": huge, "merge_by": ["str::email"], "pad": "x" * (2 * 1024 * 1024)}
    assert post(sb, "/person/merge", huge_body).status_code == 413


def test_merge_by_another_field_and_find_strategies(sb: OrttoSandbox) -> None:
    merge(sb, {"fields": {"str::email": "ann@example.com", "str::ei": "A1"}})
    by_ei = merge(sb, {"fields": {"str::ei": "A1", "str::first": "Ann"}}, merge_by=["str::ei"])
    assert by_ei.json()["people"][0]["status"] == "merged"
    both = {"fields": {"str::email": "other@example.com", "str::ei": "A1"}}
    any_match = merge(sb, both, merge_by=["str::email", "str::ei"], find_strategy=0).json()["people"][0]
    assert any_match["status"] == "merged"  # found by str::ei
    all_match = merge(
        sb,
        {"fields": {"str::email": "third@example.com", "str::ei": "A1"}},
        merge_by=["str::email", "str::ei"],
        find_strategy=2,
    ).json()["people"][0]
    assert all_match["status"] == "created"


@pytest.mark.parametrize(("mode", "expected"), [("add", ["A", "B"]), ("replace", ["B"])])
def test_tags_on_merge_add_or_replace_and_unset_tags_removes(
    sb: OrttoSandbox, mode: str, expected: list[str]
) -> None:
    sb.configure(merge_tags=mode)
    merge(sb, {**person("ann@example.com"), "tags": ["A"]})
    merge(sb, {**person("ann@example.com"), "tags": ["B"]})
    assert sb.people["ann@example.com"]["tags"] == expected
    merge(sb, {**person("ann@example.com"), "unset_tags": ["B"]})
    assert "B" not in sb.people["ann@example.com"]["tags"]
    assert sb.tagged("B") == set()


@pytest.mark.parametrize(
    ("mode", "status", "body"), [("accepted", 202, {"status": "accepted"}), ("empty", 200, None)]
)
def test_the_async_answer_is_a_switch(sb: OrttoSandbox, mode: str, status: int, body: Any) -> None:
    sb.configure(async_answer=mode)
    answer = merge(sb, person("ann@example.com"), **{"async": True})
    assert answer.status_code == status
    assert (answer.json() if answer.content else None) == body
    assert "ann@example.com" in sb.people
    sb.configure(async_answer="people")
    assert merge(sb, person("bob@example.com"), **{"async": True}).json()["people"][0]["status"] == "created"


def test_person_get_pages_by_cursor_and_offset_with_filters(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": f"p{i}@example.com"} for i in range(7)], tags=["VIP"])
    sb.add_people([{"str::email": "other@example.com"}])
    seen: list[str] = []
    body: dict[str, Any] = {"limit": 3, "filter": {"$has_tag": {"value": "VIP"}}, "fields": ["str::email"]}
    while True:
        page = post(sb, "/person/get", body).json()
        seen += [c["fields"]["str::email"] for c in page["contacts"]]
        if not page["has_more"]:
            assert "cursor_id" not in page
            break
        body = {**body, "cursor_id": page["cursor_id"]}
    assert seen == [f"p{i}@example.com" for i in range(7)]
    by_offset = post(sb, "/person/get", {"limit": 2, "offset": 6}).json()
    assert [c["fields"]["str::email"] for c in by_offset["contacts"]] == [
        "p6@example.com",
        "other@example.com",
    ]
    one = post(
        sb, "/person/get", {"filter": {"$str::is": {"field_id": "str::email", "value": "P3@example.com"}}}
    )
    assert [c["fields"]["str::email"] for c in one.json()["contacts"]] == ["p3@example.com"]
    assert post(sb, "/person/get", {"cursor_id": "garbage"}).status_code == 400
    assert post(sb, "/person/get", {"limit": 501}).status_code == 400
    assert (
        post(sb, "/person/get", {"filter": {"$str::is": {"field_id": "nope", "value": 1}}}).status_code == 400
    )


def test_custom_fields_get_create_and_refuse_duplicates(sb: OrttoSandbox) -> None:
    created = post(sb, "/person/custom-field/create", {"type": "integer", "name": "Loyalty Points"})
    assert created.status_code == 200
    assert created.json()["field_id"] == "int:cm:loyalty-points"
    listed = post(sb, "/person/custom-field/get", {}).json()["fields"]
    assert [(f["field"]["id"], f["field"]["name"]) for f in listed] == [
        ("int:cm:loyalty-points", "Loyalty Points")
    ]
    assert (
        post(sb, "/person/custom-field/create", {"type": "integer", "name": "loyalty points"}).status_code
        == 409
    )
    assert post(sb, "/person/custom-field/create", {"type": "money", "name": "X"}).status_code == 400


def test_audiences_list_search_and_subscribe(sb: OrttoSandbox) -> None:
    vip = sb.add_audience("VIP customers", tag="VIP")
    sb.add_audience("Everyone else")
    merge(sb, {**person("ann@example.com"), "tags": ["VIP"]}, person("bob@example.com"))
    listed = post(sb, "/audiences/get", {"search_term": "vip", "with_filter": True}).json()
    assert listed == [
        {"id": vip, "name": "VIP customers", "status": "on", "filter": {"$has_tag": {"value": "VIP"}}}
    ]
    answer = post(
        sb,
        "/audience/subscribe",
        {
            "audience_id": vip,
            "people": [
                {"email": "ann@example.com", "subscribed": False},
                {"email": "bob@example.com", "subscribed": True},
            ],
        },
        method="PUT",
    ).json()
    assert [p["status"] for p in answer["people"]] == ["unsubscribed", "not-a-member"]
    assert sb.audience_members(vip) == {"ann@example.com": False}
    members = post(sb, "/person/get", {"audience_id": vip}).json()["contacts"]
    assert [c["fields"]["str::email"] for c in members] == ["ann@example.com"]


def test_rate_limit_answers_ortto_s_429_body() -> None:
    with OrttoSandbox(rate_limit=1, try_in_seconds=10) as sb:
        statuses = [post(sb, "/person/custom-field/get", {}).status_code for _ in range(3)]
        limited = post(sb, "/person/custom-field/get", {})
    assert statuses[0] == 200
    assert 429 in statuses
    assert limited.json() == {"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": 10}}


def test_faults_are_injected_and_recorded(sb: OrttoSandbox) -> None:
    sb.inject("503", path_prefix="/person/merge")
    assert merge(sb, person("ann@example.com")).status_code == 503
    sb.inject("drop_after", path_prefix="/person/merge")
    with pytest.raises(requests.ConnectionError):
        merge(sb, person("bob@example.com"))
    assert "bob@example.com" in sb.people  # applied, then the answer was lost
    log = sb.requests
    assert [(r.path, r.status, r.fault, r.applied) for r in log] == [
        ("/person/merge", 503, "503", False),
        ("/person/merge", None, "drop_after", True),
    ]


def test_seeded_random_faults_hit_a_share_of_requests() -> None:
    with OrttoSandbox(faults=FaultPlan(rate=0.5, kinds=("500",), seed=3)) as sb:
        statuses = [post(sb, "/person/custom-field/get", {}).status_code for _ in range(40)]
    assert 10 <= statuses.count(500) <= 30
    assert statuses.count(200) == 40 - statuses.count(500)


def test_fifteen_bad_requests_ban_the_caller_for_fifteen_seconds() -> None:
    now = [0.0]
    with OrttoSandbox(bad_request_ban=True, clock=lambda: now[0]) as sb:
        for _ in range(15):
            assert post(sb, "/person/merge", {"people": []}).status_code == 400
        banned = post(sb, "/person/custom-field/get", {})
        assert banned.status_code == 429
        assert banned.json()["error"]["try-in-seconds"] == 15
        now[0] = 15.5
        assert post(sb, "/person/custom-field/get", {}).status_code == 200


def test_unknown_paths_and_methods(sb: OrttoSandbox) -> None:
    assert post(sb, "/person/nothing", {}).status_code == 404
    assert post(sb, "/person/merge", {}, method="PUT").status_code == 405
    not_json = requests.post(sb.url + "/person/get", data=b"{", headers={"X-Api-Key": sb.api_key}, timeout=5)
    assert not_json.status_code == 400


def test_switches_are_validated_and_seeding_is_checked() -> None:
    with pytest.raises(ValueError, match="invalid_person"):
        OrttoSandbox(invalid_person="sometimes")  # type: ignore[arg-type]
    sb = OrttoSandbox()
    with pytest.raises(TypeError, match="unknown Ortto sandbox switch"):
        sb.configure(bulk_list="ignored")
    with pytest.raises(ValueError, match="does not exist"):
        sb.add_people([{"str:cm:nope": 1}])


def test_the_ortto_sandbox_fixture_is_registered(ortto_sandbox: OrttoSandbox) -> None:
    assert ortto_sandbox.running
    assert post(ortto_sandbox, "/person/custom-field/get", {}).json() == {"fields": []}


def test_the_command_line_serves_ortto_with_its_switches(tmp_path: Path) -> None:
    key_file = tmp_path / "ortto.key"
    process = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments.sandbox", "--destination", "ortto", "--port", "0",
         "--api-key-file", str(key_file), "--merge-tags", "replace", "--skipped-status", "omitted",
         "--invalid-person", "whole_call", "--rate", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Ortto sandbox listening at http://127.0.0.1:")
        url = first.rsplit(" ", 1)[-1].strip()
        key = key_file.read_text().strip()
        headers = {"X-Api-Key": key}
        for tags in (["A"], ["B"]):
            body = {"people": [{"fields": {"str::email": "ann@example.com"}, "tags": tags}]}
            assert (
                requests.post(url + "/person/merge", json=body, headers=headers, timeout=5).status_code == 200
            )
        listed = requests.post(url + "/person/get", json={"fields": ["tags"]}, headers=headers, timeout=5)
        assert listed.json()["contacts"][0]["fields"]["tags"] == ["B"]  # --merge-tags replace
        skipped = {"people": [{"fields": {"str::email": "new@example.com"}}], "skip_non_existing": True}
        answer = requests.post(url + "/person/merge", json=skipped, headers=headers, timeout=5)
        assert answer.json() == {"people": []}  # --skipped-status omitted
        invalid = {"people": [{"fields": {"str::email": "x@example.com"}}, {"fields": {"str::email": "bad"}}]}
        assert (
            requests.post(url + "/person/merge", json=invalid, headers=headers, timeout=5).status_code == 400
        )
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped" in out
