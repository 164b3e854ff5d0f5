"""The export state store and the disk spool: file safety, privacy, journal, leavers, crash consistency."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot_segments import StateError
from autopilot_segments._export.spool import Spool
from autopilot_segments._state import (
    HASH_BYTES,
    SCHEMA_VERSION,
    ExportState,
    KnownContact,
    RunRecord,
    needs_sending,
)

ACCOUNT = hashlib.sha256(b"fake-key-for-tests").hexdigest()
LIST = "contactlist_0001"


class FakeClock:
    """Aware datetimes one second apart, so the journal's times are predictable."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite"


@pytest.fixture
def state(state_path: Path) -> Iterator[ExportState]:
    with ExportState.open(state_path, account=ACCOUNT, timeout=0.05, clock=FakeClock()) as store:
        yield store


def _entries(store: ExportState, emails: list[str], tag: str = "") -> list[tuple[bytes, str, bytes]]:
    return [
        (store.hash_email(e), f"person_{e}{tag}", store.hash_payload({"Email": e, "tag": tag}))
        for e in emails
    ]


def _snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), path.stat().st_mtime_ns, sorted(p.name for p in path.parent.iterdir())


# -- schema, reopening, refusing bad files ---------------------------------------------------------


def test_open_creates_a_versioned_schema(state_path: Path) -> None:
    ExportState.open(state_path, account=ACCOUNT).close()
    raw = sqlite3.connect(state_path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"meta", "contacts", "runs"} <= tables
        salt = raw.execute("SELECT value FROM meta WHERE key = 'salt'").fetchone()[0]
        assert isinstance(salt, bytes)
        assert len(salt) == 32
    finally:
        raw.close()


def test_reopening_keeps_contacts_and_salt(state_path: Path) -> None:
    with ExportState.open(state_path, account=ACCOUNT) as store:
        run = store.begin_run("vip", LIST)
        first_hash = store.hash_email("ann@example.com")
        store.record_acknowledged(LIST, _entries(store, ["ann@example.com"]), run_id=run.run_id)
    with ExportState.open(state_path, account=ACCOUNT) as store:
        assert store.hash_email("ann@example.com") == first_hash
        assert store.lookup(LIST, [first_hash])[first_hash].contact_id == "person_ann@example.com"


def test_accounts_in_one_file_do_not_see_each_other(state_path: Path) -> None:
    with ExportState.open(state_path, account=ACCOUNT) as store:
        run = store.begin_run("vip", LIST)
        store.record_acknowledged(LIST, _entries(store, ["ann@example.com"]), run_id=run.run_id)
        email_hash = store.hash_email("ann@example.com")
    with ExportState.open(state_path, account="0" * 64) as other:
        assert other.lookup(LIST, [email_hash]) == {}
        assert other.member_count(LIST) == 0
        assert other.history("vip") == []


def test_a_newer_schema_version_is_refused_and_the_file_left_unchanged(state_path: Path) -> None:
    ExportState.open(state_path, account=ACCOUNT).close()
    raw = sqlite3.connect(state_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    before = _snapshot(state_path)

    with pytest.raises(StateError, match="newer version") as excinfo:
        ExportState.open(state_path, account=ACCOUNT, timeout=0.05)

    assert "not changed" in str(excinfo.value)
    assert _snapshot(state_path) == before


def test_a_corrupt_file_is_refused_and_left_unchanged(state_path: Path) -> None:
    state_path.write_bytes(b"this is not a database at all " * 200)
    before = _snapshot(state_path)

    with pytest.raises(StateError, match="corrupt"):
        ExportState.open(state_path, account=ACCOUNT, timeout=0.05)

    assert _snapshot(state_path) == before


def test_a_foreign_sqlite_database_is_refused_and_left_unchanged(state_path: Path) -> None:
    raw = sqlite3.connect(state_path)
    raw.execute("CREATE TABLE customers (email TEXT)")
    raw.commit()
    raw.close()
    before = _snapshot(state_path)

    with pytest.raises(StateError, match="not an autopilot-segments state file"):
        ExportState.open(state_path, account=ACCOUNT, timeout=0.05)

    assert _snapshot(state_path) == before


def test_a_file_with_a_write_transaction_held_elsewhere_is_locked(state_path: Path) -> None:
    ExportState.open(state_path, account=ACCOUNT).close()
    holder = sqlite3.connect(state_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateError, match="locked"):
            ExportState.open(state_path, account=ACCOUNT, timeout=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    ExportState.open(state_path, account=ACCOUNT, timeout=0.05).close()


def test_one_open_state_owns_the_file_until_closed(state_path: Path) -> None:
    first = ExportState.open(state_path, account=ACCOUNT, timeout=0.05)
    with pytest.raises(StateError, match="locked"):
        ExportState.open(state_path, account=ACCOUNT, timeout=0.05)
    reader = sqlite3.connect(state_path, timeout=0.05)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        reader.execute("SELECT count(*) FROM contacts").fetchone()
    reader.close()
    first.close()
    ExportState.open(state_path, account=ACCOUNT, timeout=0.05).close()


def test_a_closed_state_raises_state_error(state: ExportState) -> None:
    state.close()
    state.close()  # idempotent
    with pytest.raises(StateError, match="closed"):
        state.member_count(LIST)


def test_repr_shows_only_path_and_status(state: ExportState, state_path: Path) -> None:
    assert repr(state) == f"ExportState(path={str(state_path)!r}, closed=False)"


# -- recording and looking up ----------------------------------------------------------------------


def test_record_and_lookup_round_trip(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)
    emails = [f"user{i}@example.com" for i in range(1200)]  # more than one IN (...) chunk
    state.record_acknowledged(LIST, _entries(state, emails), run_id=run.run_id)

    found = state.lookup(LIST, [state.hash_email(e) for e in [*emails, "stranger@example.com"]])

    assert len(found) == 1200
    known = found[state.hash_email("user7@example.com")]
    assert known == KnownContact(
        contact_id="person_user7@example.com",
        payload_hash=state.hash_payload({"Email": "user7@example.com", "tag": ""}),
        acked_run=run.run_id,
    )
    assert state.member_count(LIST) == 1200
    assert state.member_count("contactlist_other") == 0


def test_recording_again_replaces_payload_hash_and_run(state: ExportState) -> None:
    first = state.begin_run("vip", LIST)
    state.record_acknowledged(LIST, _entries(state, ["ann@example.com"]), run_id=first.run_id)
    state.finish_run(first.run_id, outcome="completed", counts={})
    second = state.begin_run("vip", LIST)
    state.record_acknowledged(LIST, _entries(state, ["ann@example.com"], tag="v2"), run_id=second.run_id)

    known = state.lookup(LIST, [state.hash_email("ann@example.com")])[state.hash_email("ann@example.com")]

    assert known.contact_id == "person_ann@example.comv2"
    assert known.payload_hash == state.hash_payload({"Email": "ann@example.com", "tag": "v2"})
    assert known.acked_run == second.run_id
    assert state.member_count(LIST) == 1


def test_a_batch_that_fails_midway_records_nothing(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)
    state.record_acknowledged(LIST, _entries(state, ["kept@example.com"]), run_id=run.run_id)
    good = _entries(state, [f"user{i}@example.com" for i in range(50)])

    def failing_batch() -> Iterator[tuple[bytes, str, bytes]]:
        yield from good[:30]
        raise OSError("disk went away")

    with pytest.raises(OSError, match="disk went away"):
        state.record_acknowledged(LIST, failing_batch(), run_id=run.run_id)
    bad_entry = (b"short", "person_x", state.hash_payload({}))
    with pytest.raises(ValueError, match="email_hash"):
        state.record_acknowledged(LIST, [*good[:30], bad_entry, *good[30:]], run_id=run.run_id)

    assert state.lookup(LIST, [h for h, _, _ in good]) == {}
    assert state.member_count(LIST) == 1


def test_email_hashes_are_normalised_and_salted_per_file(tmp_path: Path) -> None:
    with (
        ExportState.open(tmp_path / "a.sqlite", account=ACCOUNT) as a,
        ExportState.open(tmp_path / "b.sqlite", account=ACCOUNT) as b,
    ):
        assert a.hash_email("Ann@Example.com ") == a.hash_email("ann@example.com")
        assert len(a.hash_email("ann@example.com")) == HASH_BYTES
        assert a.hash_email("ann@example.com") != b.hash_email("ann@example.com")
        assert a.hash_payload({"Email": "x"}) != b.hash_payload({"Email": "x"})
        assert a.hash_email("ann@example.com") != a.hash_email("anne@example.com")


def test_payload_hash_ignores_key_order_but_not_values(state: ExportState) -> None:
    payload = {"Email": "a@b.c", "FirstName": "Ann", "custom": {"integer--Points": 3, "string--Tier": "g"}}
    reordered = {"custom": {"string--Tier": "g", "integer--Points": 3}, "FirstName": "Ann", "Email": "a@b.c"}
    assert state.hash_payload(payload) == state.hash_payload(reordered)
    assert state.hash_payload(payload) != state.hash_payload({**payload, "FirstName": "Anne"})
    assert state.hash_payload({"n": 1}) != state.hash_payload({"n": "1"})


ascii_emails = st.emails().filter(lambda e: e.isascii())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=ascii_emails)
def test_hash_email_is_insensitive_to_case_and_surrounding_space(state: ExportState, email: str) -> None:
    assert state.hash_email(f"  {email.swapcase()}\t") == state.hash_email(email)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.sampled_from([f"u{i}@ex.com" for i in range(30)]), st.integers(0, 3))),
        min_size=1,
        max_size=5,
    )
)
def test_lookup_returns_the_last_acknowledged_version_of_each_contact(
    state: ExportState, batches: list[list[tuple[str, int]]]
) -> None:
    list_id = f"contactlist_{uuid.uuid4().hex}"  # a fresh list per example in the shared store
    run = state.begin_run("prop", list_id)
    expected: dict[str, int] = {}
    for batch in batches:
        entries = [
            (state.hash_email(e), f"person_{e}_{v}", state.hash_payload({"Email": e, "v": v}))
            for e, v in batch
        ]
        state.record_acknowledged(list_id, entries, run_id=run.run_id)
        expected.update(batch)  # within a batch, the last entry for an email wins, as in SQLite
    state.finish_run(run.run_id, outcome="completed", counts={})

    everyone = [f"u{i}@ex.com" for i in range(30)]
    found = state.lookup(list_id, [state.hash_email(e) for e in everyone])

    assert set(found) == {state.hash_email(e) for e in expected}
    for email, version in expected.items():
        known = found[state.hash_email(email)]
        assert known.contact_id == f"person_{email}_{version}"
        assert known.payload_hash == state.hash_payload({"Email": email, "v": version})
    assert state.member_count(list_id) == len(expected)


def test_concurrent_recording_from_threads_loses_nothing(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)

    def worker(n: int) -> None:
        for b in range(10):
            state.record_acknowledged(
                LIST, _entries(state, [f"t{n}b{b}i{i}@ex.com" for i in range(20)]), run_id=run.run_id
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state.member_count(LIST) == 4 * 10 * 20


# -- privacy ----------------------------------------------------------------------------------------


def test_the_state_file_holds_no_email_name_value_or_key(tmp_path: Path) -> None:
    api_key = "5f2b9c1e8d7a4b3c9e0f1a2b3c4d5e6f"
    fingerprint = hashlib.sha256(api_key.encode()).hexdigest()  # what a client fingerprint looks like
    people = [
        ("Zebulon.Quackenbush@Example.org", "Zebulon", "Quackenbush", "Vermilionesque"),
        ("ottilie.fairweather@example.net", "Ottilie", "Fairweather", "Periwinkleish"),
    ]
    path = tmp_path / "state.sqlite"
    list_id = "contactlist_PositiveControl"
    secrets_in_clear: list[str] = [api_key, fingerprint]
    for email, first, last, colour in people:
        secrets_in_clear += [email, email.split("@")[0], first, last, colour, "+44 7700 900123"]

    def raw_bytes() -> bytes:
        return b"".join(
            p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(path.name) and p.is_file()
        )

    def assert_nothing_in_clear(blob: bytes) -> None:
        assert list_id.encode() in blob  # positive control: the grep does find stored text
        for text in secrets_in_clear:
            for variant in {text, text.lower(), text.upper()}:
                for encoding in ("utf-8", "utf-16-le"):
                    assert variant.encode(encoding) not in blob, variant

    with ExportState.open(path, account=fingerprint) as store:
        run = store.begin_run("vip customers", list_id)
        entries = []
        for email, first, last, colour in people:
            payload = {
                "Email": email,
                "FirstName": first,
                "LastName": last,
                "Phone": "+44 7700 900123",
                "custom": {"string--Favourite--Colour": colour},
            }
            entries.append((store.hash_email(email), f"person_{uuid.uuid4()}", store.hash_payload(payload)))
        store.record_acknowledged(list_id, entries, run_id=run.run_id)
        store.mark_seen(run.run_id, [store.hash_email(people[0][0])])
        store.finish_run(run.run_id, outcome="completed", counts={"exported": 2})
        assert_nothing_in_clear(raw_bytes())  # database and write-ahead log while open
    assert_nothing_in_clear(raw_bytes())  # and after the checkpoint at close


# -- run journal -----------------------------------------------------------------------------------


def test_journal_records_start_end_outcome_and_counts(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)
    assert run.outcome == "running"
    assert run.finished_at is None

    done = state.finish_run(run.run_id, outcome="completed", counts={"exported": 3, "unchanged": 2})

    assert done.outcome == "completed"
    assert done.counts == {"exported": 3, "unchanged": 2}
    assert done.finished_at is not None
    assert done.finished_at > done.started_at
    assert state.history("vip") == [done]
    assert state.history("other") == []
    with pytest.raises(ValueError, match="not a running run"):
        state.finish_run(run.run_id, outcome="failed", counts={})
    with pytest.raises(ValueError, match="outcome"):
        state.finish_run(state.begin_run("vip", LIST).run_id, outcome="running", counts={})


def test_history_is_oldest_first_and_filters_by_list(state: ExportState) -> None:
    ids = []
    for list_id in (LIST, "contactlist_b", LIST):
        run = state.begin_run("vip", list_id)
        state.finish_run(run.run_id, outcome="completed", counts={})
        ids.append(run.run_id)
    assert [r.run_id for r in state.history("vip")] == ids
    assert [r.run_id for r in state.history("vip", list_id=LIST)] == [ids[0], ids[2]]


def test_a_run_left_running_is_marked_interrupted_when_the_file_is_reopened(state_path: Path) -> None:
    with ExportState.open(state_path, account=ACCOUNT) as store:
        dead = store.begin_run("vip", LIST)
        other = store.begin_run("newsletter", "contactlist_n")
    with ExportState.open(state_path, account=ACCOUNT) as store:
        assert store.run(dead.run_id).outcome == "interrupted"
        assert store.run(other.run_id).outcome == "interrupted"
        assert store.run(dead.run_id).finished_at is None
        resumed = store.begin_run("vip", LIST)
        assert resumed.resumes == dead.run_id
        assert resumed.since_run == dead.since_run
        with pytest.raises(KeyError):
            store.run(10_000)


def test_resume_chains_only_after_interrupted_or_failed_runs_of_the_same_mode(state: ExportState) -> None:
    first = state.begin_run("vip", LIST, full=True)
    state.finish_run(first.run_id, outcome="failed", counts={})
    second = state.begin_run("vip", LIST, full=True)
    state.finish_run(second.run_id, outcome="interrupted", counts={})
    third = state.begin_run("vip", LIST, full=True)
    assert (second.resumes, second.since_run) == (first.run_id, first.run_id)
    assert (third.resumes, third.since_run) == (second.run_id, first.run_id)
    state.finish_run(third.run_id, outcome="completed", counts={})

    after_success = state.begin_run("vip", LIST, full=True)
    state.finish_run(after_success.run_id, outcome="failed", counts={})
    other_mode = state.begin_run("vip", LIST, full=False)

    assert (after_success.resumes, after_success.since_run) == (None, after_success.run_id)
    assert (other_mode.resumes, other_mode.since_run) == (None, other_mode.run_id)


def _run(run_id: int, *, full: bool, since_run: int) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        segment="s",
        list_id=LIST,
        started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        finished_at=None,
        outcome="running",
        full=full,
        since_run=since_run,
    )


def test_needs_sending_implements_incremental_full_and_resumed_full() -> None:
    same, other = b"p" * HASH_BYTES, b"q" * HASH_BYTES
    known_from_run_3 = KnownContact(contact_id="person_1", payload_hash=same, acked_run=3)
    incremental = _run(5, full=False, since_run=5)
    fresh_full = _run(5, full=True, since_run=5)
    resumed_full = _run(5, full=True, since_run=3)

    assert needs_sending(incremental, None, same)
    assert needs_sending(incremental, known_from_run_3, other)
    assert not needs_sending(incremental, known_from_run_3, same)
    assert needs_sending(fresh_full, known_from_run_3, same)
    assert not needs_sending(resumed_full, known_from_run_3, same)
    assert needs_sending(resumed_full, known_from_run_3, other)


def test_run_counts_must_be_integers(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)
    with pytest.raises(ValueError, match="counts"):
        state.finish_run(run.run_id, outcome="completed", counts={"exported": 1.5})  # type: ignore[dict-item]
    assert state.run(run.run_id).outcome == "running"


# -- seen set, leavers, forget ---------------------------------------------------------------------


def test_leavers_are_known_contacts_not_seen_in_this_run(state: ExportState) -> None:
    old = state.begin_run("vip", LIST)
    emails = [f"m{i}@ex.com" for i in range(10)]
    state.record_acknowledged(LIST, _entries(state, emails), run_id=old.run_id)
    state.record_acknowledged("contactlist_other", _entries(state, ["x@ex.com"]), run_id=old.run_id)
    state.finish_run(old.run_id, outcome="completed", counts={})

    run = state.begin_run("vip", LIST)
    state.mark_seen(run.run_id, [state.hash_email(e) for e in [*emails[:7], "new@ex.com"]])
    state.mark_seen(run.run_id, [state.hash_email(emails[0])])  # marking twice is harmless

    leavers = list(state.leavers(LIST, run.run_id))

    assert state.count_seen(run.run_id) == 8
    assert state.count_leavers(LIST, run.run_id) == 3
    assert sorted(leavers) == sorted((state.hash_email(e), f"person_{e}") for e in emails[7:])

    state.forget(LIST, [h for h, _ in leavers])
    assert state.count_leavers(LIST, run.run_id) == 0
    assert state.member_count(LIST) == 7
    assert state.member_count("contactlist_other") == 1

    state.finish_run(run.run_id, outcome="completed", counts={"removed": 3})
    assert state.count_seen(run.run_id) == 0  # the seen set goes with the run


def test_leavers_page_through_many_and_tolerate_forget_while_iterating(state: ExportState) -> None:
    run = state.begin_run("vip", LIST)
    emails = [f"m{i}@ex.com" for i in range(2500)]  # more than two pages of leavers
    state.record_acknowledged(LIST, _entries(state, emails), run_id=run.run_id)
    state.mark_seen(run.run_id, [state.hash_email(e) for e in emails[:100]])

    removed = 0
    for email_hash, _contact_id in state.leavers(LIST, run.run_id):
        state.forget(LIST, [email_hash])
        removed += 1

    assert removed == 2400
    assert state.member_count(LIST) == 100


def test_seen_sets_are_not_written_to_the_state_file(state_path: Path) -> None:
    with ExportState.open(state_path, account=ACCOUNT) as store:
        run = store.begin_run("vip", LIST)
        store.mark_seen(run.run_id, [store.hash_email("a@ex.com")])
    with ExportState.open(state_path, account=ACCOUNT) as store:
        assert store.count_seen(run.run_id) == 0


# -- spool ------------------------------------------------------------------------------------------


def test_spool_round_trips_in_order_with_flat_memory(tmp_path: Path) -> None:
    count = 20_000
    payload_tail = "x" * 300  # ~7 MB of spooled data: far above the memory bound asserted below

    tracemalloc.start()
    try:
        with Spool.create(directory=tmp_path) as spool:
            for row in range(1, count + 1):
                spool.append(row, f"user{row}@ex.com", {"Email": f"user{row}@ex.com", "Note": payload_tail})
            assert len(spool) == count
            seen = 0
            for expected_row, item in enumerate(spool, start=1):
                assert item.row == expected_row
                assert item.email == f"user{expected_row}@ex.com"
                assert item.payload == {"Email": item.email, "Note": payload_tail}
                seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert seen == count
    assert peak < 3 * 1024 * 1024, peak


def test_spool_is_anonymous_ordered_and_read_only_once_reading_starts(tmp_path: Path) -> None:
    spool = Spool.create(directory=tmp_path)
    spool.append(2, "b@ex.com", {"Email": "b@ex.com", "tags": ("x", "y"), "n": 1.5, "ok": True, "u": "é\n"})
    spool.append(1, "a@ex.com", {"Email": "a@ex.com"})
    if os.name == "posix":
        assert list(tmp_path.iterdir()) == []  # no named file with emails in it, even if killed now

    first = [(c.row, c.email, c.payload) for c in spool]
    again = [(c.row, c.email, c.payload) for c in spool]

    assert first == again
    assert first == [
        (2, "b@ex.com", {"Email": "b@ex.com", "tags": ["x", "y"], "n": 1.5, "ok": True, "u": "é\n"}),
        (1, "a@ex.com", {"Email": "a@ex.com"}),
    ]
    with pytest.raises(RuntimeError, match="appending is over"):
        spool.append(3, "c@ex.com", {})
    reader = iter(spool)
    next(reader)
    with pytest.raises(RuntimeError, match="already being read"):
        next(iter(spool))
    spool.close()
    assert spool.closed
    assert "ex.com" not in repr(spool)


# -- crash safety -----------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from autopilot_segments._state import ExportState

    store = ExportState.open(sys.argv[1], account=sys.argv[2])
    run = store.begin_run("crash", "contactlist_crash")
    batch = 0
    while True:
        entries = [
            (store.hash_email(f"b{batch}i{i}@ex.com"), f"person_{batch}_{i}", store.hash_payload({}))
            for i in range(100)
        ]
        store.record_acknowledged("contactlist_crash", entries, run_id=run.run_id)
        print(batch, flush=True)
        batch += 1
    """
)


@pytest.mark.parametrize("kill_after", [5, 23])
def test_sigkill_while_recording_leaves_every_batch_whole_or_absent(
    state_path: Path, kill_after: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(state_path), ACCOUNT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        confirmed = -1
        while confirmed < kill_after:
            line = process.stdout.readline() if process.stdout else b""
            assert line, process.stderr.read() if process.stderr else b""
            confirmed = int(line)
        process.kill()  # SIGKILL on POSIX: no cleanup, no atexit, no close()
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    with ExportState.open(state_path, account=ACCOUNT, timeout=0.05) as store:
        present = []
        for batch in range(confirmed + 200):
            hashes = [store.hash_email(f"b{batch}i{i}@ex.com") for i in range(100)]
            found = store.lookup("contactlist_crash", hashes)
            assert len(found) in (0, 100), (batch, len(found))
            if found:
                assert {k.contact_id for k in found.values()} == {f"person_{batch}_{i}" for i in range(100)}
                present.append(batch)
        assert present == list(range(len(present)))  # a prefix: no batch is missing in between
        assert len(present) > confirmed  # every confirmed commit survived the kill
        assert store.member_count("contactlist_crash") == 100 * len(present)
        [run] = store.history("crash")
        assert run.outcome == "interrupted"
