"""The export state: an embedded SQLite file recording what Autopilot acknowledged, per account and list.

For each contact Autopilot acknowledged, the store keeps its contact id, a salted hash of its normalised
email and a salted hash of the payload sent, keyed by a hash of the account fingerprint and the list id.
Nothing in the file is an email, a name, a field value or an API key in clear. See docs/state.md.

Design decisions that matter for crash safety:
- WAL journal with ``synchronous=NORMAL``: a committed transaction survives the death of the process
  (SIGKILL included); only a power loss can lose the last few commits, and losing an acknowledgement only
  makes the next run send that batch again (upserts are idempotent), it never loses a contact.
- ``locking_mode=EXCLUSIVE``: the file is locked from `ExportState.open` until `close`, so one process at
  a time owns it. A second opener gets `StateError("... locked ...")` instead of interleaving writes, and a
  run still marked "running" at open time is known to be dead: it is marked "interrupted".
- Every write is one transaction: a batch of acknowledgements is recorded completely or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Final, Literal, get_args

import attrs

from ._errors import StateError
from ._state_file import SCHEMA_VERSION, prepare_file, sqlite_errors

__all__ = [
    "HASH_BYTES",
    "RUN_OUTCOMES",
    "SCHEMA_VERSION",
    "ExportState",
    "KnownContact",
    "RunOutcome",
    "RunRecord",
    "needs_sending",
    "normalise_email_for_hash",
]

HASH_BYTES: Final = 16
"""Length of email and payload hashes: 128 bits, ample against collisions for any list size."""

RunOutcome = Literal["running", "completed", "failed", "interrupted", "guardrail"]
RUN_OUTCOMES: Final[tuple[str, ...]] = get_args(RunOutcome)
_FINAL_OUTCOMES: Final = frozenset(RUN_OUTCOMES) - {"running"}
_RESUMABLE_OUTCOMES: Final = frozenset({"interrupted", "failed"})

# Stay below SQLITE_MAX_VARIABLE_NUMBER of old SQLite builds (999).
_IN_CHUNK: Final = 500
_LEAVER_PAGE: Final = 1000
_VERDICTS: Final = frozenset({"honoured", "ignored"})
_LEAVERS_WHERE: Final = (
    "FROM contacts AS c WHERE c.account = ? AND c.list_id = ? AND NOT EXISTS "
    "(SELECT 1 FROM temp.seen AS s WHERE s.run_id = ? AND s.email_hash = c.email_hash)"
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def normalise_email_for_hash(email: str) -> str:
    """The form of an email that is hashed: NFC, trimmed, lower-cased.

    Idempotent, so hashing an email the mapping already normalised gives the same hash.
    """
    return unicodedata.normalize("NFC", email).strip().lower()


def _canonical_json(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _account_key(account: str) -> bytes:
    # A second one-way hash: even if a caller passed the API key itself by mistake, the file holds
    # only this digest, never the string it was given.
    return hashlib.sha256(b"autopilot-segments/account\0" + account.encode("utf-8")).digest()[:HASH_BYTES]


@attrs.frozen(kw_only=True)
class KnownContact:
    """What the state knows about one contact on one list: what Autopilot last acknowledged."""

    contact_id: str
    payload_hash: bytes
    acked_run: int
    """The run that recorded the acknowledgement."""


def _check_counts(_instance: object, _attribute: object, value: Mapping[str, int]) -> None:
    for key, count in value.items():
        if not isinstance(key, str) or not isinstance(count, int) or isinstance(count, bool):
            raise ValueError(f"run counts must map str to int, got {key!r}: {count!r}")


@attrs.frozen(kw_only=True)
class RunRecord:
    """One export run in the journal.

    `since_run` is the first run of the logical export this run belongs to: a run that continues an
    interrupted or failed run of the same segment, list and mode shares its `since_run`, so a full resend
    resumed after a crash does not send again what the dead run already had acknowledged (see
    `needs_sending`). `resumes` is the run this one directly continues, if any. `finished_at` stays None
    for a run found interrupted: when exactly it died is unknown.
    """

    run_id: int
    segment: str
    list_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: RunOutcome = attrs.field(validator=attrs.validators.in_(RUN_OUTCOMES))
    counts: Mapping[str, int] = attrs.field(factory=dict, validator=_check_counts)
    full: bool = False
    since_run: int
    resumes: int | None = None


def needs_sending(run: RunRecord, known: KnownContact | None, payload_hash: bytes) -> bool:
    """Whether a contact must be sent in `run`, given what the state knows about it.

    Incremental runs send new contacts and changed payloads. Full runs (`run.full`) send everything
    except what this logical run (this run, or the interrupted runs it resumes) already had acknowledged
    with the same payload.
    """
    if known is None or known.payload_hash != payload_hash:
        return True
    if run.full:
        return known.acked_run < run.since_run
    return False


def _validated_hash(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise ValueError(f"{what} must be {HASH_BYTES} bytes from ExportState.hash_*(), got {value!r}")
    return value


@attrs.define(repr=False)
class ExportState:
    """The export state file: what Autopilot acknowledged, per account and list, plus a run journal.

    Create with `ExportState.open(path, account=client.account_fingerprint)`; use as a context manager
    or call `close()`. One instance owns the file exclusively until closed. Thread-safe: every operation
    takes an internal lock, so exporter worker threads may record acknowledgements directly.
    """

    _connection: sqlite3.Connection
    _path: str
    _account: bytes
    _email_key: bytes
    _payload_key: bytes
    _clock: Callable[[], datetime]
    _lock: threading.RLock = attrs.field(factory=threading.RLock)
    _closed: bool = False

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        account: str,
        timeout: float = 1.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> ExportState:
        """Open (creating if needed) the state file at `path` for the account `account`.

        `account` is `client.account_fingerprint`; only a hash of it is stored. `timeout` is how long to
        wait for a lock held by someone else before giving up with `StateError`. `clock` gives aware
        datetimes for the run journal. Raises `StateError` if the file is locked, corrupt, not a state
        file or written by a newer version; in those cases the file is not modified.
        """
        if not isinstance(account, str) or not account:
            raise ValueError("account must be the non-empty client.account_fingerprint")
        where = os.fspath(path)
        try:
            connection = sqlite3.connect(
                where, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StateError(f"cannot open state file {where}: {exc}") from exc
        try:
            salt = prepare_file(connection, where, clock)
        except BaseException:
            connection.close()
            raise
        return cls(
            connection=connection,
            path=where,
            account=_account_key(account),
            email_key=hashlib.sha256(salt + b"\0email").digest(),
            payload_key=hashlib.sha256(salt + b"\0payload").digest(),
            clock=clock,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """Where the state file is."""
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the file and release its lock. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._connection.close()

    def __enter__(self) -> ExportState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ExportState(path={self._path!r}, closed={self._closed})"

    def _live(self) -> sqlite3.Connection:
        if self._closed:
            raise StateError(f"state file {self._path} is closed")
        return self._connection

    @contextmanager
    def _reading(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlite_errors(self._path, doing):
            yield self._live()

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlite_errors(self._path, doing):
            connection = self._live()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    # -- hashing -----------------------------------------------------------------------------------

    def hash_email(self, email: str) -> bytes:
        """Salted one-way hash of the normalised email (HMAC-SHA256 with this file's salt, truncated)."""
        normalised = normalise_email_for_hash(email).encode("utf-8")
        return hmac.digest(self._email_key, normalised, "sha256")[:HASH_BYTES]

    def hash_payload(self, payload: Mapping[str, Any]) -> bytes:
        """Salted hash of the canonical JSON of a payload: key order does not matter, values do."""
        return hmac.digest(self._payload_key, _canonical_json(payload), "sha256")[:HASH_BYTES]

    # -- acknowledged contacts ---------------------------------------------------------------------

    def lookup(self, list_id: str, email_hashes: Sequence[bytes]) -> dict[bytes, KnownContact]:
        """What the state knows about these contacts on `list_id`; unknown hashes are absent."""
        found: dict[bytes, KnownContact] = {}
        with self._reading("lookup") as connection:
            for start in range(0, len(email_hashes), _IN_CHUNK):
                chunk = list(email_hashes[start : start + _IN_CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    # Only placeholders are interpolated: the query stays parameterised.
                    "SELECT email_hash, contact_id, payload_hash, acked_run FROM contacts "  # noqa: S608
                    f"WHERE account = ? AND list_id = ? AND email_hash IN ({marks})",
                    (self._account, list_id, *chunk),
                )
                for email_hash, contact_id, payload_hash, acked_run in rows:
                    found[email_hash] = KnownContact(
                        contact_id=contact_id, payload_hash=payload_hash, acked_run=acked_run
                    )
        return found

    def record_acknowledged(
        self, list_id: str, entries: Iterable[tuple[bytes, str, bytes]], *, run_id: int
    ) -> int:
        """Record contacts Autopilot acknowledged on `list_id`, as ONE transaction; returns how many.

        `entries` are `(email_hash, contact_id, payload_hash)`. Call only after the batch was
        acknowledged. If anything fails (a bad entry, the disk), nothing of the batch is recorded.
        """
        account = self._account

        def rows() -> Iterator[tuple[bytes, str, bytes, str, bytes, int]]:
            for email_hash, contact_id, payload_hash in entries:
                if not isinstance(contact_id, str) or not contact_id:
                    raise ValueError(f"contact_id must be a non-empty string, got {contact_id!r}")
                yield (
                    account,
                    list_id,
                    _validated_hash(email_hash, "email_hash"),
                    contact_id,
                    _validated_hash(payload_hash, "payload_hash"),
                    run_id,
                )

        with self._transaction("recording acknowledged contacts") as connection:
            cursor = connection.executemany(
                "INSERT OR REPLACE INTO contacts (account, list_id, email_hash, contact_id, payload_hash, "
                "acked_run) VALUES (?, ?, ?, ?, ?, ?)",
                rows(),
            )
            return max(cursor.rowcount, 0)

    def forget(self, list_id: str, email_hashes: Iterable[bytes]) -> int:
        """Drop contacts from `list_id` (after Autopilot acknowledged their removal); one transaction."""
        with self._transaction("forgetting contacts") as connection:
            cursor = connection.executemany(
                "DELETE FROM contacts WHERE account = ? AND list_id = ? AND email_hash = ?",
                ((self._account, list_id, h) for h in email_hashes),
            )
            return max(cursor.rowcount, 0)

    def member_count(self, list_id: str) -> int:
        """How many contacts the state knows on `list_id`: the base of the removal guard rail."""
        with self._reading("counting members") as connection:
            row = connection.execute(
                "SELECT count(*) FROM contacts WHERE account = ? AND list_id = ?", (self._account, list_id)
            ).fetchone()
        return int(row[0])

    # -- per-list facts ----------------------------------------------------------------------------

    def _fact_key(self, fact: str, list_id: str) -> str:
        return f"{fact}:{self._account.hex()}:{list_id}"

    def membership_verdict(self, list_id: str) -> str | None:
        """The `_autopilot_list` verdict verified on an earlier run for this account and list, if any."""
        with self._reading("reading a list fact") as connection:
            row = connection.execute(
                "SELECT value FROM meta WHERE key = ?", (self._fact_key("membership", list_id),)
            ).fetchone()
        value = None if row is None else row[0]
        return value if value in _VERDICTS else None

    def remember_membership_verdict(self, list_id: str, verdict: str) -> None:
        """Remember a verified `_autopilot_list` verdict ("honoured" or "ignored") for this list."""
        if verdict not in _VERDICTS:
            raise ValueError(f"verdict must be one of {sorted(_VERDICTS)}, got {verdict!r}")
        with self._transaction("remembering a list fact") as connection:
            connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (self._fact_key("membership", list_id), verdict),
            )

    # -- seen set and leavers ----------------------------------------------------------------------

    def mark_seen(self, run_id: int, email_hashes: Iterable[bytes]) -> None:
        """Remember that these contacts are in the rows of `run_id` (for `leavers`).

        Pass the hashes in batches (e.g. per 1,000 rows): each call is one transaction. The seen set
        lives in a SQLite temporary table (a private temp file with a bounded cache, not Python memory,
        never the state file); it is dropped by `finish_run` or `close`.
        """
        # Sorted inserts touch B-tree pages in order: much faster than random 16-byte keys.
        ordered = sorted(email_hashes)
        with self._transaction("marking contacts seen") as connection:
            connection.executemany(
                "INSERT OR IGNORE INTO temp.seen (run_id, email_hash) VALUES (?, ?)",
                ((run_id, h) for h in ordered),
            )

    def count_seen(self, run_id: int) -> int:
        with self._reading("counting seen contacts") as connection:
            row = connection.execute("SELECT count(*) FROM temp.seen WHERE run_id = ?", (run_id,)).fetchone()
        return int(row[0])

    def count_leavers(self, list_id: str, run_id: int) -> int:
        """How many contacts known on `list_id` were not marked seen in `run_id`."""
        with self._reading("counting leavers") as connection:
            row = connection.execute(
                f"SELECT count(*) {_LEAVERS_WHERE}",
                (self._account, list_id, run_id),
            ).fetchone()
        return int(row[0])

    def leavers(self, list_id: str, run_id: int) -> Iterator[tuple[bytes, str]]:
        """Contacts known on `list_id` but not seen in `run_id`: `(email_hash, contact_id)`, hash order.

        Read in pages, so calling `forget` while iterating is safe and memory stays flat.
        """
        after = b""
        while True:
            with self._reading("listing leavers") as connection:
                page = connection.execute(
                    f"SELECT c.email_hash, c.contact_id {_LEAVERS_WHERE} "
                    "AND c.email_hash > ? ORDER BY c.email_hash LIMIT ?",
                    (self._account, list_id, run_id, after, _LEAVER_PAGE),
                ).fetchall()
            yield from ((bytes(h), str(c)) for h, c in page)
            if len(page) < _LEAVER_PAGE:
                return
            after = page[-1][0]

    def clear_seen(self, run_id: int) -> None:
        with self._transaction("clearing the seen set") as connection:
            connection.execute("DELETE FROM temp.seen WHERE run_id = ?", (run_id,))

    # -- run journal -------------------------------------------------------------------------------

    def begin_run(self, segment: str, list_id: str, *, full: bool = False) -> RunRecord:
        """Start a run in the journal and return it (outcome "running").

        If the previous run of this segment and list was interrupted or failed and had the same `full`
        mode, the new run continues it: it gets the same `since_run` and `resumes` names it.
        """
        if not segment or not list_id:
            raise ValueError("segment and list_id must be non-empty")
        started = self._clock()
        with self._transaction("starting a run") as connection:
            previous = connection.execute(
                "SELECT run_id, outcome, full_resend, since_run FROM runs "
                "WHERE account = ? AND segment = ? AND list_id = ? ORDER BY run_id DESC LIMIT 1",
                (self._account, segment, list_id),
            ).fetchone()
            resumes: int | None = None
            if previous is not None and previous[1] in _RESUMABLE_OUTCOMES and bool(previous[2]) == full:
                resumes = int(previous[0])
            cursor = connection.execute(
                "INSERT INTO runs (account, segment, list_id, full_resend, since_run, resumes, started_at, "
                "outcome, counts) VALUES (?, ?, ?, ?, 0, ?, ?, 'running', '{}')",
                (self._account, segment, list_id, int(full), resumes, started.isoformat()),
            )
            run_id = int(cursor.lastrowid or 0)
            since_run = int(previous[3]) if resumes is not None else run_id
            connection.execute("UPDATE runs SET since_run = ? WHERE run_id = ?", (since_run, run_id))
        return RunRecord(
            run_id=run_id,
            segment=segment,
            list_id=list_id,
            started_at=started,
            finished_at=None,
            outcome="running",
            full=full,
            since_run=since_run,
            resumes=resumes,
        )

    def finish_run(self, run_id: int, *, outcome: RunOutcome, counts: Mapping[str, int]) -> RunRecord:
        """Close a running run with its final outcome and counts; drops its seen set."""
        if outcome not in _FINAL_OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(_FINAL_OUTCOMES)}, got {outcome!r}")
        _check_counts(None, None, counts)
        finished = self._clock()
        with self._transaction("finishing a run") as connection:
            cursor = connection.execute(
                "UPDATE runs SET outcome = ?, finished_at = ?, counts = ? "
                "WHERE run_id = ? AND account = ? AND outcome = 'running'",
                (
                    outcome,
                    finished.isoformat(),
                    json.dumps(dict(counts), sort_keys=True),
                    run_id,
                    self._account,
                ),
            )
            if cursor.rowcount != 1:
                raise ValueError(f"run {run_id} is not a running run of this account")
            connection.execute("DELETE FROM temp.seen WHERE run_id = ?", (run_id,))
        return self.run(run_id)

    def run(self, run_id: int) -> RunRecord:
        """One run of this account from the journal (KeyError if there is none)."""
        with self._reading("reading the run journal") as connection:
            row = connection.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ? AND account = ?",  # noqa: S608
                (run_id, self._account),
            ).fetchone()
        if row is None:
            raise KeyError(run_id)
        return _run_record(row)

    def history(self, segment: str, *, list_id: str | None = None) -> list[RunRecord]:
        """The runs of `segment` for this account (optionally only to `list_id`), oldest first."""
        query = f"SELECT {_RUN_COLUMNS} FROM runs WHERE account = ? AND segment = ?"  # noqa: S608
        params: tuple[Any, ...] = (self._account, segment)
        if list_id is not None:
            query += " AND list_id = ?"
            params += (list_id,)
        with self._reading("reading the run journal") as connection:
            rows = connection.execute(query + " ORDER BY run_id", params).fetchall()
        return [_run_record(row) for row in rows]


_RUN_COLUMNS: Final = (
    "run_id, segment, list_id, started_at, finished_at, outcome, counts, full_resend, since_run, resumes"
)


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, segment, list_id, started_at, finished_at, outcome, counts, full, since_run, resumes = row
    return RunRecord(
        run_id=run_id,
        segment=segment,
        list_id=list_id,
        started_at=datetime.fromisoformat(started_at),
        finished_at=None if finished_at is None else datetime.fromisoformat(finished_at),
        outcome=outcome,
        counts=json.loads(counts),
        full=bool(full),
        since_run=since_run,
        resumes=resumes,
    )
