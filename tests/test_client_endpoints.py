"""Every endpoint of AutopilotClient against the local sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest

from autopilot_segments import (
    AutopilotClient,
    BulkUpsertResult,
    ConfigurationError,
    ConflictError,
    Contact,
    ContactList,
    CustomFieldValue,
    NotFoundError,
)
from autopilot_segments.sandbox import Sandbox


def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def client(autopilot_sandbox: Sandbox) -> Iterator[AutopilotClient]:
    with AutopilotClient(
        autopilot_sandbox.api_key, base_url=autopilot_sandbox.url, requests_per_second=1000, sleep=_no_sleep
    ) as c:
        yield c


def _emails(n: int) -> list[str]:
    return [f"user{i:04d}@example.com" for i in range(n)]


def test_account(client: AutopilotClient) -> None:
    account = client.account()
    assert isinstance(account, dict)


def test_upsert_contact_with_a_model_and_read_it_back(
    client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    contact = Contact(
        email="ada@example.com",
        first_name="Ada",
        linked_in="ada-l",
        custom_fields=[CustomFieldValue(name="Loyalty Tier", field_type="string", value="gold")],
    )
    contact_id = client.upsert_contact(contact)
    assert contact_id.startswith("person_")
    assert autopilot_sandbox.contacts["ada@example.com"]["FirstName"] == "Ada"
    fetched = client.get_contact("ada@example.com")
    assert fetched.contact_id == contact_id
    assert fetched.first_name == "Ada"
    assert fetched.linked_in == "ada-l"
    assert [(f.name, f.value) for f in fetched.custom_fields] == [("Loyalty Tier", "gold")]
    assert client.get_contact(contact_id).email == "ada@example.com"
    assert client.get_contact(fetched).email == "ada@example.com"  # a Contact refers to itself by id


def test_upsert_contact_with_a_plain_mapping_sends_it_as_is(
    client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    client.upsert_contact({"Email": "bob@example.com", "LastName": "B", "custom": {"integer--Points": 3}})
    sent = autopilot_sandbox.requests[-1].body
    assert sent == {
        "contact": {"Email": "bob@example.com", "LastName": "B", "custom": {"integer--Points": 3}}
    }


def test_upsert_contacts_stores_all_and_maps_emails(
    client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    emails = _emails(100)
    result = client.upsert_contacts(
        [{"Email": e} for e in emails[:50]] + [Contact(email=e) for e in emails[50:]]
    )
    assert isinstance(result, BulkUpsertResult)
    assert len(result.contact_ids) == 100
    assert set(result.email_contact_map) == set(emails)
    assert result.missing == ()
    assert set(autopilot_sandbox.contacts) == set(emails)


@pytest.mark.parametrize("count", [0, 101])
def test_upsert_contacts_refuses_bad_batch_sizes_before_any_request(
    client: AutopilotClient, autopilot_sandbox: Sandbox, count: int
) -> None:
    with pytest.raises(ConfigurationError, match="1 to 100") as info:
        client.upsert_contacts([{"Email": e} for e in _emails(count)])
    assert isinstance(info.value, ValueError)
    assert autopilot_sandbox.requests == []
    assert client.stats.requests == 0


@pytest.mark.parametrize("without", [{}, {"Email": ""}, {"Email": None}, {"Email": 7}])
def test_upsert_contacts_refuses_a_contact_without_an_email_before_any_request(
    client: AutopilotClient, autopilot_sandbox: Sandbox, without: dict[str, object]
) -> None:
    # The answer confirms contacts by email only: one without an email could vanish unnoticed.
    batch = [{"Email": "a@example.com"}, {"FirstName": "Nomail", **without}, Contact(first_name="X")]
    with pytest.raises(ConfigurationError, match="position 2, 3"):
        client.upsert_contacts(batch)
    assert autopilot_sandbox.requests == []


def test_bulk_upsert_with_silently_dropped_contacts_reports_them_missing() -> None:
    with (
        Sandbox(bulk_invalid="drop") as sb,
        AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client,
    ):
        result = client.upsert_contacts(
            [{"Email": "good@example.com"}, {"Email": "not-an-email"}, {"Email": "Fine@Example.com"}]
        )
        assert result.missing == ("not-an-email",)
        assert len(result.contact_ids) == 2


def test_delete_contact_accepts_200_and_204() -> None:
    for status in (200, 204):
        with (
            Sandbox(delete_status=status) as sb,
            AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client,
        ):
            sb.add_contacts([{"Email": "gone@example.com"}])
            client.delete_contact("gone@example.com")
            assert sb.requests[-1].status == status
            assert sb.contacts == {}
            with pytest.raises(NotFoundError):
                client.get_contact("gone@example.com")


def test_unsubscribe(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.add_contacts([{"Email": "quit@example.com"}])
    client.unsubscribe("quit@example.com")
    assert client.get_contact("quit@example.com").unsubscribed is True


def test_a_contact_read_back_and_upserted_never_resubscribes_without_opt_in(
    client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    client.upsert_contact({"Email": "round@example.com", "FirstName": "Ada"})
    read = client.get_contact("round@example.com")
    assert read.unsubscribed is False
    client.unsubscribe("round@example.com")  # they opt out after we read them
    client.upsert_contact(attrs.evolve(read, first_name="Ada B."))
    assert client.get_contact("round@example.com").unsubscribed is True
    client.upsert_contacts([attrs.evolve(read, last_name="Byron")])
    after = client.get_contact("round@example.com")
    assert after.unsubscribed is True
    assert after.last_name == "Byron"
    client.upsert_contact(read, allow_resubscribe=True)
    assert client.get_contact("round@example.com").unsubscribed is False


def test_custom_fields(client: AutopilotClient) -> None:
    client.upsert_contact({"Email": "a@example.com", "custom": {"string--Loyalty--Tier": "gold"}})
    fields = client.custom_fields()
    assert [(f.name, f.field_type) for f in fields] == [("Loyalty Tier", "string")]


def test_lists_and_create_list(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    assert client.lists() == []
    list_id = client.create_list("VIP customers")
    assert client.lists() == [ContactList(list_id=list_id, title="VIP customers")]
    assert autopilot_sandbox.lists == [(list_id, "VIP customers")]
    with pytest.raises(ConflictError) as info:
        client.create_list("VIP customers")
    assert info.value.status == 409


def test_list_membership(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    list_id = autopilot_sandbox.create_list("Members")
    autopilot_sandbox.add_contacts([{"Email": "m+1@example.com"}])
    assert client.is_on_list(list_id, "m+1@example.com") is False
    assert client.add_to_list(list_id, "m+1@example.com") is True
    assert client.add_to_list(list_id, "m+1@example.com") is False  # not_modified
    assert client.is_on_list(list_id, "m+1@example.com") is True
    assert autopilot_sandbox.list_members(list_id) == {"m+1@example.com"}
    # the email is one URL-encoded path segment ("+" and "@" encoded)
    assert any("m+1@example.com" in r.path for r in autopilot_sandbox.requests)
    assert client.remove_from_list(list_id, "m+1@example.com") is True
    assert client.remove_from_list(list_id, "m+1@example.com") is False
    assert autopilot_sandbox.list_members(list_id) == set()


def test_a_list_that_does_not_exist_is_not_found(client: AutopilotClient) -> None:
    with pytest.raises(NotFoundError):
        list(client.iter_list_contacts("contactlist_nope"))


@pytest.mark.parametrize("count", [0, 1, 100, 101, 250])
def test_iter_list_contacts_follows_bookmarks_exactly(
    client: AutopilotClient, autopilot_sandbox: Sandbox, count: int
) -> None:
    list_id = autopilot_sandbox.create_list("Paged")
    emails = _emails(count)
    autopilot_sandbox.add_contacts([{"Email": e, "_autopilot_list": list_id} for e in emails])
    before = len(autopilot_sandbox.requests)
    got = [c.email for c in client.iter_list_contacts(list_id)]
    assert sorted(got) == emails
    # the sandbox leaves the bookmark off the last page (also a full one): one request per page
    assert len(autopilot_sandbox.requests) - before == max(1, -(-count // 100))


@pytest.mark.parametrize("count", [0, 1, 100, 101, 250])
def test_iter_contacts_pages(client: AutopilotClient, autopilot_sandbox: Sandbox, count: int) -> None:
    autopilot_sandbox.add_contacts([{"Email": e} for e in _emails(count)])
    assert sorted(c.email or "" for c in client.iter_contacts()) == _emails(count)


def test_iterators_are_lazy(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.add_contacts([{"Email": e} for e in _emails(250)])
    before = len(autopilot_sandbox.requests)
    pages = client.iter_contacts()
    assert len(autopilot_sandbox.requests) == before  # nothing fetched until the first next()
    first = [next(pages) for _ in range(100)]
    assert len(first) == 100
    assert len(autopilot_sandbox.requests) == before + 1
    next(pages)
    assert len(autopilot_sandbox.requests) == before + 2


def test_smart_segments_and_their_contacts(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    emails = _emails(120)
    segment_id = autopilot_sandbox.add_smart_segment("Big spenders", emails)
    segments = client.smart_segments()
    assert [(s.segment_id, s.title) for s in segments] == [(segment_id, "Big spenders")]
    assert sorted(c.email or "" for c in client.iter_segment_contacts(segment_id)) == emails


def test_triggers_and_add_to_journey(client: AutopilotClient, autopilot_sandbox: Sandbox) -> None:
    trigger_id = autopilot_sandbox.add_trigger("Welcome")
    autopilot_sandbox.add_contacts([{"Email": "new@example.com"}])
    triggers = client.triggers()
    assert [(t.trigger_id, t.journey) for t in triggers] == [(trigger_id, "Welcome")]
    client.add_to_journey(trigger_id, "new@example.com")
    assert autopilot_sandbox.journey_entries(trigger_id) == ["new@example.com"]


@pytest.mark.parametrize("style", ["new", "old"])
def test_hooks_register_list_unregister(style: str) -> None:
    with (
        Sandbox(hook_style=style) as sb,  # type: ignore[arg-type]
        AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client,
    ):
        first = client.register_hook("contact_added", "https://example.com/hook")
        second = client.register_hook("contact_unsubscribed", "https://example.com/bye")
        hooks = client.hooks()
        assert {(h.hook_id, h.event, h.target_url) for h in hooks} == {
            (first, "contact_added", "https://example.com/hook"),
            (second, "contact_unsubscribed", "https://example.com/bye"),
        }
        client.unregister_hook(first)
        assert [h.hook_id for h in client.hooks()] == [second]
        client.unregister_all_hooks()
        assert client.hooks() == []


def test_stats_count_every_request(client: AutopilotClient) -> None:
    client.account()
    client.lists()
    assert client.stats.requests == 2
    assert client.stats.retries == 0
    assert client.stats.rate_limited == 0
