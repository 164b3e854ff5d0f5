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
from ._destinations.base import FATAL_ERRORS, Destination, ExportAborted, Membership, Target
from ._errors import APIConnectionError, APIError
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
    to run when the target may have been edited inside the destination.
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
    membership: Membership
    remembered: str | None = None
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
        if self._verdict_saved:
            return
        verdict = self.membership.verdict
        if verdict is not None and verdict != self.remembered:
            self.state.remember_membership_verdict(self.list_id, verdict)
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
    destination: Destination,
    state: ExportState,
    *,
    target: Target,
    run_id: int,
    concurrency: int,
    on_step: Callable[[int], None] = lambda removed: None,
) -> RemovalOutcome:
    """Remove every leaver from the target by contact id; forget each once the destination acknowledged it.

    Leavers go in groups of `capabilities.removal_batch` ids, `concurrency` groups in flight. A
    removal the destination acknowledges (removed, no member, gone) is forgotten; any other failure
    leaves the contact in the state, so the next run tries again. 401/403 propagate at once.
    `on_step` gets the running count of acknowledged removals, last of all when this returns or raises.
    """
    list_id = target.id
    group_size = destination.capabilities.removal_batch
    removed = failed = 0
    first_error: BaseException | None = None
    fatal: BaseException | None = None
    acknowledged: list[bytes] = []
    pending: dict[Future[Sequence[BaseException | None]], list[bytes]] = {}
    # Set by the worker that met a 401/403, before any other worker can start its next removal: the
    # main thread would learn of it too late to stop them.
    stop = threading.Event()

    def settle(done: set[Future[Sequence[BaseException | None]]]) -> None:
        nonlocal removed, failed, first_error
        for future in done:
            hashes = pending.pop(future)
            error = future.exception()
            if isinstance(error, ExportAborted):
                assert fatal is not None
                raise fatal
            if error is not None:
                raise error
            for email_hash, result in zip(hashes, future.result(), strict=True):
                if result is None:
                    acknowledged.append(email_hash)
                    removed += 1
                elif isinstance(result, (APIError, APIConnectionError)) and not isinstance(
                    result, FATAL_ERRORS
                ):
                    failed += 1
                    first_error = first_error or result
                else:
                    raise result
        if len(acknowledged) >= _FORGET_EVERY:
            state.forget(list_id, acknowledged)
            acknowledged.clear()
            on_step(removed)

    def remove(contact_ids: list[str]) -> Sequence[BaseException | None]:
        nonlocal fatal
        if stop.is_set():
            raise ExportAborted
        try:
            results = destination.remove_members(target, contact_ids)
        except FATAL_ERRORS as error:
            fatal = fatal or error
            stop.set()
            raise
        if len(results) != len(contact_ids):
            raise RuntimeError(
                f"{destination.capabilities.name}: remove_members answered {len(results)} results "
                f"for {len(contact_ids)} contacts"
            )
        return results

    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="segments-remove")
    try:
        leavers: Iterator[tuple[bytes, str]] = state.leavers(list_id, run_id)
        group: list[tuple[bytes, str]] = []

        def submit() -> None:
            while len(pending) >= 2 * concurrency:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                settle(done)
            pending[executor.submit(remove, [cid for _, cid in group])] = [h for h, _ in group]
            group.clear()

        for leaver in leavers:
            group.append(leaver)
            if len(group) >= group_size:
                submit()
        if group:
            submit()
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
        # Whatever happened, removals the destination acknowledged are forgotten (and counted).
        if acknowledged:
            state.forget(list_id, acknowledged)
        on_step(removed)
    return RemovalOutcome(removed=removed, failed=failed, first_error=first_error)
