"""The export state plugged into the exporter: what to send, what to record, who left, and removals.

These are the `BatchSendFilter` and `AcknowledgementSink` the exporter's seams take (see
`_acknowledgement.py`), plus the seen set of a two-pass export and the removal of leavers. All of it
runs on the exporter's own thread; only the removal calls go to a small thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Final

import attrs

from ._acknowledgement import AcknowledgedEntry, ListedContact, MappedRow
from ._bisection import FATAL_ERRORS, ExportAborted
from ._destination import StatefulDestination
from ._errors import APIConnectionError, APIError, NotFoundError
from ._membership import ListMembershipDetector
from ._rejections import Rejection
from ._state import ExportState, RunRecord, needs_sending

__all__ = ["RemovalOutcome", "SeenSet", "StateFilter", "StateSink", "remove_leavers", "seen_email"]

_SEEN_FLUSH: Final = 1000
_FORGET_EVERY: Final = 100
# Rows refused for a fixable reason still name a contact of the segment: they must never make it a leaver.
_SEEN_REJECTIONS: Final = frozenset({"invalid_value", "duplicate_email", "over_limit"})


def seen_email(item: Rejection) -> str | None:
    """The email of a rejected row that still belongs to the segment (a bad value, a duplicate, the cap)."""
    return item.email if item.reason in _SEEN_REJECTIONS and item.email else None


@attrs.define
class StateFilter:
    """Sends contacts that are new on the list or whose payload changed (all of them with `run.full`).

    A changed contact the state knows as a member comes back as a `ListedContact`: its membership
    needs no check and no explicit add. A full resend re-checks everyone's membership: it is what
    to run when the list may have been edited inside Autopilot.
    """

    state: ExportState
    list_id: str
    run: RunRecord

    def select(self, contacts: Sequence[MappedRow]) -> Sequence[MappedRow]:
        state = self.state
        hashes = [state.hash_email(c.email) for c in contacts]
        known = state.lookup(self.list_id, hashes)
        chosen: list[MappedRow] = []
        for contact, email_hash in zip(contacts, hashes, strict=True):
            record = known.get(email_hash)
            if not needs_sending(self.run, record, state.hash_payload(contact.payload)):
                continue
            if record is None or self.run.full:
                chosen.append(contact)
            else:
                chosen.append(
                    ListedContact(
                        row=contact.row,
                        email=contact.email,
                        payload=contact.payload,
                        contact_id=record.contact_id,
                    )
                )
        return chosen


@attrs.define
class StateSink:
    """Records every acknowledged batch in one transaction, and a verified membership verdict once."""

    state: ExportState
    list_id: str
    run_id: int
    detector: ListMembershipDetector
    recorded: int = 0
    _verdict_saved: bool = attrs.field(init=False, default=False)

    def acknowledged(self, entries: Sequence[AcknowledgedEntry]) -> None:
        state = self.state
        self.recorded += state.record_acknowledged(
            self.list_id,
            [(state.hash_email(e.email), e.contact_id, state.hash_payload(e.payload)) for e in entries],
            run_id=self.run_id,
        )
        self.remember_verdict()

    def remember_verdict(self) -> None:
        detector = self.detector
        if not (self._verdict_saved or detector.remembered) and detector.verified != "unknown":
            self.state.remember_membership_verdict(self.list_id, detector.verified)
            self._verdict_saved = True


@attrs.define
class SeenSet:
    """The emails of this run's rows, as hashes in the state's temporary seen table (never in the file)."""

    state: ExportState
    run_id: int
    _pending: list[bytes] = attrs.Factory(list)

    def add(self, email: str) -> None:
        self._pending.append(self.state.hash_email(email))
        if len(self._pending) >= _SEEN_FLUSH:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.state.mark_seen(self.run_id, self._pending)
            self._pending = []


@attrs.frozen(kw_only=True)
class RemovalOutcome:
    removed: int
    failed: int
    first_error: BaseException | None


def remove_leavers(
    client: StatefulDestination,
    state: ExportState,
    *,
    list_id: str,
    run_id: int,
    concurrency: int,
    on_step: Callable[[int], None] = lambda removed: None,
) -> RemovalOutcome:
    """Remove every leaver from the list by contact id; forget each once Autopilot acknowledged it.

    A 2xx (`not_modified` included) or a 404 (the contact is gone) acknowledges a removal. Any other
    failure leaves the contact in the state, so the next run tries again. 401/403 propagate at once.
    `on_step` gets the running count of acknowledged removals, last of all when this returns or raises.
    """
    removed = failed = 0
    first_error: BaseException | None = None
    fatal: BaseException | None = None
    acknowledged: list[bytes] = []
    pending: dict[Future[None], bytes] = {}
    # Set by the worker that met a 401/403, before any other worker can start its next removal: the
    # main thread would learn of it too late to stop them.
    stop = threading.Event()

    def settle(done: set[Future[None]]) -> None:
        nonlocal removed, failed, first_error
        for future in done:
            email_hash = pending.pop(future)
            error = future.exception()
            if isinstance(error, ExportAborted):
                assert fatal is not None
                raise fatal
            if error is None or isinstance(error, NotFoundError):
                acknowledged.append(email_hash)
                removed += 1
            elif isinstance(error, (APIError, APIConnectionError)) and not isinstance(error, FATAL_ERRORS):
                failed += 1
                first_error = first_error or error
            else:
                raise error
        if len(acknowledged) >= _FORGET_EVERY:
            state.forget(list_id, acknowledged)
            acknowledged.clear()
            on_step(removed)

    def remove(contact_id: str) -> None:
        nonlocal fatal
        if stop.is_set():
            raise ExportAborted
        try:
            client.remove_from_list(list_id, contact_id)
        except FATAL_ERRORS as error:
            fatal = fatal or error
            stop.set()
            raise

    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="autopilot-remove")
    try:
        leavers: Iterator[tuple[bytes, str]] = state.leavers(list_id, run_id)
        for email_hash, contact_id in leavers:
            while len(pending) >= 2 * concurrency:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                settle(done)
            pending[executor.submit(remove, contact_id)] = email_hash
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            settle(done)
    except BaseException:
        stop.set()
        for future in pending:
            future.cancel()
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        # Whatever happened, removals Autopilot acknowledged are forgotten (and counted).
        if acknowledged:
            state.forget(list_id, acknowledged)
        on_step(removed)
    return RemovalOutcome(removed=removed, failed=failed, first_error=first_error)
