"""`OrttoClient` over real HTTP against the Ortto sandbox: every call, paging, replays, errors, settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from _fakes import FakeTime

from autopilot_segments import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    RateLimitError,
)
from autopilot_segments._destinations.ortto.client import REGIONS, OrttoClient
from autopilot_segments.sandbox import OrttoSandbox

KEY = "pk-0123456789abcdef0123456789abcdef"


@pytest.fixture
def sb() -> Iterator[OrttoSandbox]:
    with OrttoSandbox(api_key=KEY) as sandbox:
        yield sandbox


def client_for(sb: OrttoSandbox, **options: object) -> OrttoClient:
    time = FakeTime()  # nothing really waits: not the limiter's pauses, not the backoff
    settings: dict[str, object] = {
        "requests_per_second": 1000.0,
        "clock": time.clock,
        "sleep": time.sleep,
        **options,
    }
    return OrttoClient(sb.api_key, base_url=sb.url, **settings)  # type: ignore[arg-type]


def person(email: str, **fields: object) -> dict[str, object]:
    return {"fields": {"str::email": email, **fields}}


# -- settings ---------------------------------------------------------------------------------------


def test_regions_pick_the_host_and_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORTTO_BASE_URL", raising=False)
    monkeypatch.delenv("ORTTO_REGION", raising=False)
    assert OrttoClient(KEY).base_url == REGIONS["default"] == "https://api.ap3api.com/v1"
    assert OrttoClient(KEY, region="eu").base_url == "https://api.eu.ap3api.com/v1"
    monkeypatch.setenv("ORTTO_REGION", "au")
    assert OrttoClient(KEY).base_url == "https://api.au.ap3api.com/v1"
    monkeypatch.setenv("ORTTO_BASE_URL", "http://127.0.0.1:9/v1")
    assert OrttoClient(KEY).base_url == "http://127.0.0.1:9/v1"  # environment > region default
    assert OrttoClient(KEY, base_url="https://example.test/v1").base_url == "https://example.test/v1"
    monkeypatch.setenv("ORTTO_API_KEY", KEY)
    assert OrttoClient().base_url == "http://127.0.0.1:9/v1"


def test_bad_settings_fail_at_construction_with_every_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORTTO_API_KEY", raising=False)
    monkeypatch.delenv("ORTTO_REGION", raising=False)
    with pytest.raises(ConfigurationError) as caught:
        OrttoClient(region="mars", base_url="http://api.example.com/v1", requests_per_second=0)  # type: ignore[arg-type]
    problems = caught.value.problems
    assert any("no Ortto API key" in p and "ORTTO_API_KEY" in p for p in problems)
    assert any("region must be one of default, au, eu" in p for p in problems)
    assert any("region or base_url, not both" in p for p in problems)
    assert any("plain http" in p for p in problems)
    assert any("requests_per_second" in p for p in problems)
    with pytest.raises(ConfigurationError, match="does not look like an Ortto private key"):
        OrttoClient("short key")


def test_the_key_is_never_shown(sb: OrttoSandbox) -> None:
    client = client_for(sb)
    assert KEY not in repr(client)
    assert KEY not in str(client)
    assert (
        client.account_fingerprint != OrttoClient(KEY.upper()[:-1] + "x", base_url=sb.url).account_fingerprint
    )
    with pytest.raises(TypeError, match="cannot be pickled"):
        client.__reduce__()


# -- people -------------------------------------------------------------------------------------------


def test_merge_people_answers_per_person_in_order(sb: OrttoSandbox) -> None:
    sb.suppress("gone@example.com")
    with client_for(sb) as client:
        first = client.merge_people([person("ann@example.com"), person("gone@example.com"), person("bad")])
        again = client.merge_people([person("ann@example.com", **{"str::first": "Ann"})])
    assert [p.status for p in first.people] == ["created", "suppressed", "invalid"]
    assert [p.stored for p in first.people] == [True, False, False]
    assert first.people[2].error == "str::email: not a valid email address"
    assert again.people[0].status == "merged"
    assert again.people[0].person_id == first.people[0].person_id
    body = sb.requests[0].body
    assert body["merge_by"] == ["str::email"]
    assert body["merge_strategy"] == 2
    assert "bol::p" not in body["people"][0]["fields"]


def test_merge_refuses_more_than_a_hundred_people_before_sending(sb: OrttoSandbox) -> None:
    with client_for(sb) as client, pytest.raises(ConfigurationError, match="1 to 100 people, got 101"):
        client.merge_people([person(f"p{i}@example.com") for i in range(101)])
    assert sb.requests == []


def test_a_merge_whose_answer_was_lost_is_replayed_and_stores_the_person_once(sb: OrttoSandbox) -> None:
    sb.inject("drop_after", path_prefix="/person/merge")
    with client_for(sb) as client:
        result = client.merge_people([person("ann@example.com")])
    assert result.people[0].status == "merged"  # the replay found the person the lost call stored
    assert sb.merge_counts == {"ann@example.com": 2}
    assert len(sb.people) == 1


def test_no_valid_person_is_a_bad_request_carrying_ortto_s_message(sb: OrttoSandbox) -> None:
    with client_for(sb) as client, pytest.raises(BadRequestError) as caught:
        client.merge_people([person("bad")])
    assert caught.value.message.startswith("No valid contacts provided")
    assert caught.value.status == 400


def test_an_async_merge_is_accepted_without_per_person_results(sb: OrttoSandbox) -> None:
    with client_for(sb) as client:
        queued = client.merge_people([person("ann@example.com")], asynchronous=True)
        sb.configure(async_answer="empty")
        empty = client.merge_people([person("bob@example.com")], asynchronous=True)
    assert queued.accepted
    assert queued.people == ()
    assert queued.stored == 0
    assert empty.accepted


def test_people_are_paged_by_cursor_lazily(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": f"p{i:04}@example.com"} for i in range(1200)], tags=["VIP"])
    sb.add_people([{"str::email": "other@example.com"}])
    with client_for(sb) as client:
        people = client.iter_people(fields=["str::email", "tags"], filter={"$has_tag": {"value": "VIP"}})
        first = next(people)
        assert len(sb.requests) == 1  # one page fetched so far
        rest = list(people)
    emails = [first.email, *(p.email for p in rest)]
    assert emails == [f"p{i:04}@example.com" for i in range(1200)]
    assert first.tags == ("VIP",)
    assert [r.body.get("cursor_id") is not None for r in sb.requests] == [False, True, True]


def test_find_person_and_untag_people(sb: OrttoSandbox) -> None:
    sb.add_people([{"str::email": "ann@example.com"}, {"str::email": "bob@example.com"}], tags=["VIP", "X"])
    with client_for(sb) as client:
        found = client.find_person("ANN@example.com", fields=["str::email", "tags"])
        missing = client.find_person("nobody@example.com")
        result = client.untag_people(["ann@example.com", "gone@example.com"], "VIP")
    assert found is not None
    assert found.email == "ann@example.com"
    assert missing is None
    assert [p.status for p in result.people] == ["merged", "ignored"]  # nobody is created
    assert sb.tagged("VIP") == {"bob@example.com"}
    assert "gone@example.com" not in sb.people


# -- custom fields -------------------------------------------------------------------------------------


def test_custom_fields_are_read_and_created_with_ids_read_back(sb: OrttoSandbox) -> None:
    with client_for(sb) as client:
        created = client.create_custom_field("Loyalty Points", "integer")
        fields = client.custom_fields()
        with pytest.raises(ConflictError):
            client.create_custom_field("loyalty points", "integer")
    assert created.field_id == "int:cm:loyalty-points"
    assert created.kind == "int"
    assert [(f.field_id, f.name) for f in fields] == [("int:cm:loyalty-points", "Loyalty Points")]


@pytest.mark.parametrize("fault", ["drop_after", "503", "429"])
def test_creating_a_field_survives_a_transient_answer_without_a_twin(sb: OrttoSandbox, fault: str) -> None:
    sb.inject(fault, times=1, path_prefix="/person/custom-field/create")
    with client_for(sb, max_retries=1) as client:
        created = client.create_custom_field("Tier", "text")
    assert created.field_id == "str:cm:tier"
    assert sb.custom_fields == {"str:cm:tier": "Tier"}


def test_creating_a_field_gives_up_after_the_retry_budget(sb: OrttoSandbox) -> None:
    sb.inject("drop_before", times=10, path_prefix="/person/custom-field/create")
    with client_for(sb, max_retries=1) as client, pytest.raises(APIConnectionError):
        client.create_custom_field("Tier", "text")
    assert sb.custom_fields == {}


# -- audiences -------------------------------------------------------------------------------------------


def test_audiences_are_read_every_page_and_members_subscribed(sb: OrttoSandbox) -> None:
    ids = [sb.add_audience(f"Audience {i:02}") for i in range(45)]
    vip = sb.add_audience("VIP customers", tag="VIP")
    sb.add_people([{"str::email": "ann@example.com"}], tags=["VIP"])
    with client_for(sb) as client:
        every = client.audiences()
        searched = client.audiences("vip")
        answers = client.subscribe_to_audience(vip, [("ann@example.com", False)])
    assert [a.audience_id for a in every] == [*ids, vip]
    assert [(a.name, a.filter) for a in searched] == [("VIP customers", {"$has_tag": {"value": "VIP"}})]
    assert answers == [{"email": "ann@example.com", "status": "unsubscribed"}]
    assert sb.audience_members(vip) == {"ann@example.com": False}


# -- errors and pacing -------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error_without_the_key(sb: OrttoSandbox) -> None:
    wrong = "pk-ffffffffffffffffffffffffffffffff"
    with OrttoClient(wrong, base_url=sb.url) as client, pytest.raises(AuthenticationError) as caught:
        client.custom_fields()
    assert caught.value.status == 401
    assert "wrong region" in caught.value.message
    assert wrong not in repr(caught.value)
    assert wrong not in str(caught.value)


def test_ortto_s_429_body_is_read_and_slows_the_whole_client(sb: OrttoSandbox) -> None:
    sb.configure(try_in_seconds=7)
    sb.inject("429", times=2, path_prefix="/person/get")
    time = FakeTime()
    with OrttoClient(KEY, base_url=sb.url, max_retries=1, clock=time.clock, sleep=time.sleep) as client:
        with pytest.raises(RateLimitError) as caught:
            list(client.iter_people())
        assert caught.value.message == "rate limit"
        assert caught.value.error == "rate-limit"
        assert client.stats.rate_limited == 2
        assert client.limiter.effective_rate == 5.0  # halved once
        waited_before = sum(time.sleeps)
        client.custom_fields()  # the next call, to any endpoint, waits out try-in-seconds first
    assert sum(time.sleeps) - waited_before >= 7 - 0.5


def test_debug_logs_carry_no_email_and_no_key(sb: OrttoSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with client_for(sb) as client:
        client.merge_people([person("ann@example.com")])
        client.find_person("ann@example.com")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "POST /v1/person/merge -> 200" in text
    assert KEY not in text
    assert "ann@example.com" not in text
