"""Accounting for one export: every row's one outcome, the run's clocks, and the `ExportReport`.

`RowCounter` counts rows as they are admitted (valid, rejected, over the cap); `Session` holds one
run's clocks, counters and call-stats baseline; `build_report` turns them into the report, and
`attach_report` / `interrupted` / `conclude` end a run that aborted, was interrupted, or finished.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

import attrs

from .._destinations.base import CallStats, MappedRow, Membership, Target
from .._errors import APIError, ExportError, ExportInterrupted
from .._progress import Progress
from .._rejection_log import RejectionLog
from .._rejections import Rejection
from .._report import ExportReport
from .leavers import RemovalOutcome
from .options import ExportContext

__all__ = [
    "NOT_SENT",
    "RowCounter",
    "Session",
    "attach_report",
    "build_report",
    "conclude",
    "counts_line",
    "input_failed",
    "interrupted",
    "journal_counts",
    "partial_counts",
    "rejection",
]

_log = logging.getLogger("autopilot_segments.exporter")
NOT_SENT: Final = "not sent: the export stopped early"


def input_failed(read: int, error: BaseException) -> str:
    """`stopped_by` of an export whose row source raised mid-stream (the source's error kept)."""
    return f"reading the rows failed after {read:,} rows: {type(error).__name__}: {error}"


def rejection(contact: MappedRow, reason: Any, message: str) -> Rejection:
    return Rejection(row=contact.row, email=contact.email, reason=reason, message=message)


@attrs.define
class RowCounter:
    """Outcome accounting for one run; only ever touched by the exporter's own thread."""

    max_profiles: int | None
    rows_seen: int = 0
    valid: int = 0
    exported: int = 0
    unchanged: int = 0
    rejected: RejectionLog = attrs.Factory(RejectionLog)
    _over_limit_message: str | None = None

    def admit(self, item: MappedRow | Rejection) -> MappedRow | None:
        """Count a mapped row; return it if it may be exported (valid and within the cap)."""
        self.rows_seen += 1
        if isinstance(item, Rejection):
            self.rejected.append(item)
            return None
        self.valid += 1
        if self.max_profiles is not None and self.valid > self.max_profiles:
            # One shared message string: a capped million-row segment holds ~900k of these.
            if self._over_limit_message is None:
                self._over_limit_message = (
                    f"beyond the contract's cap of {self.max_profiles:,} profiles: raise it with "
                    "Exporter(max_profiles=N) or --max-profiles N (None or 0: no cap)"
                )
            self.rejected.append(rejection(item, "over_limit", self._over_limit_message))
            return None
        return item

    def progress(self, segment: str, calls: int, elapsed: float, *, dry_run: bool = False) -> Progress:
        return Progress(
            segment=segment,
            rows_seen=self.rows_seen,
            exported=self.exported,
            rejected=len(self.rejected),
            unchanged=self.unchanged,
            api_calls=calls,
            elapsed=max(elapsed, 0.0),
            rate=self.rows_seen / elapsed if elapsed > 0 else 0.0,
            dry_run=dry_run,
        )


@attrs.define
class Session:
    """The clocks, counters and progress of one export or plan, shared by its steps."""

    segment: str
    counter: RowCounter
    started_at: dt.datetime
    start: float
    stats_before: CallStats
    # The custom-field check, run once just before the first write (target creation or upsert).
    preflight: Callable[[], None] = lambda: None
    # `stop`: send nothing more, even mid-batch (401/403, Ctrl-C); set by the workers themselves.
    stop: threading.Event = attrs.Factory(threading.Event)


def build_report(
    ctx: ExportContext,
    session: Session,
    target: Target,
    membership: Membership,
    stopped_by: str | None,
    removal: RemovalOutcome | None = None,
    run_id: int | None = None,
    *,
    interrupted: bool = False,
) -> ExportReport:
    destination = ctx.destination
    stats, before, counter = destination.stats, session.stats_before, session.counter
    return ExportReport(
        segment=session.segment,
        list_id=target.id,
        list_note=target.note,
        list_created=target.created,
        list_membership=membership.description,
        total_rows=counter.rows_seen,
        exported=counter.exported,
        unchanged=counter.unchanged,
        removed=removal.removed if removal is not None else 0,
        removal_failed=removal.failed if removal is not None else 0,
        run_id=run_id,
        rejected=counter.rejected,
        api_calls=stats.requests - before.requests,
        retries=stats.retries - before.retries,
        rate_limited=stats.rate_limited - before.rate_limited,
        started_at=session.started_at,
        finished_at=ctx.now(),
        duration=ctx.clock() - session.start,
        complete=stopped_by is None,
        stopped_by=stopped_by,
        interrupted=interrupted,
        requests_per_second=destination.requests_per_second,
        destination=destination.capabilities.name,
        target_noun=destination.capabilities.target_noun,
    )


def attach_report(
    ctx: ExportContext,
    error: BaseException,
    session: Session,
    target: Target,
    membership: Membership,
    removal: RemovalOutcome | None = None,
    run_id: int | None = None,
    during: str = "",
) -> None:
    """A 401/403 ends the export: keep the exact error (callers catch it), with the partial report."""
    if isinstance(error, APIError):
        stopped_by = f"aborted{during}: {type(error).__name__}: {error}"
        error.export_report = build_report(ctx, session, target, membership, stopped_by, removal, run_id)
        _log.info("export aborted: %s", counts_line(error.export_report))


def interrupted(
    ctx: ExportContext,
    interrupt: KeyboardInterrupt,
    session: Session,
    target: Target,
    membership: Membership,
    removal: RemovalOutcome | None = None,
    run_id: int | None = None,
    during: str = "",
) -> ExportInterrupted:
    """Ctrl-C, after the batches in flight settled: the same interrupt, with the report attached."""
    if isinstance(interrupt, ExportInterrupted):
        return interrupt
    stopped_by = f"interrupted{during} by {str(interrupt) or type(interrupt).__name__}"
    report = build_report(ctx, session, target, membership, stopped_by, removal, run_id, interrupted=True)
    _log.info("export interrupted: %s", counts_line(report))
    return ExportInterrupted(f"export of segment {session.segment!r} {stopped_by}", export_report=report)


def conclude(
    ctx: ExportContext,
    session: Session,
    target: Target,
    membership: Membership,
    stopped_by: str | None,
    failure: BaseException | None,
    removal: RemovalOutcome | None,
    run_id: int | None = None,
) -> ExportReport:
    """The final report; `ExportError` (with the partial report) if the export stopped early."""
    final = build_report(ctx, session, target, membership, stopped_by, removal, run_id)
    if stopped_by is not None:
        _log.info("export stopped early: %s", counts_line(final))
        raise ExportError(
            f"export of segment {session.segment!r} stopped: {stopped_by}",
            report=final,
            cause=failure,
        ) from failure
    _log.info("export finished: %s", counts_line(final))
    return final


def counts_line(report: ExportReport) -> str:
    return (
        f"{report.total_rows} rows, {report.exported} exported, {report.unchanged} unchanged, "
        f"{len(report.rejected)} rejected, {report.api_calls} API calls, {report.duration:.1f} s"
    )


def journal_counts(report: ExportReport) -> dict[str, int]:
    counts = dict(report.counts)
    counts.update(total_rows=report.total_rows, removed=report.removed, removal_failed=report.removal_failed)
    counts["api_calls"] = report.api_calls
    return counts


def partial_counts(counter: RowCounter) -> dict[str, int]:
    counts = {"total_rows": counter.rows_seen, "exported": counter.exported, "unchanged": counter.unchanged}
    counts.update(counter.rejected.reason_counts())
    return counts
