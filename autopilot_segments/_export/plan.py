"""The dry run: map and validate every row, compare with the state, and price the export.

A plan makes no API call (one read with `check_account=True`); its cost comes from the destination
(`Destination.plan_cost`), which knows what its calls are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from .._destinations.base import FATAL_ERRORS, Destination, MappedRow, PlannedWork
from .._errors import APIConnectionError, APIError
from .._rejections import Rejection
from .._report import ExportReport
from .._state import ExportState
from .incremental import SeenSet, seen_email
from .options import ExportContext, RowMapper
from .pipeline import PROGRESS_EVERY_ROWS
from .stateless import new_session

__all__ = ["plan"]

_PLAN_SEEN_RUN: Final = 0  # a plan's seen set is keyed by no journaled run (run ids start at 1)
# Contacts looked up in the state at once.
_LOOKUP_CHUNK: Final = 100


def plan(
    ctx: ExportContext,
    rows: Iterable[Mapping[str, Any]],
    segment: str,
    state: ExportState | None,
    check_account: bool = False,
) -> ExportReport:
    """See `Exporter.plan`."""
    session = new_session(ctx, segment)
    counter, start = session.counter, session.start
    options, destination = ctx.options, ctx.destination
    noun = destination.capabilities.target_noun
    sink = ctx.progress_sink(segment, rows)
    history = state.history(segment) if state is not None else []
    list_id = history[-1].list_id if history else None
    remembered = state.membership_verdict(list_id) if state is not None and list_id else None
    estimate = _PlanEstimate(state=state if list_id else None, list_id=list_id or "")
    seen = None
    if estimate.state is not None and options.on_leave == "remove":
        seen = SeenSet(estimate.state, _PLAN_SEEN_RUN)
    try:
        for item in ctx.mapping.map_rows(rows):
            contact = counter.admit(item)
            if contact is not None:
                estimate.add(contact)
                if seen is not None:
                    seen.add(contact.email)
            elif seen is not None:
                # A bad value, a duplicate, the cap: still in the segment, so never a leaver.
                email = seen_email(item) if isinstance(item, Rejection) else item.email
                if email is not None:
                    seen.add(email)
            if counter.rows_seen % PROGRESS_EVERY_ROWS == 0:
                sink.emit(counter.progress(segment, 0, ctx.clock() - start, dry_run=True))
        estimate.flush()
        sink.emit(counter.progress(segment, 0, ctx.clock() - start, dry_run=True))
    finally:
        sink.close()
    counter.exported, counter.unchanged = estimate.send, estimate.unchanged
    removed, note = 0, f"dry run: the {noun} was not looked up (plan() makes no API calls)"
    fraction = options.max_removal_fraction
    if estimate.state is not None:
        note = f"dry run: compared with the state of {noun} {list_id} (the segment's last run)"
        if seen is not None:
            seen.flush()
            removed = estimate.state.count_leavers(estimate.list_id, _PLAN_SEEN_RUN)
            members = estimate.state.member_count(estimate.list_id)
            estimate.state.clear_seen(_PLAN_SEEN_RUN)
            if removed > fraction * members:
                note += (
                    f"; an export would stop with GuardrailError: it would remove {removed:,} of "
                    f"{members:,} known members (over max_removal_fraction="
                    f"{fraction:g}); force=True overrides"
                )
    if counter.rows_seen == 0:
        note += "; an export would stop with GuardrailError: the input is empty (force=True overrides)"
    if check_account:
        note += _field_check_note(destination, ctx.mapping)
    cost = destination.plan_cost(
        PlannedWork(
            send=estimate.send,
            new=estimate.new,
            batch_size=options.batch_size,
            removals=removed,
            target_known=estimate.state is not None,
            known_members=estimate.state.member_count(estimate.list_id) if estimate.state is not None else 0,
            remembered=remembered,
            custom_fields=_has_custom_fields(ctx.mapping),
        )
    )
    calls, worst = cost.best, cost.worst
    rate = destination.requests_per_second
    return ExportReport(
        segment=segment,
        list_id=list_id,
        list_note=note,
        list_membership="not checked (dry run)",
        total_rows=counter.rows_seen,
        exported=counter.exported,
        unchanged=counter.unchanged,
        removed=removed,
        rejected=counter.rejected,
        started_at=session.started_at,
        finished_at=ctx.now(),
        duration=ctx.clock() - start,
        dry_run=True,
        planned_calls=calls,
        planned_calls_worst=worst,
        planned_min_duration=calls / rate,
        requests_per_second=rate,
        destination=destination.capabilities.name,
        target_noun=destination.capabilities.target_noun,
    )


def _has_custom_fields(mapping: object) -> bool:
    """Whether the mapping sends custom fields (a destination may check them before its first write)."""
    fields = getattr(mapping, "custom", ())
    return bool(fields) and isinstance(fields, (list, tuple))


@attrs.define
class _PlanEstimate:
    """Counts, for a plan with state, what an incremental run would send, skip, and add as new."""

    state: ExportState | None
    list_id: str
    send: int = 0
    unchanged: int = 0
    new: int = 0
    _pending: list[MappedRow] = attrs.Factory(list)

    def add(self, contact: MappedRow) -> None:
        if self.state is None:
            self.send += 1
            self.new += 1
            return
        self._pending.append(contact)
        if len(self._pending) >= _LOOKUP_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.state is None or not self._pending:
            return
        state = self.state
        hashes = [state.hash_email(c.email) for c in self._pending]
        known = state.lookup(self.list_id, hashes)
        for contact, email_hash in zip(self._pending, hashes, strict=True):
            record = known.get(email_hash)
            if record is None:
                self.new += 1
                self.send += 1
            elif record.payload_hash != state.hash_payload(contact.payload):
                self.send += 1
            else:
                self.unchanged += 1
        self._pending = []


def _field_check_note(destination: Destination, mapping: RowMapper) -> str:
    """What the preflight would say, for a plan: a conflict, or that the account could not be read."""
    try:
        conflicts = destination.field_conflicts(mapping)
    except FATAL_ERRORS:
        raise
    except (APIError, APIConnectionError) as error:
        return f"; the account's custom fields could not be read to check the mapping ({error})"
    if not conflicts:
        return ""
    return "; an export would stop with ConfigurationError before writing anything: " + "; ".join(conflicts)
