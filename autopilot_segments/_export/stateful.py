"""One export with state: the first pass and the guard rails, the send, the leavers, the run's journal entry.

Only reads happen until the guard rails have passed: the target is looked up, not created, and with
`on_leave="remove"` every row is read (spooled to disk) before anything is written, so that the
leavers are known and a mass removal can stop the export first. The run is journaled in the state
from the moment its target is known, and finished exactly once, whatever happens.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, cast

import attrs

from .._destinations.base import FATAL_ERRORS, MappedRow, Target
from .._errors import ExportError, GuardrailError
from .._rejections import Rejection
from .._report import ExportReport
from .._state import ExportState, RunOutcome, RunRecord
from .accounting import (
    NOT_SENT,
    RowCounter,
    Session,
    attach_report,
    conclude,
    input_failed,
    interrupted,
    journal_counts,
    partial_counts,
    rejection,
)
from .guardrails import check_guardrails, empty_input_error
from .incremental import SeenSet, StateFilter, StateSink, seen_email
from .leavers import RemovalOutcome, remove_leavers
from .options import ExportContext
from .spool import Spool
from .stateless import new_session, send

__all__ = ["export_with_state", "open_state"]

# What ends an export at once with a partial report: 401/403 (attached to the error) and Ctrl-C
# (re-raised as ExportInterrupted).
_FATAL_OR_INTERRUPT: Final[tuple[type[BaseException], ...]] = (*FATAL_ERRORS, KeyboardInterrupt)


def open_state(ctx: ExportContext) -> ExportState:
    path = ctx.options.state_path
    assert path is not None
    return ExportState.open(path, account=ctx.destination.account_fingerprint)


@attrs.define
class Journal:
    """The run's entry in the state's journal: begun once the target is known, finished exactly once."""

    state: ExportState
    segment: str
    full: bool
    _record: RunRecord | None = None
    _finished: bool = False

    @property
    def record(self) -> RunRecord:
        assert self._record is not None, "the run has not begun"
        return self._record

    def begin(self, list_id: str) -> None:
        self._record = self.state.begin_run(self.segment, list_id, full=self.full)

    def finish(self, outcome: RunOutcome, counts: Mapping[str, int]) -> None:
        if self._record is None or self._finished or self.state.closed:
            return
        self._finished = True
        self.state.finish_run(self._record.run_id, outcome=outcome, counts=counts)


def export_with_state(
    ctx: ExportContext, rows: Iterable[Mapping[str, Any]], *, segment: str, full: bool, force: bool
) -> ExportReport:
    """Incremental, resumable export: first pass and guard rails, the send, the leavers, the journal."""
    ctx.require_segment(segment)
    destination = ctx.destination
    session = new_session(ctx, segment)
    # The first row is mapped before anything else: a mapping that does not fit the input
    # (ConfigurationError) stops here, before a single API call.
    items = ctx.mapping.map_rows(rows)
    first_item = next(items, None)
    if first_item is not None:
        items = itertools.chain([first_item], items)
    with open_state(ctx) as state:
        # Only reads until the guard rails have passed: not even an empty target may be created.
        found = destination.find_target(segment)
        journal = Journal(state, segment, full)
        if found is not None:
            journal.begin(found.id)
        spool: Spool | None = None
        try:
            admit: Callable[[MappedRow | Rejection], MappedRow | None] = session.counter.admit
            if ctx.options.on_leave == "remove" and found is not None:
                spool = Spool.create()
                run_id = journal.record.run_id
                failure = _first_pass(items, session.counter, spool, SeenSet(state, run_id))
                if failure is not None:
                    _stop_before_sending(ctx, session, state, found, spool, failure, run_id)
                check_guardrails(ctx, state, found, journal.record, session.counter, force=force)
                items, admit = iter(spool), _already_admitted
            else:
                first = next(items, None)
                if first is None and not force:
                    raise empty_input_error(segment)
                items = itertools.chain([] if first is None else [first], items)
            if found is None:
                session.preflight()
                target = destination.resolve_target(segment, known_absent=True)
                journal.begin(target.id)
            else:
                target = found
            report = _send_with_state(ctx, session, state, target, journal.record, items, admit, rows)
        except GuardrailError:
            journal.finish("guardrail", partial_counts(session.counter))
            raise
        except ExportError as stopped:
            journal.finish("failed", journal_counts(stopped.report))
            raise
        except BaseException:
            journal.finish("failed", partial_counts(session.counter))
            raise
        finally:
            if spool is not None:
                spool.close()
        journal.finish("completed", journal_counts(report))
        return report


def _send_with_state(
    ctx: ExportContext,
    session: Session,
    state: ExportState,
    target: Target,
    record: RunRecord,
    items: Iterator[MappedRow | Rejection],
    admit: Callable[[MappedRow | Rejection], MappedRow | None],
    rows: object,
) -> ExportReport:
    remembered = state.membership_verdict(target.id)
    membership = ctx.destination.open_membership(
        target, remembered=remembered, should_stop=session.stop.is_set
    )
    sink = StateSink(state, target.id, record.run_id, membership, remembered)
    progress = ctx.progress_sink(session.segment, rows)
    try:
        pipeline = send(
            ctx,
            session,
            target,
            membership,
            items,
            admit,
            StateFilter(state, target.id, record),
            sink,
            progress,
        )
    except _FATAL_OR_INTERRUPT as error:
        if admit is _already_admitted:  # see below: the spooled contacts never read again
            session.counter.rejected.extend(
                rejection(contact, "failed", NOT_SENT) for contact in cast(Iterator[MappedRow], items)
            )
        if isinstance(error, KeyboardInterrupt):
            raise interrupted(ctx, error, session, target, membership, run_id=record.run_id) from error
        attach_report(ctx, error, session, target, membership, run_id=record.run_id)
        raise
    finally:
        progress.close()
    if pipeline.stopped_by is not None and admit is _already_admitted:
        # Second pass of a two-pass export: the first pass counted every row, so the spooled
        # contacts the stopped pipeline never read again still need their one outcome.
        session.counter.rejected.extend(
            rejection(contact, "failed", NOT_SENT) for contact in cast(Iterator[MappedRow], items)
        )
    sink.remember_verdict()
    removal = None
    # Leavers are only known when the target existed before this run (then the first pass ran).
    if ctx.options.on_leave == "remove" and not target.created and pipeline.stopped_by is None:
        removed_so_far = 0

        def on_step(removed: int) -> None:
            nonlocal removed_so_far
            removed_so_far = removed

        try:
            removal = remove_leavers(
                ctx.destination,
                state,
                target=target,
                run_id=record.run_id,
                concurrency=ctx.options.concurrency,
                on_step=on_step,
            )
        except _FATAL_OR_INTERRUPT as error:
            partial = RemovalOutcome(removed=removed_so_far, failed=0, first_error=error)
            during = " while removing leavers"
            if isinstance(error, KeyboardInterrupt):
                raise interrupted(
                    ctx, error, session, target, membership, partial, record.run_id, during
                ) from error
            attach_report(ctx, error, session, target, membership, partial, record.run_id, during)
            raise
    return conclude(
        ctx, session, target, membership, pipeline.stopped_by, pipeline.failure, removal, record.run_id
    )


def _first_pass(
    items: Iterator[MappedRow | Rejection], counter: RowCounter, spool: Spool, seen: SeenSet
) -> Exception | None:
    """Read every row before anything is written: spool the contacts, remember who is in the segment.

    Returns what the source raised, if it failed mid-stream (then nothing more is read).
    """
    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except Exception as error:  # the source (or the mapping of its rows) failed mid-stream
            return error
        contact = counter.admit(item)
        if contact is not None:
            spool.append(contact.row, contact.email, contact.payload)
            seen.add(contact.email)
        elif isinstance(item, Rejection):
            email = seen_email(item)
            if email is not None:
                seen.add(email)
        else:
            seen.add(item.email)  # beyond the profile cap, yet in the segment
    seen.flush()
    return None


def _stop_before_sending(
    ctx: ExportContext,
    session: Session,
    state: ExportState,
    target: Target,
    spool: Spool,
    failure: Exception,
    run_id: int,
) -> None:
    """The first pass failed: nothing was written; every row read is `failed` ("not sent"); ExportError."""
    counter = session.counter
    counter.rejected.extend(rejection(cast(MappedRow, contact), "failed", NOT_SENT) for contact in spool)
    membership = ctx.destination.open_membership(
        target, remembered=state.membership_verdict(target.id), should_stop=session.stop.is_set
    )
    conclude(
        ctx, session, target, membership, input_failed(counter.rows_seen, failure), failure, None, run_id
    )


def _already_admitted(item: MappedRow | Rejection) -> MappedRow | None:
    # Second pass of a two-pass export: the first pass counted every row, the spool holds contacts only.
    return cast(MappedRow, item)
