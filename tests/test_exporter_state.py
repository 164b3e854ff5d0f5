"""Stateful exports over real HTTP against the sandbox: incremental re-runs, leavers, guard rails, journal."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from _exporting import make_client as shared_make_client
from _exporting import make_mapping

from autopilot_segments import (
    AuthenticationError,
    AutopilotClient,
    ConfigurationError,
    Exporter,
    ExportError,
    ExportReport,
    GuardrailError,
    StateError,
)
from autopilot_segments._state import ExportState
from autopilot_segments.sandbox import Sandbox

SEGMENT = "VIP customers"


def make_client(sb: Sandbox, **options: Any) -> AutopilotClient:
    options.setdefault("max_retries", 2)
    return shared_make_client(sb, **options)


def rows(ids: range | list[int], *, tier: int = 1) -> list[dict[str, Any]]:
    return [{"Email": f"User{i}@Example.com", "first_name": f"First{i}", "tier": tier} for i in ids]


def email(i: int) -> str:
    return f"user{i}@example.com"


def exporter(sb: Sandbox, state: Path, **options: Any) -> Exporter:
    options.setdefault("batch_size", 10)
    return Exporter(make_client(sb), make_mapping(), state=state, **options)


def upserted_emails(sb: Sandbox, since: int = 0) -> list[str]:
    return [
        str(c["Email"]).lower()
        for r in sb.requests[since:]
        if r.method == "POST" and r.path == "/contacts" and r.body
        for c in r.body["contacts"]
    ]


def calls(sb: Sandbox, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sb.requests[since:]]


def writes(sb: Sandbox, since: int = 0) -> list[tuple[str, str]]:
    return [(m, p) for m, p in calls(sb, since) if m != "GET"]


def assert_invariant(report: ExportReport) -> None:
    assert report.total_rows == report.exported + report.unchanged + len(report.rejected)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "exports.db"


# -- incremental re-runs ---------------------------------------------------------------------------


def test_a_rerun_of_an_unchanged_segment_sends_nothing_and_costs_one_call(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path).export(rows(range(120)), segment=SEGMENT)
        assert (first.exported, first.unchanged) == (120, 0)
        assert "honoured" in first.list_membership
        before = len(sb.requests)
        again = exporter(sb, state_path).export(rows(range(120)), segment=SEGMENT)
        assert (again.exported, again.unchanged, len(again.rejected)) == (0, 120, 0)
        assert_invariant(again)
        assert calls(sb, before) == [("GET", "/lists")]
        assert again.api_calls == 1
        assert again.list_id == first.list_id
        assert not again.list_created
        assert again.run_id is not None
        assert first.run_id is not None
        assert again.run_id > first.run_id


def test_a_rerun_sends_only_new_and_changed_contacts_and_keeps_leavers(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path).export(rows(range(100)), segment=SEGMENT)
        assert first.list_id is not None
        # 0..19 leave, 20..29 change their tier, 30..99 stay as they were, 100..114 are new.
        second_rows = rows(range(20, 30), tier=2) + rows(range(30, 100)) + rows(range(100, 115))
        before = len(sb.requests)
        report = exporter(sb, state_path).export(second_rows, segment=SEGMENT)
        assert (report.exported, report.unchanged, report.removed) == (25, 70, 0)
        assert_invariant(report)
        assert sorted(upserted_emails(sb, before)) == sorted(
            email(i) for i in [*range(20, 30), *range(100, 115)]
        )
        # The verdict is remembered: no probe, no check, no per-contact add; just the bulk calls.
        assert calls(sb, before).count(("GET", "/lists")) == 1
        # (and the custom-field preflight before the first write)
        assert len(calls(sb, before)) == 1 + 1 + math.ceil(25 / 10)
        assert sb.list_members(first.list_id) == {email(i) for i in range(115)}  # leavers kept
        assert sb.contacts[email(25)]["custom_fields"][0]["value"] == 2


def test_full_resends_everything(state_path: Path) -> None:
    with Sandbox() as sb:
        exporter(sb, state_path).export(rows(range(30)), segment=SEGMENT)
        report = exporter(sb, state_path).export(rows(range(30)), segment=SEGMENT, full=True)
        assert (report.exported, report.unchanged) == (30, 0)
        assert sb.upsert_counts[email(7)] == 2
        history = exporter(sb, state_path).history(SEGMENT)
        assert [(r.outcome, r.full) for r in history] == [("completed", False), ("completed", True)]


def test_a_list_where_bulk_ignores_the_list_adds_only_new_contacts_on_reruns(state_path: Path) -> None:
    with Sandbox(bulk_list="ignored") as sb:
        first = exporter(sb, state_path).export(rows(range(30)), segment=SEGMENT)
        assert first.list_id is not None
        assert "ignored" in first.list_membership
        before = len(sb.requests)
        report = exporter(sb, state_path).export(
            rows(range(20), tier=5) + rows(range(20, 30)) + rows(range(30, 33)), segment=SEGMENT
        )
        assert (report.exported, report.unchanged) == (23, 10)
        adds = [p for m, p in calls(sb, before) if m == "POST" and p.startswith("/list/")]
        assert len(adds) == 3  # only the new contacts, never the 20 changed members
        assert not [p for m, p in calls(sb, before) if m == "GET" and "/contact/" in p]  # no probes
        assert sb.list_members(first.list_id) == {email(i) for i in range(33)}


def test_a_contact_stored_but_not_added_to_the_list_is_not_recorded(state_path: Path) -> None:
    # The state records a contact only once it is stored *and* a list member: a failed add is retried.
    with Sandbox(bulk_list="ignored") as sb:
        sb.inject("503", times=3, method="POST", path_prefix="/list/")  # outlasts the 2 retries: one add
        first = exporter(sb, state_path, concurrency=1).export(rows(range(10)), segment=SEGMENT)
        assert first.list_id is not None
        failed = [r for r in first.rejected if r.reason == "failed"]
        assert [r.email for r in failed] == [email(0)]
        assert email(0) in sb.contacts
        assert email(0) not in sb.list_members(first.list_id)
        with ExportState.open(state_path, account=make_client(sb).account_fingerprint) as state:
            known = state.lookup(first.list_id, [state.hash_email(email(i)) for i in range(10)])
            assert state.hash_email(email(0)) not in known
            assert len(known) == 9
        again = exporter(sb, state_path).export(rows(range(10)), segment=SEGMENT)
        assert (again.exported, again.unchanged) == (1, 9)
        assert sb.list_members(first.list_id) == {email(i) for i in range(10)}


def test_a_rerun_after_a_stateless_export_probes_a_contact_the_state_does_not_know(state_path: Path) -> None:
    with Sandbox() as sb:
        Exporter(make_client(sb), make_mapping(), batch_size=10).export(rows(range(30)), segment=SEGMENT)
        stateful = exporter(sb, state_path)
        stateful.export(rows(range(30)), segment=SEGMENT)  # the state learns who is on the list
        before = len(sb.requests)
        report = stateful.export(rows(range(30), tier=3) + rows(range(30, 35)), segment=SEGMENT)
        assert report.exported == 35
        # The 30 changed members are never probed nor added; one new contact is probed and checked.
        assert "honoured" in report.list_membership
        assert not [p for m, p in calls(sb, before) if m == "POST" and p.startswith("/list/")]
        probes = [p for m, p in calls(sb, before) if m == "GET" and "/contact/" in p]
        assert 1 <= len(probes) <= 2


def test_an_unsubscribed_contact_stays_unsubscribed_when_its_payload_changes(state_path: Path) -> None:
    with Sandbox() as sb:
        client = make_client(sb)
        exporter(sb, state_path).export(rows(range(5)), segment=SEGMENT)
        client.unsubscribe(email(3))
        report = exporter(sb, state_path).export(rows(range(5), tier=9), segment=SEGMENT)
        assert report.exported == 5
        assert sb.upsert_counts[email(3)] == 2
        assert sb.contacts[email(3)]["unsubscribed"] is True
        assert sb.contacts[email(3)]["custom_fields"][0]["value"] == 9
        assert sb.contacts[email(2)]["unsubscribed"] is False


# -- leavers ---------------------------------------------------------------------------------------


def test_remove_takes_leavers_off_the_list_without_deleting_or_unsubscribing(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path, on_leave="remove").export(rows(range(40)), segment=SEGMENT)
        assert first.list_id is not None
        assert first.removed == 0
        before = len(sb.requests)
        report = exporter(sb, state_path, on_leave="remove").export(rows(range(10, 45)), segment=SEGMENT)
        assert (report.exported, report.unchanged, report.removed, report.removal_failed) == (5, 30, 10, 0)
        assert "10 leavers removed" in report.summary()
        assert sb.list_members(first.list_id) == {email(i) for i in range(10, 45)}
        deletes = [p for m, p in calls(sb, before) if m == "DELETE"]
        assert len(deletes) == 10
        assert all(p.startswith(f"/list/{first.list_id}/contact/person_") for p in deletes)
        for i in range(10):  # still in Autopilot, still subscribed
            assert sb.contacts[email(i)]["unsubscribed"] is False
        # Forgotten by the state once removed: the next run has nobody to remove.
        with ExportState.open(state_path, account=make_client(sb).account_fingerprint) as state:
            assert state.member_count(first.list_id) == 35
        third = exporter(sb, state_path, on_leave="remove").export(rows(range(10, 45)), segment=SEGMENT)
        assert (third.removed, third.unchanged, third.api_calls) == (0, 35, 1)


def test_a_bad_value_or_a_duplicate_never_removes_anyone(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path, on_leave="remove").export(rows(range(10)), segment=SEGMENT)
        assert first.list_id is not None
        second = rows(range(10))
        second[3]["tier"] = "not a number"  # invalid_value, but the email is usable
        second[4]["Email"] = "USER5@example.com"  # user4 leaves; row 6 (user5) becomes a duplicate
        report = exporter(sb, state_path, on_leave="remove").export(second, segment=SEGMENT)
        assert report.counts["invalid_value"] == 1
        assert report.counts["duplicate_email"] == 1
        assert report.removed == 1
        assert sb.list_members(first.list_id) == {email(i) for i in range(10)} - {email(4)}
        assert_invariant(report)


def test_rows_over_the_profile_cap_are_not_leavers(state_path: Path) -> None:
    with Sandbox() as sb:
        exporter(sb, state_path, on_leave="remove").export(rows(range(10)), segment=SEGMENT)
        capped = exporter(sb, state_path, on_leave="remove", max_profiles=6)
        report = capped.export(rows(range(10)), segment=SEGMENT)
        assert report.counts["over_limit"] == 4
        assert report.removed == 0


def test_a_failed_removal_stays_in_the_state_and_is_retried_next_run(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path, on_leave="remove").export(rows(range(10)), segment=SEGMENT)
        assert first.list_id is not None
        sb.inject("503", times=3, method="DELETE")  # the client's 2 retries are not enough for one removal
        report = exporter(sb, state_path, on_leave="remove", concurrency=1).export(
            rows(range(8)), segment=SEGMENT
        )
        assert (report.removed, report.removal_failed) == (1, 1)
        assert not report.ok
        assert len(sb.list_members(first.list_id)) == 9
        again = exporter(sb, state_path, on_leave="remove").export(rows(range(8)), segment=SEGMENT)
        assert (again.removed, again.removal_failed) == (1, 0)
        assert sb.list_members(first.list_id) == {email(i) for i in range(8)}


class _KeyRevokedForRemovals:
    """A client whose key is refused (a real 401 from the sandbox) for removals only."""

    def __init__(self, sb: Sandbox) -> None:
        self._client = make_client(sb)
        self._revoked = AutopilotClient("0" * 32, base_url=sb.url, max_retries=0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def remove_from_list(self, list_id: str, contact: str) -> bool:
        return self._revoked.remove_from_list(list_id, contact)


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_401_during_removals_sends_nothing_more(state_path: Path, concurrency: int) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path, on_leave="remove").export(rows(range(40)), segment=SEGMENT)
        assert first.list_id is not None
        client = _KeyRevokedForRemovals(sb)
        revoked = Exporter(
            client,  # type: ignore[arg-type]
            make_mapping(),
            state=state_path,
            on_leave="remove",
            concurrency=concurrency,
            batch_size=10,
        )
        before = len(sb.requests)
        with pytest.raises(AuthenticationError) as caught:
            revoked.export(rows(range(20, 40)), segment=SEGMENT, force=True)
        partial = caught.value.export_report
        assert partial is not None
        assert partial.stopped_by is not None
        assert "while removing leavers" in partial.stopped_by
        assert (partial.complete, partial.unchanged, partial.removed) == (False, 20, 0)
        assert_invariant(partial)
        deletes = [p for m, p in calls(sb, before) if m == "DELETE"]
        # Only removals already in flight when the 401 arrived; none started after it.
        assert 1 <= len(deletes) <= concurrency
        assert len(sb.list_members(first.list_id)) == 40
        assert [r.outcome for r in revoked.history(SEGMENT)] == ["completed", "failed"]


# -- guard rails -----------------------------------------------------------------------------------


@pytest.mark.parametrize("on_leave", ["keep", "remove"])
def test_empty_input_stops_before_writing_anything(state_path: Path, on_leave: Any) -> None:
    with Sandbox() as sb:
        with pytest.raises(GuardrailError) as caught:
            exporter(sb, state_path, on_leave=on_leave).export([], segment=SEGMENT)
        assert caught.value.details["reason"] == "empty_input"
        assert "force=True" in str(caught.value)
        assert sb.lists == []
        assert writes(sb) == []
        first = exporter(sb, state_path, on_leave=on_leave).export(rows(range(10)), segment=SEGMENT)
        before = len(sb.requests)
        with pytest.raises(GuardrailError):
            exporter(sb, state_path, on_leave=on_leave).export(iter([]), segment=SEGMENT)
        assert writes(sb, before) == []
        assert first.list_id is not None
        assert len(sb.list_members(first.list_id)) == 10
        assert exporter(sb, state_path).history(SEGMENT)[-1].outcome == "guardrail"
        forced = exporter(sb, state_path, on_leave=on_leave).export([], segment=SEGMENT, force=True)
        assert forced.total_rows == 0
        assert forced.removed == (10 if on_leave == "remove" else 0)


def test_mass_removal_stops_before_writing_anything_unless_forced(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path, on_leave="remove").export(rows(range(20)), segment=SEGMENT)
        assert first.list_id is not None
        before = len(sb.requests)
        shrunk = rows(range(15, 20), tier=2) + rows(range(20, 25))  # 15 of 20 would leave; 5 changed, 5 new
        with pytest.raises(GuardrailError) as caught:
            exporter(sb, state_path, on_leave="remove").export(shrunk, segment=SEGMENT)
        details = caught.value.details
        assert (details["reason"], details["would_remove"], details["known_members"]) == (
            "mass_removal",
            15,
            20,
        )
        assert "15 of the 20" in str(caught.value)
        assert writes(sb, before) == []  # nothing sent, not even the changed or new contacts
        assert sb.upsert_counts[email(20)] == 0
        # Exactly at the fraction is allowed; above it needs force.
        lenient = exporter(sb, state_path, on_leave="remove", max_removal_fraction=0.75)
        report = lenient.export(shrunk, segment=SEGMENT)
        assert (report.removed, report.exported) == (15, 10)
        assert [r.outcome for r in exporter(sb, state_path).history(SEGMENT)] == [
            "completed",
            "guardrail",
            "completed",
        ]
        forced = exporter(sb, state_path, on_leave="remove").export(
            rows(range(24, 25)), segment=SEGMENT, force=True
        )
        assert forced.removed == 9
        assert sb.list_members(first.list_id) == {email(24)}


# -- plan, journal, configuration --------------------------------------------------------------------


def test_plan_with_state_reports_unchanged_and_removals_without_any_call(state_path: Path) -> None:
    with Sandbox() as sb:
        exporter(sb, state_path, on_leave="remove").export(rows(range(20)), segment=SEGMENT)
        before = len(sb.requests)
        planner = exporter(sb, state_path, on_leave="remove")
        plan = planner.plan(rows(range(5, 20), tier=1) + rows(range(20, 22)), segment=SEGMENT)
        assert (plan.exported, plan.unchanged, plan.removed) == (2, 15, 5)
        assert plan.dry_run
        assert "GuardrailError" not in plan.list_note
        assert plan.planned_calls == 1 + 1 + 5 + 1  # ... and the custom-field preflight
        mass = planner.plan(rows(range(3)), segment=SEGMENT)
        assert mass.removed == 17
        assert "GuardrailError" in mass.list_note
        assert len(sb.requests) == before
        assert [r.outcome for r in planner.history(SEGMENT)] == ["completed"]
        # The seen sets of plans do not leak into the next export.
        report = planner.export(rows(range(20)), segment=SEGMENT)
        assert (report.unchanged, report.removed) == (20, 0)


def test_plan_with_a_missing_state_file_creates_nothing(state_path: Path) -> None:
    with Sandbox() as sb:
        plan = exporter(sb, state_path).plan(rows(range(5)), segment=SEGMENT)
        assert plan.exported == 5
        assert plan.unchanged == 0
        assert not state_path.exists()
        assert exporter(sb, state_path).history(SEGMENT) == []


def test_a_stopped_export_is_journaled_failed_and_the_rerun_completes_it(state_path: Path) -> None:
    with Sandbox() as sb:
        injected: list[int] = []

        def fail_after_two_batches(progress: Any) -> None:
            if progress.exported >= 20 and not injected:
                injected.append(progress.exported)
                sb.inject("500", times=3, method="POST", path_prefix="/contacts")  # outlasts 2 retries

        failing = exporter(
            sb, state_path, stop_on_error=True, concurrency=1, on_progress=fail_after_two_batches
        )
        with pytest.raises(ExportError) as caught:
            failing.export(rows(range(50)), segment=SEGMENT)
        partial = caught.value.report
        history = failing.history(SEGMENT)
        assert [r.outcome for r in history] == ["failed"]
        assert history[0].counts["exported"] == partial.exported >= 20
        report = exporter(sb, state_path).export(rows(range(50)), segment=SEGMENT)
        assert report.exported + report.unchanged == 50
        assert report.unchanged == partial.exported
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == {email(i) for i in range(50)}


def test_a_stopped_two_pass_export_accounts_for_every_spooled_row(state_path: Path) -> None:
    # With on_leave="remove" the first pass counts every row before anything is sent; rows the
    # stopped second pass never read again must still end in exactly one outcome.
    with Sandbox() as sb:
        exporter(sb, state_path).export(rows(range(10)), segment=SEGMENT)
        injected: list[int] = []

        def fail_after_two_batches(progress: Any) -> None:
            if progress.exported >= 20 and not injected:
                injected.append(progress.exported)
                sb.inject("500", times=3, method="POST", path_prefix="/contacts")  # outlasts 2 retries

        failing = exporter(
            sb,
            state_path,
            stop_on_error=True,
            concurrency=1,
            on_leave="remove",
            on_progress=fail_after_two_batches,
        )
        with pytest.raises(ExportError) as caught:
            failing.export(rows(range(100)), segment=SEGMENT, full=True)
        partial = caught.value.report
        assert partial.total_rows == 100
        assert_invariant(partial)
        assert partial.counts["failed"] == 100 - partial.exported
        rejected_rows = [r.row for r in partial.rejected]
        assert len(set(rejected_rows)) == len(rejected_rows)  # one outcome per row, never two
        report = exporter(sb, state_path, on_leave="remove").export(rows(range(100)), segment=SEGMENT)
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == {email(i) for i in range(100)}


def test_a_locked_state_file_fails_before_any_call(state_path: Path) -> None:
    with Sandbox() as sb:
        holder = ExportState.open(state_path, account="someone")
        try:
            with pytest.raises(StateError, match="locked"):
                exporter(sb, state_path).export(rows(range(3)), segment=SEGMENT)
        finally:
            holder.close()
        assert sb.requests == []


def test_configuration_errors() -> None:
    with Sandbox() as sb:
        client = make_client(sb)
        with pytest.raises(ConfigurationError, match="needs state"):
            Exporter(client, make_mapping(), on_leave="remove")
        with pytest.raises(ConfigurationError) as caught:
            Exporter(client, make_mapping(), state="x.db", on_leave="drop", max_removal_fraction=1.5)  # type: ignore[arg-type]
        assert len(caught.value.problems) == 2
        with pytest.raises(ConfigurationError, match="history"):
            Exporter(client, make_mapping()).history(SEGMENT)


def test_the_state_file_and_its_log_hold_no_email_name_value_or_key(state_path: Path) -> None:
    distinctive = [
        {
            "Email": f"Zebulon.Quixote{i}@Marvellous-Example.org",
            "first_name": f"Xanthippe{i}",
            "tier": 987_654 + i,
        }
        for i in range(30)
    ]
    seen_files: list[bytes] = []
    wal_sizes: list[int] = []

    def snapshot(_progress: object) -> None:
        # Called after every batch, while the state (and its write-ahead log) is open.
        for path in (state_path, Path(f"{state_path}-wal")):
            if path.exists():
                seen_files.append(path.read_bytes())
                wal_sizes.append(len(seen_files[-1]) if path.name.endswith("-wal") else 0)

    with Sandbox() as sb:
        key = sb.api_key
        fingerprint = make_client(sb).account_fingerprint
        exporter(sb, state_path, on_progress=snapshot).export(distinctive, segment=SEGMENT)
        exporter(sb, state_path, on_progress=snapshot, on_leave="remove").export(
            distinctive[:25], segment=SEGMENT
        )
    seen_files.append(state_path.read_bytes())
    assert max(wal_sizes) > 0  # the write-ahead log was caught holding recorded batches
    needles = [key, fingerprint, "zebulon", "quixote", "marvellous", "xanthippe", "987654", "987655"]
    for blob in seen_files:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            lowered = blob.decode(encoding, errors="ignore").lower()
            for needle in needles:
                assert needle.lower() not in lowered
        assert key.encode() not in blob
        assert b"Zebulon" not in blob


class _KeyRevokedDuringFirstBatch:
    """The first batch's upsert gets a real 401; the other batches' upserts, already in flight, go
    through only after it, so they are acknowledged while the export is aborting."""

    def __init__(self, sb: Sandbox, first_email: str) -> None:
        self._client = make_client(sb)
        self._revoked = AutopilotClient("0" * 32, base_url=sb.url, max_retries=0)
        self._first_email = first_email
        self.refused = threading.Event()
        self._others_in_flight = threading.Semaphore(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def upsert_contacts(self, contacts: Any) -> Any:
        if str(contacts[0]["Email"]).lower() == self._first_email:
            for _ in range(2):  # the two other batches are in flight before the key is refused
                assert self._others_in_flight.acquire(timeout=10)
            try:
                return self._revoked.upsert_contacts(contacts)
            finally:
                self.refused.set()
        self._others_in_flight.release()
        assert self.refused.wait(timeout=10)
        return self._client.upsert_contacts(contacts)


def test_a_401_still_records_the_batches_acknowledged_while_aborting(state_path: Path) -> None:
    with Sandbox() as sb:
        first = exporter(sb, state_path).export(rows(range(10)), segment=SEGMENT)
        assert first.list_id is not None
        assert "honoured" in first.list_membership  # remembered: later batches need only their upsert
        client = _KeyRevokedDuringFirstBatch(sb, email(100))
        revoked = Exporter(client, make_mapping(), state=state_path, concurrency=3, batch_size=10)  # type: ignore[arg-type]
        with pytest.raises(AuthenticationError) as caught:
            revoked.export(rows(range(100, 130)), segment=SEGMENT)
        assert sb.list_members(first.list_id) == {email(i) for i in [*range(10), *range(110, 130)]}
        # The partial report keeps the two batches Autopilot acknowledged, and fails the refused one.
        partial = caught.value.export_report
        assert partial is not None
        assert not partial.complete
        assert partial.stopped_by is not None
        assert "401" in partial.stopped_by
        assert (partial.total_rows, partial.exported) == (30, 20)
        assert sorted(r.row for r in partial.rejected) == list(range(1, 11))
        assert all(r.reason == "failed" and "aborted" in r.message for r in partial.rejected)
        assert_invariant(partial)
        assert sb.api_key not in str(partial.to_dict())
        # Those batches are in the state: the re-run sends only the refused one.
        before = len(sb.requests)
        again = exporter(sb, state_path).export(rows(range(100, 130)), segment=SEGMENT)
        assert (again.exported, again.unchanged) == (10, 20)
        assert sorted(upserted_emails(sb, before)) == sorted(email(i) for i in range(100, 110))
        assert sb.list_members(first.list_id) == {email(i) for i in [*range(10), *range(100, 130)]}
