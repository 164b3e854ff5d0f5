"""A bulk answer without `email_contact_map` (Autopilot's published example): confirmed, never guessed."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _exporting import TierDefinedAfterPreflight, make_client, make_mapping
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from autopilot_segments import AutopilotClient, BulkUpsertResult, Exporter, FieldMapping
from autopilot_segments._destinations.autopilot.confirmation import confirm_stored
from autopilot_segments.sandbox import FaultPlan, Sandbox

SEGMENT = "VIP customers"
KEY = "0123456789abcdef0123456789abcdef"


def rows(n: int, *, tier_every: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "Email": f"user{i}@example.com",
            "first_name": f"F{i}",
            "tier": i if tier_every and i % tier_every == 0 else None,
        }
        for i in range(n)
    ]


def test_the_client_says_when_the_answer_has_no_map() -> None:
    with Sandbox(bulk_answer="ids_only") as sb:
        result = make_client(sb).upsert_contacts([{"Email": "a@example.com"}, {"Email": "b@example.com"}])
        assert not result.mapped
        assert result.email_contact_map == {}
        assert result.missing == ()  # unknown, not "missing": nothing says they were left out
        assert len(result.contact_ids) == 2
        sb.configure(bulk_answer="map")
        mapped = make_client(sb).upsert_contacts([{"Email": "a@example.com"}])
        assert mapped.mapped
        assert mapped.missing == ()


@pytest.mark.parametrize("bulk_answer", ["map", "ids_only"])
@pytest.mark.parametrize("bulk_invalid", ["reject", "drop"])
@pytest.mark.parametrize("bulk_list", ["honoured", "ignored"])
def test_every_answer_shape_exports_exactly_the_stored_contacts(
    bulk_answer: Any, bulk_invalid: Any, bulk_list: Any
) -> None:
    source = rows(250, tier_every=40)  # rows 0, 40, 80, ... carry an integer Tier the account refuses
    offenders = {f"user{i}@example.com" for i in range(0, 250, 40)}
    with Sandbox(bulk_answer=bulk_answer, bulk_invalid=bulk_invalid, bulk_list=bulk_list) as sb:
        report = Exporter(TierDefinedAfterPreflight(sb), make_mapping()).export(source, segment=SEGMENT)
        assert report.list_id is not None
        assert report.exported == 250 - len(offenders)
        assert {str(r.email) for r in report.rejected} == offenders
        assert all(r.reason == "rejected_by_api" for r in report.rejected)
        exported = {f"user{i}@example.com" for i in range(250)} - offenders
        assert sb.list_members(report.list_id) == exported
        assert set(sb.contacts) == exported


def test_ids_in_submission_order_cost_one_check_per_bulk_call() -> None:
    with Sandbox(bulk_answer="ids_only") as sb:
        report = Exporter(make_client(sb), make_mapping()).export(rows(1000), segment=SEGMENT)
        assert report.exported == 1000
        bulk = [r for r in sb.requests if r.path == "/contacts"]
        checks = [r for r in sb.requests if r.method == "GET" and r.path.startswith("/contact/")]
        assert len(bulk) == 10
        assert len(checks) == len(bulk)  # one read-back per bulk call
        assert all(r.path.startswith("/contact/person_") for r in checks)  # by id, compared by email


@pytest.mark.parametrize("stateful", [False, True])
def test_a_contact_that_cannot_be_confirmed_is_never_counted_exported(stateful: bool, tmp_path: Path) -> None:
    source = rows(30, tier_every=10)
    with Sandbox(bulk_answer="ids_only", bulk_invalid="drop") as sb:
        # Counts differ (3 dropped): each contact must be confirmed, and every confirmation fails.
        sb.configure(faults=FaultPlan(rate=1.0, kinds=("503",), methods=("GET",), path_prefix="/contact/"))
        client = TierDefinedAfterPreflight(sb, max_retries=0)
        state = tmp_path / "s.db" if stateful else None
        report = Exporter(client, make_mapping(), state=state).export(source, segment=SEGMENT)
        assert report.exported == 0
        assert report.counts["failed"] == 30
        assert all("confirm" in r.message for r in report.rejected)
        assert len(sb.contacts) == 27  # stored, yet unconfirmed: reported failed, never exported
        if stateful:  # nothing was recorded: the re-run sends them all again and confirms them this time
            sb.configure(faults=None)
            without_tier = FieldMapping(email="Email", fields={"FirstName": "first_name"})
            again = Exporter(client, without_tier, state=state).export(source, segment=SEGMENT)
            assert (again.exported, again.unchanged) == (30, 0)
            assert again.list_id is not None
            assert len(sb.list_members(again.list_id)) == 30


# -- confirmation against an answer whose ids are NOT in submission order (pytest-httpserver) ----------


@pytest.fixture
def client(httpserver: HTTPServer) -> Iterator[AutopilotClient]:
    with AutopilotClient(
        KEY, base_url=httpserver.url_for("/v1"), requests_per_second=1000, max_retries=0, backoff_factor=0
    ) as c:
        yield c


def _contacts_server(httpserver: HTTPServer, stored: dict[str, str]) -> None:
    """GET /contact/{id or email} for the `stored` contacts (email -> id), 404 for anyone else."""
    by_id = {cid: email for email, cid in stored.items()}

    def get(request: Request) -> Response:
        ref = request.path.rsplit("/", 1)[1]
        email = by_id.get(ref, ref if ref in stored else None)
        if email is None:
            return Response(json.dumps({"error": "Not Found", "message": "Contact could not be found."}), 404)
        return Response(json.dumps({"contact_id": stored[email], "Email": email}), 200)

    httpserver.expect_request(re.compile("/v1/contact/.*"), method="GET").respond_with_handler(get)


def test_ids_out_of_order_are_caught_and_each_contact_confirmed(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    emails = [f"u{i}@example.com" for i in range(6)]
    stored = {email: f"person_{i}" for i, email in enumerate(emails)}
    _contacts_server(httpserver, stored)
    answer = BulkUpsertResult(contact_ids=list(reversed(stored.values())), email_contact_map={}, mapped=False)
    confirmation = confirm_stored(client, emails, answer)
    assert confirmation.stored == stored  # the right id for each, not the reversed guess
    assert confirmation.not_stored == ()
    assert confirmation.unconfirmed == {}
    assert len(httpserver.log) == 1 + 6  # the check that caught the order, then one read per contact


def test_a_contact_absent_or_not_in_the_answer_was_not_stored(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    emails = ["a@example.com", "b@example.com", "c@example.com"]
    # b is unknown to Autopilot; c exists from an earlier run but this answer does not name its id.
    _contacts_server(httpserver, {"a@example.com": "person_a", "c@example.com": "person_old"})
    answer = BulkUpsertResult(contact_ids=["person_a", "person_x"], email_contact_map={}, mapped=False)
    confirmation = confirm_stored(client, emails, answer)
    assert confirmation.stored == {"a@example.com": "person_a"}
    assert sorted(confirmation.not_stored) == ["b@example.com", "c@example.com"]


def test_a_mapped_answer_needs_no_call(client: AutopilotClient, httpserver: HTTPServer) -> None:
    answer = BulkUpsertResult(
        contact_ids=["person_a"], email_contact_map={"A@example.com": "person_a"}, missing=["b@example.com"]
    )
    confirmation = confirm_stored(client, ["a@example.com", "b@example.com"], answer)
    assert confirmation.stored == {"a@example.com": "person_a"}
    assert confirmation.not_stored == ("b@example.com",)
    assert httpserver.log == []


def test_plan_counts_are_unchanged_by_the_answer_shape() -> None:
    with Sandbox(bulk_answer="ids_only") as sb:
        plan = Exporter(make_client(sb), make_mapping()).plan(rows(250), segment=SEGMENT)
        assert plan.planned_calls == math.ceil(250 / 100) + 4 + 1
