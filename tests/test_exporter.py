"""Exporter behaviour over real HTTP against the sandbox: lists, ambiguity modes, faults, accounting."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from _exporting import TierDefinedAfterPreflight, make_client, make_mapping
from hypothesis import given
from hypothesis import strategies as st
from werkzeug import Request, Response

from autopilot_segments import (
    AuthenticationError,
    AutopilotClient,
    ConfigurationError,
    Exporter,
    ExportError,
    ExportReport,
    FieldMapping,
    GuardrailError,
)
from autopilot_segments._destinations.members import MemberSet
from autopilot_segments._export.options import auto_concurrency
from autopilot_segments._progress import Progress
from autopilot_segments.sandbox import Sandbox

SEGMENT = "VIP customers"


def rows(n: int, *, start: int = 0, tier_every: int = 0) -> list[dict[str, Any]]:
    """`n` valid rows; every `tier_every`-th has a `tier` (refused by a sandbox that knows Tier as text)."""
    out = []
    for i in range(start, start + n):
        # Every row has every column, as from a file or a query; a tier-less row holds None.
        row: dict[str, Any] = {"Email": f"User{i}@Example.com", "first_name": f"First{i}", "tier": None}
        if tier_every and i % tier_every == 0:
            row["tier"] = i
        out.append(row)
    return out


def exported_emails(report: ExportReport, source: list[dict[str, Any]]) -> set[str]:
    """Lower-cased emails of the rows the report calls exported (every row not rejected)."""
    rejected = {r.row for r in report.rejected}
    return {str(row["Email"]).lower() for i, row in enumerate(source, start=1) if i not in rejected}


def paths(sb: Sandbox, method: str, prefix: str) -> list[str]:
    return [r.path for r in sb.requests if r.method == method and r.path.startswith(prefix)]


def assert_invariant(report: ExportReport, n: int) -> None:
    assert report.total_rows == n
    assert report.exported + report.unchanged + len(report.rejected) == n
    assert len({r.row for r in report.rejected}) == len(report.rejected)


# -- the basic promise ---------------------------------------------------------------------------


def test_export_creates_the_list_and_every_valid_row_ends_on_it() -> None:
    source = [*rows(250), {"Email": "not an email"}, {"Email": "user3@example.com"}, {"first_name": "x"}]
    with Sandbox() as sb:
        report = Exporter(make_client(sb), make_mapping()).export(source, segment=SEGMENT)
        assert sb.lists == [(report.list_id, SEGMENT)]
        assert report.list_created
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == exported_emails(report, source)
        assert report.exported == 250
        assert report.counts["invalid_email"] == 1
        assert report.counts["duplicate_email"] == 1
        assert report.counts["missing_email"] == 1
        assert_invariant(report, len(source))
        # Honoured _autopilot_list: bulk calls plus a small constant (the custom-field preflight, lists,
        # create, re-read, 1 check).
        assert report.api_calls == len(sb.requests)
        assert report.api_calls <= math.ceil(250 / 100) + 5
        assert len(paths(sb, "POST", "/contacts")) == 3
        assert "honoured" in report.list_membership
        first = sb.contacts["user0@example.com"]
        assert first["FirstName"] == "First0"


@pytest.mark.parametrize("bulk_list", ["honoured", "ignored"])
@pytest.mark.parametrize("bulk_invalid", ["reject", "drop"])
def test_every_ambiguity_mode_gives_the_same_list(bulk_list: Any, bulk_invalid: Any) -> None:
    source = rows(60, tier_every=7)  # rows 0, 7, 14, ... carry an integer Tier: the API refuses them
    offenders = {str(r["Email"]).lower() for r in source if r["tier"] is not None}
    with Sandbox(bulk_list=bulk_list, bulk_invalid=bulk_invalid) as sb:
        client = TierDefinedAfterPreflight(sb)
        report = Exporter(client, make_mapping(), batch_size=25).export(source, segment=SEGMENT)
        assert report.list_id is not None
        members = sb.list_members(report.list_id)
        assert members == exported_emails(report, source)
        assert members.isdisjoint(offenders)
        assert report.exported == 60 - len(offenders)
        api_rejected = [r for r in report.rejected if r.reason == "rejected_by_api"]
        assert {str(r.email) for r in api_rejected} == offenders
        if bulk_invalid == "reject":
            assert all("Tier" in r.message and "integer" in r.message for r in api_rejected)
        else:
            assert all("left this contact out" in r.message for r in api_rejected)
        assert bulk_list in report.list_membership
        assert_invariant(report, len(source))


def test_bisection_isolates_one_offender_in_a_full_batch_cheaply() -> None:
    source = rows(100)
    source[37]["tier"] = 5
    with Sandbox(bulk_invalid="reject") as sb:
        client = TierDefinedAfterPreflight(sb)
        report = Exporter(client, make_mapping()).export(source, segment=SEGMENT)
        assert [r.row for r in report.rejected] == [38]
        assert report.rejected[0].reason == "rejected_by_api"
        assert report.exported == 99
        bulk_calls = len(paths(sb, "POST", "/contacts"))
        assert bulk_calls <= 1 + 2 * math.ceil(math.log2(100))
        assert report.list_id is not None
        assert len(sb.list_members(report.list_id)) == 99


# -- list resolution -------------------------------------------------------------------------------


def test_an_existing_list_is_reused_and_verified_with_a_probe() -> None:
    with Sandbox(bulk_list="honoured") as sb:
        list_id = sb.create_list(SEGMENT)
        sb.create_list("Another segment")
        report = Exporter(make_client(sb), make_mapping()).export(rows(150), segment=SEGMENT)
        assert report.list_id == list_id
        assert not report.list_created
        assert paths(sb, "POST", "/list") == []
        assert len(sb.list_members(list_id)) == 150
        assert "honoured" in report.list_membership
        assert report.api_calls <= math.ceil(150 / 100) + 4


def test_rerun_onto_a_list_of_existing_members_needs_no_add() -> None:
    source = rows(30)
    with Sandbox(bulk_list="ignored") as sb:
        list_id = sb.create_list(SEGMENT)
        first = Exporter(make_client(sb), make_mapping(), batch_size=10).export(source, segment=SEGMENT)
        assert first.list_id == list_id
        assert "ignored" in first.list_membership
        before = len(sb.requests)
        again = Exporter(make_client(sb), make_mapping(), batch_size=10).export(source, segment=SEGMENT)
        # Every probed contact is a member already: the list is read once, and nobody needs an add.
        assert "already members" in again.list_membership
        assert again.exported == 30
        assert len(sb.list_members(list_id)) == 30
        assert adds(sb, before) == []
        assert len(paths(sb, "GET", f"/list/{list_id}/contacts")) == 1


def adds(sb: Sandbox, since: int = 0) -> list[str]:
    """Emails of the contacts added to a list one by one (`POST /list/{id}/contact/{contact_id}`)."""
    by_id = {c["contact_id"]: email for email, c in sb.contacts.items()}
    return [
        by_id[r.path.rsplit("/", 1)[1]]
        for r in sb.requests[since:]
        if r.method == "POST" and r.path.startswith("/list/") and "/contact/" in r.path
    ]


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("bulk_list", ["honoured", "ignored"])
def test_a_stateless_rerun_reads_the_list_once_instead_of_adding_every_contact(
    bulk_list: Any, concurrency: int
) -> None:
    first_rows = rows(250)
    with Sandbox(bulk_list=bulk_list) as sb:
        client = make_client(sb)
        first = Exporter(client, make_mapping()).export(first_rows, segment=SEGMENT)
        list_id = first.list_id
        assert list_id is not None
        taken_off = [f"user{i}@example.com" for i in (40, 41, 120, 249)]
        for member in taken_off:
            client.remove_from_list(list_id, member)
        new = rows(5, start=1000)
        # The same segment again (the first contacts of every batch still members, so every probe is
        # inconclusive) with new contacts mixed in, and members taken off the list since the first run.
        source = first_rows[:10] + new[:2] + first_rows[10:130] + new[2:] + first_rows[130:]
        before = len(sb.requests)
        report = Exporter(client, make_mapping(), concurrency=concurrency).export(source, segment=SEGMENT)
        assert report.exported == 255
        assert_invariant(report, 255)
        members = sb.list_members(list_id)
        assert members == exported_emails(report, source)
        assert len(members) == 255
        if bulk_list == "honoured":
            # Bulk calls that ran before the list read made their new contacts members already: then
            # no contact outside the read set is left to check, and none needs a check either.
            assert "honoured" in report.list_membership or "already members" in report.list_membership
            if concurrency == 1:  # the second batch's new contacts come after the read: one is checked
                assert "honoured" in report.list_membership
            assert adds(sb, before) == []
            budget = math.ceil(255 / 100) + math.ceil(len(members) / 100) + 6
            assert report.api_calls == len(sb.requests) - before <= budget
        else:
            assert "ignored" in report.list_membership
            # Only the contacts that were not members are added, each once.
            assert sorted(adds(sb, before)) == sorted([*taken_off, *(str(r["Email"]).lower() for r in new)])


def test_a_stateless_rerun_of_an_unchanged_segment_costs_the_bulk_calls_and_one_list_read() -> None:
    source = rows(420)
    with Sandbox(bulk_list="honoured") as sb:
        first = Exporter(make_client(sb), make_mapping()).export(source, segment=SEGMENT)
        assert first.list_id is not None
        before = len(sb.requests)
        again = Exporter(make_client(sb), make_mapping()).export(source, segment=SEGMENT)
        assert again.exported == 420
        assert adds(sb, before) == []
        pages = len(paths(sb, "GET", f"/list/{first.list_id}/contacts"))
        assert pages == math.ceil(420 / 100)
        # Preflight, lists, up to 3 probes, the bulk calls, the list read; no check: nobody new exported.
        assert again.api_calls == len(sb.requests) - before <= 1 + 1 + 3 + 2 * math.ceil(420 / 100)
        assert "already members" in again.list_membership


def test_two_lists_with_the_segment_title_resolve_to_the_lowest_list_id() -> None:
    with Sandbox() as sb:
        ids = [sb.create_list(SEGMENT), sb.create_list(SEGMENT)]
        report = Exporter(make_client(sb), make_mapping()).export(rows(20), segment=SEGMENT)
        assert report.list_id == min(ids)
        assert "2 lists are titled" in report.list_note
        assert max(ids) in report.list_note
        assert len(sb.list_members(min(ids))) == 20
        assert sb.list_members(max(ids)) == set()


class _RacingClient(AutopilotClient):
    """A client whose first list read misses a list another exporter creates right after it."""

    def __init__(self, sb: Sandbox, title: str) -> None:
        super().__init__(sb.api_key, base_url=sb.url, requests_per_second=10_000.0, backoff_factor=0.0)
        self._sb, self._title, self._raced = sb, title, False

    def lists(self) -> Any:
        seen = super().lists()
        if not self._raced:
            self._raced = True
            self.rival_id = self._sb.create_list(self._title)
        return seen


def test_a_409_on_create_resolves_to_the_list_that_appeared() -> None:
    with Sandbox(duplicate_list="conflict") as sb:
        client = _RacingClient(sb, SEGMENT)
        report = Exporter(client, make_mapping()).export(rows(10), segment=SEGMENT)
        assert [r.status for r in sb.requests if r.path == "/list"] == [409]
        assert report.list_id == client.rival_id
        assert "409" in report.list_note
        assert len(sb.list_members(client.rival_id)) == 10


def test_a_twin_created_concurrently_resolves_to_the_lowest_list_id() -> None:
    with Sandbox(duplicate_list="create") as sb:
        client = _RacingClient(sb, SEGMENT)
        report = Exporter(client, make_mapping()).export(rows(10), segment=SEGMENT)
        titled = [list_id for list_id, title in sb.lists if title == SEGMENT]
        assert len(titled) == 2
        assert report.list_id == min(titled)
        assert "2 lists are titled" in report.list_note
        assert len(sb.list_members(min(titled))) == 10


@pytest.mark.parametrize("duplicate_list", ["conflict", "create"])
def test_a_create_whose_answer_was_lost_uses_the_list_it_made(duplicate_list: Any) -> None:
    with Sandbox(duplicate_list=duplicate_list) as sb:
        sb.inject("drop_after", times=1, method="POST", path_prefix="/list")  # made, answer lost
        report = Exporter(make_client(sb), make_mapping()).export(rows(10), segment=SEGMENT)
        titled = [list_id for list_id, title in sb.lists if title == SEGMENT]
        assert titled == [report.list_id]  # not replayed: no twin, no 409
        assert report.list_created
        assert "had been created" in report.list_note
        assert len(sb.list_members(titled[0])) == 10
        assert_invariant(report, 10)


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503", "429", "drop_before", "drop_after"])
def test_transient_faults_are_retried_by_the_transport(kind: str) -> None:
    source = rows(120)
    with Sandbox() as sb:
        # One 429 pauses the client's limiter for a second (by design): keep it to one of those.
        sb.inject(kind, times=1 if kind == "429" else 2, method="POST", path_prefix="/contacts")
        report = Exporter(make_client(sb), make_mapping(), concurrency=1).export(source, segment=SEGMENT)
        assert report.exported == 120
        assert report.rejected == ()
        assert report.retries >= (1 if kind == "429" else 2)
        if kind == "429":
            assert report.rate_limited == 1
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == exported_emails(report, source)


def test_exhausted_retries_report_the_batch_failed_and_the_export_goes_on() -> None:
    source = rows(50)
    with Sandbox() as sb:
        sb.inject("503", times=4, method="POST", path_prefix="/contacts")  # 1 try + 3 retries
        exporter = Exporter(make_client(sb, max_retries=3), make_mapping(), concurrency=1, batch_size=10)
        report = exporter.export(source, segment=SEGMENT)
        failed = [r for r in report.rejected if r.reason == "failed"]
        assert [r.row for r in failed] == list(range(1, 11))
        assert all("503" in r.message for r in failed)
        assert report.exported == 40
        assert not report.ok
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == exported_emails(report, source)
        assert_invariant(report, 50)


def test_stop_on_error_raises_with_the_partial_report() -> None:
    source = rows(50)
    with Sandbox() as sb:
        sb.inject("503", times=4, method="POST", path_prefix="/contacts")
        exporter = Exporter(
            make_client(sb, max_retries=3), make_mapping(), concurrency=1, batch_size=10, stop_on_error=True
        )
        with pytest.raises(ExportError) as caught:
            exporter.export(iter(source), segment=SEGMENT)
        partial = caught.value.report
        assert not partial.complete
        assert partial.stopped_by is not None
        assert "503" in partial.stopped_by
        assert partial.exported == 0
        assert partial.total_rows < 50  # it stopped reading
        assert_invariant(partial, partial.total_rows)
        assert len(paths(sb, "POST", "/contacts")) == 4


def test_a_wrong_key_aborts_before_anything_is_written() -> None:
    with Sandbox() as sb:
        client = AutopilotClient("0" * 32, base_url=sb.url, requests_per_second=10_000.0)
        with pytest.raises(AuthenticationError):
            Exporter(client, make_mapping()).export(rows(10), segment=SEGMENT)
        # The first calls (the custom-field preflight and the list look-up, two reads made side by
        # side) are answered 401: nothing else is sent.
        reads = [("GET", "/contacts/custom_fields", 401), ("GET", "/lists", 401)]
        assert sorted((r.method, r.path, r.status) for r in sb.requests) == reads
        assert sb.lists == []


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_401_mid_export_stops_everything(httpserver: Any, concurrency: int) -> None:
    bulk_calls: list[int] = []

    def bulk(request: Request) -> Response:
        bulk_calls.append(1)
        if len(bulk_calls) > 1:
            body = {"error": "Unauthorized", "message": "Provided autopilotapikey not valid."}
            return Response(json.dumps(body), status=401, content_type="application/json")
        sent = json.loads(request.get_data())["contacts"]
        answer = {c["Email"]: f"person_{i}" for i, c in enumerate(sent)}
        return Response(json.dumps({"contact_ids": list(answer.values()), "email_contact_map": answer}))

    lists = {"lists": [{"list_id": "contactlist_1", "title": SEGMENT}]}
    httpserver.expect_request("/v1/lists", method="GET").respond_with_json(lists)
    httpserver.expect_request("/v1/contacts", method="POST").respond_with_handler(bulk)
    httpserver.expect_request("/v1/list/contactlist_1/contact/user0@example.com").respond_with_data(
        "", status=404
    )
    httpserver.expect_request("/v1/list/contactlist_1/contact/person_0").respond_with_json({})
    client = AutopilotClient(
        "a" * 32,
        base_url=httpserver.url_for("/v1"),
        requests_per_second=10_000.0,
        backoff_factor=0.0,
        max_retries=1,
    )
    exporter = Exporter(client, make_mapping(), concurrency=concurrency, batch_size=10)
    with pytest.raises(AuthenticationError) as caught:
        exporter.export(rows(500), segment=SEGMENT)
    # Only requests already in flight when the 401 arrived may have gone out after it.
    assert 2 <= len(bulk_calls) <= 1 + concurrency
    assert "a" * 32 not in str(caught.value) + repr(caught.value) + repr(exporter)
    # The error carries the partial report: the batch Autopilot accepted stays exported, every row
    # read has its one outcome, and nothing in it is the key.
    partial = caught.value.export_report
    assert partial is not None
    assert not partial.complete
    assert partial.stopped_by is not None
    assert "AuthenticationError" in partial.stopped_by
    # With one worker the accepted batch was the probed one, checked before the 401; with more, the
    # accepted batch may be one still waiting for that check when the export aborted.
    assert partial.exported in ((10,) if concurrency == 1 else (0, 10))
    assert_invariant(partial, partial.total_rows)
    assert partial.total_rows < 500  # it stopped reading
    assert {r.reason for r in partial.rejected} == {"failed"}
    assert "a" * 32 not in json.dumps(partial.to_dict())


# -- options ---------------------------------------------------------------------------------------


def test_rows_past_the_profile_cap_are_over_limit() -> None:
    source = [{"Email": "bad", "first_name": None, "tier": None}, *rows(8)]
    with Sandbox() as sb:
        report = Exporter(make_client(sb), make_mapping(), max_profiles=5).export(source, segment=SEGMENT)
        over = [r for r in report.rejected if r.reason == "over_limit"]
        assert [r.row for r in over] == [7, 8, 9]
        # The rejection says how to lift the cap, in the library's and the command line's terms.
        assert "cap of 5 profiles" in over[0].message
        assert "max_profiles=" in over[0].message
        assert "--max-profiles" in over[0].message
        assert report.exported == 5
        assert len(sb.contacts) == 5
        assert_invariant(report, 9)


def test_plan_writes_nothing_and_estimates_the_cost() -> None:
    source = [*rows(250), {"Email": "nope"}]
    with Sandbox() as sb:
        client = make_client(sb, requests_per_second=5.0)
        report = Exporter(client, make_mapping(), max_profiles=200).plan(source, segment=SEGMENT)
        assert sb.requests == []
        assert report.dry_run
        assert report.exported == 200
        assert report.counts["over_limit"] == 50
        assert report.counts["invalid_email"] == 1
        assert report.planned_calls == 2 + 4 + 1  # bulk calls, list calls and check, the preflight
        assert report.planned_calls_worst == report.planned_calls + 200
        assert report.planned_min_duration == pytest.approx(report.planned_calls / 5.0)
        assert "would export" in report.summary()
        assert_invariant(report, 251)


def test_export_segments_gives_each_segment_its_own_list() -> None:
    with Sandbox() as sb:
        reports = Exporter(make_client(sb), make_mapping()).export_segments(
            {"VIP": rows(30), "Churn risk": rows(20, start=100)}
        )
        assert set(reports) == {"VIP", "Churn risk"}
        titles = {title: list_id for list_id, title in sb.lists}
        assert reports["VIP"].list_id == titles["VIP"]
        assert reports["Churn risk"].list_id == titles["Churn risk"]
        assert sb.list_members(titles["VIP"]) == exported_emails(reports["VIP"], rows(30))
        assert sb.list_members(titles["Churn risk"]) == exported_emails(
            reports["Churn risk"], rows(20, start=100)
        )


def test_progress_callback_sees_every_batch_and_the_end() -> None:
    seen: list[Progress] = []
    with Sandbox() as sb:
        exporter = Exporter(make_client(sb), make_mapping(), on_progress=seen.append, batch_size=20)
        report = exporter.export(rows(100), segment=SEGMENT)
    assert len(seen) >= 5
    assert all(isinstance(p, Progress) for p in seen)
    assert [p.rows_seen for p in seen] == sorted(p.rows_seen for p in seen)
    last = seen[-1]
    assert (last.rows_seen, last.exported, last.rejected) == (100, report.exported, 0)
    assert last.api_calls == report.api_calls
    assert last.segment == SEGMENT


def test_progress_bar_uses_tqdm(capsys: pytest.CaptureFixture[str]) -> None:
    with Sandbox() as sb:
        Exporter(make_client(sb), make_mapping(), progress=True).export(rows(30), segment=SEGMENT)
    assert "30/30" in capsys.readouterr().err


def test_progress_bar_without_tqdm_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # what an environment without tqdm looks like
    with Sandbox() as sb, pytest.raises(ConfigurationError, match=r"autopilot-segments\[progress\]"):
        Exporter(make_client(sb), make_mapping(), progress=True)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"batch_size": 101}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_profiles": -1}, "max_profiles"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], fragment: str) -> None:
    with Sandbox() as sb, pytest.raises(ConfigurationError, match=fragment):
        Exporter(make_client(sb), make_mapping(), **options)


def test_auto_concurrency_keeps_the_rate_busy() -> None:
    assert auto_concurrency(5.0) == 4
    assert auto_concurrency(20.0) * 4 >= 20  # 0.25 s latency needs >= 5 in flight at 20 r/s
    assert auto_concurrency(10_000.0) == 32


def test_the_input_is_streamed_not_materialised() -> None:
    pulled = 0
    at_first_progress: list[int] = []

    def generate() -> Iterator[Mapping[str, Any]]:
        nonlocal pulled
        for row in rows(3000):
            pulled += 1
            yield row

    def on_progress(p: Progress) -> None:
        if not at_first_progress:
            at_first_progress.append(pulled)

    with Sandbox() as sb:
        exporter = Exporter(make_client(sb), make_mapping(), concurrency=2, on_progress=on_progress)
        report = exporter.export(generate(), segment=SEGMENT)
    assert report.exported == 3000
    # Read-ahead is bounded by the in-flight window (2 x concurrency batches), not by the input size.
    assert at_first_progress[0] <= (2 * 2 + 1) * 100


def test_info_logs_carry_counts_and_no_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="autopilot_segments")
    with Sandbox() as sb:
        Exporter(make_client(sb), make_mapping()).export([*rows(15), {"Email": "bad"}], segment=SEGMENT)
        key = sb.api_key
    info = [r.getMessage() for r in caplog.records if r.name == "autopilot_segments.exporter"]
    assert any("15 exported" in line for line in info)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "example.com" not in text.lower()
    assert "First1" not in text
    assert key not in text


class _SkipEven:
    def should_send(self, contact: Any) -> bool:
        return bool(contact.row % 2 == 1)


class _Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def acknowledged(self, entries: Any) -> None:
        self.batches.append(list(entries))


def test_the_incremental_seams_filter_rows_and_see_every_acknowledged_batch() -> None:
    source = rows(30)
    sink = _Recorder()
    with Sandbox() as sb:
        exporter = Exporter(make_client(sb), make_mapping(), batch_size=5)
        report = exporter._export(source, segment=SEGMENT, send_filter=_SkipEven(), sink=sink)
        assert report.unchanged == 15
        assert report.exported == 15
        entries = [e for batch in sink.batches for e in batch]
        assert sorted(e.row for e in entries) == list(range(1, 31, 2))
        assert all(e.contact_id == sb.contacts[e.email]["contact_id"] for e in entries)
        assert all(e.payload["Email"] == e.email for e in entries)
        assert report.list_id is not None
        assert sb.list_members(report.list_id) == {e.email for e in entries}
        assert_invariant(report, 30)


def test_an_empty_input_stops_a_stateless_export_before_anything_is_written() -> None:
    with Sandbox() as sb:
        client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000)
        exporter = Exporter(client, FieldMapping(email="email"))
        with pytest.raises(GuardrailError, match="force=True") as caught:
            exporter.export(iter([]), segment="Empty")
        assert caught.value.details["reason"] == "empty_input"
        assert sb.requests == []  # not even the list lookup
        assert "the input is empty" in exporter.plan([], segment="Empty").list_note
        forced = exporter.export([], segment="Empty", force=True)
        assert forced.total_rows == 0
        assert sb.lists == [(forced.list_id, "Empty")]


@given(
    members=st.lists(st.from_regex(r"[a-z]{1,6}@[a-z]{1,5}\.com", fullmatch=True), max_size=30),
    others=st.lists(st.from_regex(r"[a-z]{1,6}@[a-z]{1,5}\.org", fullmatch=True), max_size=10),
)
def test_the_member_set_knows_exactly_its_normalised_emails(members: list[str], others: list[str]) -> None:
    member_set = MemberSet.read([*(f" {m.upper()} " for m in members), None])
    assert len(member_set) == len(members)
    assert member_set.nbytes == 8 * len(members)
    assert all(m in member_set and m.title() in member_set for m in members)
    assert not any(o in member_set for o in others)
