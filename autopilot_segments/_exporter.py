"""`Exporter`: a segment of rows in, an Autopilot list with exactly those contacts out, and a report.

One export: resolve the list (find or create it), map and validate rows as they stream in, cut the
valid contacts into bulk upserts of at most 100, keep `concurrency` of them in flight through the
client (whose rate limiter and retrying transport every thread shares), bisect batches Autopilot
rejects, make sure every stored contact is a member of the list, and account for every row.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Final, Literal, Protocol, cast

import attrs

from ._acknowledgement import (
    AcknowledgedEntry,
    AcknowledgementSink,
    BatchSendFilter,
    ListedContact,
    MappedRow,
    SendEverything,
    SendFilter,
    batch_filter,
)
from ._bisection import FATAL_ERRORS, ExportAborted, send_with_bisection
from ._destinations import as_destination
from ._destinations.base import (
    Acknowledgement,
    CallStats,
    Destination,
    Membership,
    MembershipResult,
    PlannedWork,
    Target,
)
from ._errors import (
    APIConnectionError,
    APIError,
    ConfigurationError,
    ExportError,
    ExportInterrupted,
    GuardrailError,
)
from ._incremental import RemovalOutcome, SeenSet, StateFilter, StateSink, remove_leavers, seen_email
from ._preflight import has_custom_fields
from ._progress import Progress, ProgressCallback, ProgressSink, load_tqdm
from ._rejection_log import RejectionLog
from ._rejections import Rejection
from ._report import ExportReport
from ._spool import Spool
from ._state import ExportState, RunOutcome, RunRecord
from .sources import rows_of

__all__ = ["Exporter", "RowMapper", "auto_concurrency"]

_log = logging.getLogger("autopilot_segments.exporter")
# What ends an export at once with a partial report: 401/403 (attached to the error) and Ctrl-C
# (re-raised as ExportInterrupted).
_FATAL_OR_INTERRUPT: tuple[type[BaseException], ...] = (*FATAL_ERRORS, KeyboardInterrupt)

# With no way to know the latency up front, "auto" keeps enough requests in flight to saturate the
# rate at up to half a second per request; at 5 r/s that is the classic 4.
_ASSUMED_LATENCY = 0.5
_AUTO_MIN, _AUTO_MAX = 4, 32
_PROGRESS_EVERY_ROWS = 5_000
_NOT_SENT = "not sent: the export stopped early"
# Contacts looked up in the state at once by a plan.
_PLAN_LOOKUP_CHUNK = 100


class RowMapper(Protocol):
    """What `Exporter` needs from a `FieldMapping`."""

    def map_rows(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[MappedRow | Rejection]: ...


def auto_concurrency(requests_per_second: float) -> int:
    """Requests to keep in flight so that `requests_per_second` is reached at up to 0.5 s latency."""
    return max(_AUTO_MIN, min(_AUTO_MAX, math.ceil(requests_per_second * _ASSUMED_LATENCY)))


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@attrs.frozen
class _BatchOutcome:
    acknowledged: list[AcknowledgedEntry]
    rejections: list[Rejection]
    first_failure: BaseException | None


OnLeave = Literal["keep", "remove"]
_ON_LEAVE: Final = ("keep", "remove")


@attrs.define
class _Session:
    """The clocks, counters and progress of one export or plan, shared by its steps."""

    segment: str
    counter: _RowCounter
    started_at: dt.datetime
    start: float
    stats_before: CallStats
    # The custom-field check, run once just before the first write (target creation or upsert).
    preflight: Callable[[], None] = lambda: None
    # `stop`: send nothing more, even mid-batch (401/403, Ctrl-C); set by the workers themselves.
    stop: threading.Event = attrs.Factory(threading.Event)


class Exporter:
    """Exports segments (iterables of row mappings) to Autopilot lists named after them.

    Parameters
    ----------
    client:
        An `AutopilotClient` (or anything with the same few calls, see `Destination`). Its rate
        limiter and retries apply to every request the exporter makes.
    mapping:
        The `FieldMapping` turning rows into contacts (or rejections).
    max_profiles:
        The contract's profile cap: valid rows beyond it are reported `over_limit`. `None`: no cap.
    concurrency:
        Requests kept in flight. `None` (default) picks enough to saturate the client's rate at up to
        0.5 s latency: 4 at 5 r/s, 10 at 20 r/s.
    stop_on_error:
        Raise `ExportError` (with the partial report) at the first batch that fails after the
        transport's retries, instead of reporting its rows as `failed` and going on.
    on_progress:
        Called with a `Progress` snapshot after every batch, on the calling thread.
    progress:
        Show a tqdm progress bar (needs the `progress` extra).
    batch_size:
        Contacts per bulk upsert, 1..100.
    state:
        Path of an SQLite export state file (created if missing). With it, a re-run sends only new
        and changed contacts, an interrupted export is completed by running it again, leavers can be
        removed, and runs are journaled (`history`). `None` (default): stateless exports.
    on_leave:
        What to do with contacts exported earlier that are no longer in the segment: "keep" (default)
        or "remove" them from the list (never deleted, never unsubscribed). "remove" needs `state`.
    max_removal_fraction:
        Guard rail: an export that would remove more than this fraction of the list's known members
        stops before writing anything (`GuardrailError`) unless `force=True`. 0..1, default 0.5.
    """

    def __init__(
        self,
        client: object,
        mapping: RowMapper,
        *,
        max_profiles: int | None = 100_000,
        concurrency: int | None = None,
        stop_on_error: bool = False,
        on_progress: ProgressCallback | None = None,
        progress: bool = False,
        batch_size: int | None = None,
        state: str | os.PathLike[str] | None = None,
        on_leave: OnLeave = "keep",
        max_removal_fraction: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        destination = as_destination(client)
        max_batch = destination.capabilities.max_batch
        if batch_size is None:
            batch_size = max_batch
        problems: list[str] = []
        if max_profiles is not None and (isinstance(max_profiles, bool) or max_profiles < 0):
            problems.append(f"max_profiles must be None (no cap) or >= 0, got {max_profiles!r}")
        if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
            problems.append(
                f"concurrency must be >= 1 (requests in flight) or None (auto), got {concurrency!r}"
            )
        if isinstance(batch_size, bool) or not 1 <= batch_size <= max_batch:
            problems.append(f"batch_size must be between 1 and {max_batch}, got {batch_size!r}")
        problems.extend(_state_problems(destination, state, on_leave, max_removal_fraction))
        bar_class = None
        if progress:
            try:
                bar_class = load_tqdm()
            except ConfigurationError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigurationError(problems)
        self._client = client  # as given (an AutopilotClient stays reachable as it was)
        self._destination = destination
        self._mapping = mapping
        self.max_profiles = max_profiles
        self.concurrency = (
            concurrency if concurrency is not None else auto_concurrency(destination.requests_per_second)
        )
        self.stop_on_error = stop_on_error
        self.batch_size = batch_size
        self.state_path: str | None = None if state is None else os.fspath(state)
        self.on_leave: OnLeave = on_leave
        self.max_removal_fraction = float(max_removal_fraction)
        self._on_progress = on_progress
        self._bar_class = bar_class
        self._clock = clock
        self._now = now

    def __repr__(self) -> str:
        return (
            f"Exporter(max_profiles={self.max_profiles!r}, concurrency={self.concurrency!r}, "
            f"stop_on_error={self.stop_on_error!r}, batch_size={self.batch_size!r}, "
            f"state={self.state_path!r}, on_leave={self.on_leave!r}, "
            f"max_removal_fraction={self.max_removal_fraction!r})"
        )

    def export(self, rows: object, *, segment: str, full: bool = False, force: bool = False) -> ExportReport:
        """Export `rows` to the list titled `segment` (created if needed) and report every row's outcome.

        `rows` is an iterable of mappings, or a tabular object streamed a batch at a time: a pandas or
        Polars DataFrame, a Polars LazyFrame, a pyarrow Table/RecordBatchReader/Dataset, a DuckDB
        relation, a Spark DataFrame or a DB-API cursor (see `sources.rows_of`); anything else is a
        `TypeError` saying what to pass.

        With `state`: only new and changed contacts are sent (the others are `unchanged`) unless
        `full=True`; an interrupted run is completed; leavers are kept or removed (`on_leave`); the
        guard rails (empty input, mass removal) raise `GuardrailError` before anything is written,
        unless `force=True`. Without `state`, an empty input stops the export too (before the list is
        looked up or created) unless `force=True`; `full` changes nothing.

        Raises `AuthenticationError` / `PermissionDeniedError` at once on 401/403 (nothing more is sent),
        `ExportError` with the partial report when `stop_on_error=True` and a batch failed, and
        `StateError` when the state file is locked, corrupt or from a newer version.
        """
        source = rows_of(rows)
        if self.state_path is None:
            return self._export(source, segment=segment, send_filter=SendEverything(), sink=None, force=force)
        return self._export_with_state(source, segment=segment, full=full, force=force)

    def export_segments(
        self, segments: Mapping[str, object], *, full: bool = False, force: bool = False
    ) -> dict[str, ExportReport]:
        """Export several segments one after the other, each to its own list; reports keyed by name.

        Each value is anything `export` takes (rows, a data frame, a Spark DataFrame, a cursor...).
        """
        return {
            name: self.export(rows, segment=name, full=full, force=force) for name, rows in segments.items()
        }

    def history(self, segment: str) -> list[RunRecord]:
        """The journal of `segment`'s runs for this client's account, oldest first (needs `state`).

        An empty list when the state file does not exist yet. Raises `StateError` while an export
        holds the file.
        """
        if self.state_path is None:
            raise ConfigurationError("history() needs a state file: Exporter(..., state='exports.db')")
        if not os.path.exists(self.state_path):
            return []
        with self._open_state() as state:
            return state.history(segment)

    def plan(self, rows: object, *, segment: str, check_account: bool = False) -> ExportReport:
        """Dry run: map and validate every row and estimate the API cost. Makes no API call at all.

        With `check_account=True` it makes one read (`GET /contacts/custom_fields`, never a write): a
        custom field of the mapping that the account defines with another type is reported in
        `list_note` (an export would stop with `ConfigurationError` before writing anything).

        `exported` counts the rows that would be exported; `planned_calls` assumes Autopilot honours
        `_autopilot_list` in bulk calls and the list must be created, `planned_calls_worst` that it
        must add every contact to the list one by one. A stateless plan cannot know an existing
        list's size: a stateless re-run onto a list whose probed contacts are all members also reads
        that list once (`ceil(members / 100)` calls), in place of the one-by-one adds.

        With `state` (an existing file; a missing one is not created), the plan uses the list of the
        segment's last run: rows the state says are unchanged count as `unchanged`, `removed` counts
        the leavers `on_leave="remove"` would remove, and `list_note` says if a guard rail would stop
        the export. No run is journaled.
        """
        self._require_segment(segment)
        source = rows_of(rows)
        if self.state_path is not None and os.path.exists(self.state_path):
            with self._open_state() as state:
                return self._plan(source, segment, state, check_account)
        return self._plan(source, segment, None, check_account)

    # -- internals --------------------------------------------------------------------------------

    def _open_state(self) -> ExportState:
        assert self.state_path is not None
        return ExportState.open(self.state_path, account=self._destination.account_fingerprint)

    def _session(self, segment: str) -> _Session:
        return _Session(
            segment=segment,
            counter=_RowCounter(self.max_profiles),
            started_at=self._now(),
            start=self._clock(),
            stats_before=self._destination.stats,
            preflight=_Preflight(self._destination, self._mapping),
        )

    def _plan(
        self,
        rows: Iterable[Mapping[str, Any]],
        segment: str,
        state: ExportState | None,
        check_account: bool = False,
    ) -> ExportReport:
        session = self._session(segment)
        counter, start = session.counter, session.start
        sink = self._progress_sink(segment, rows)
        history = state.history(segment) if state is not None else []
        list_id = history[-1].list_id if history else None
        remembered = state.membership_verdict(list_id) if state is not None and list_id else None
        estimate = _PlanEstimate(state=state if list_id else None, list_id=list_id or "")
        seen = None
        if estimate.state is not None and self.on_leave == "remove":
            seen = SeenSet(estimate.state, _PLAN_SEEN_RUN)
        try:
            for item in self._mapping.map_rows(rows):
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
                if counter.rows_seen % _PROGRESS_EVERY_ROWS == 0:
                    sink.emit(counter.progress(segment, 0, self._clock() - start, dry_run=True))
            estimate.flush()
            sink.emit(counter.progress(segment, 0, self._clock() - start, dry_run=True))
        finally:
            sink.close()
        counter.exported, counter.unchanged = estimate.send, estimate.unchanged
        removed, note = 0, "dry run: the list was not looked up (plan() makes no API calls)"
        if estimate.state is not None:
            note = f"dry run: compared with the state of list {list_id} (the segment's last run)"
            if seen is not None:
                seen.flush()
                removed = estimate.state.count_leavers(estimate.list_id, _PLAN_SEEN_RUN)
                members = estimate.state.member_count(estimate.list_id)
                estimate.state.clear_seen(_PLAN_SEEN_RUN)
                if removed > self.max_removal_fraction * members:
                    note += (
                        f"; an export would stop with GuardrailError: it would remove {removed:,} of "
                        f"{members:,} known members (over max_removal_fraction="
                        f"{self.max_removal_fraction:g}); force=True overrides"
                    )
        if counter.rows_seen == 0:
            note += "; an export would stop with GuardrailError: the input is empty (force=True overrides)"
        if check_account:
            note += _field_check_note(self._destination, self._mapping)
        cost = self._destination.plan_cost(
            PlannedWork(
                send=estimate.send,
                new=estimate.new,
                batch_size=self.batch_size,
                removals=removed,
                target_known=estimate.state is not None,
                known_members=(
                    estimate.state.member_count(estimate.list_id) if estimate.state is not None else 0
                ),
                remembered=remembered,
                custom_fields=has_custom_fields(self._mapping),
            )
        )
        calls, worst = cost.best, cost.worst
        rate = self._destination.requests_per_second
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
            finished_at=self._now(),
            duration=self._clock() - start,
            dry_run=True,
            planned_calls=calls,
            planned_calls_worst=worst,
            planned_min_duration=calls / rate,
            requests_per_second=rate,
        )

    def _progress_sink(self, segment: str, rows: object) -> ProgressSink:
        sink = ProgressSink(callback=self._on_progress, bar_class=self._bar_class)
        sink.open(segment, len(rows) if isinstance(rows, Sized) else None)
        return sink

    def _export(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        segment: str,
        send_filter: SendFilter | BatchSendFilter,
        sink: AcknowledgementSink | None,
        force: bool = False,
    ) -> ExportReport:
        """The stateless export, with the seams incremental runs plug into (filter and sink)."""
        self._require_segment(segment)
        session = self._session(segment)
        items = self._mapping.map_rows(rows)
        # The same guard rail as with state: an empty extract is far more often a broken pipeline
        # than an empty segment, and not even the list is created before it is known to have rows.
        first = next(items, None)
        if first is None and not force:
            raise _empty_input_error(segment)
        items = itertools.chain([] if first is None else [first], items)
        session.preflight()
        resolution = self._destination.resolve_target(segment)
        detector = self._destination.open_membership(
            resolution, remembered=None, should_stop=session.stop.is_set
        )
        progress = self._progress_sink(segment, rows)
        try:
            pipeline, run = self._send(
                session,
                resolution,
                detector,
                items,
                session.counter.admit,
                batch_filter(send_filter),
                sink,
                progress,
            )
        except KeyboardInterrupt as interrupt:
            raise self._interrupted(interrupt, session, resolution, detector) from interrupt
        finally:
            progress.close()
        return self._conclude(session, resolution, pipeline, run, None)

    def _send(
        self,
        session: _Session,
        resolution: Target,
        detector: Membership,
        items: Iterator[MappedRow | Rejection],
        admit: Callable[[MappedRow | Rejection], MappedRow | None],
        send_filter: BatchSendFilter,
        sink: AcknowledgementSink | None,
        progress: ProgressSink,
    ) -> tuple[_Pipeline, _ExportRun]:
        """Stream `items` through the send filter into bulk upserts on the list; returns when all settled."""
        _log.info(
            "export started: %s %s (created: %s)",
            self._destination.capabilities.target_noun,
            resolution.id,
            resolution.created,
        )
        run = _ExportRun(
            destination=self._destination,
            target=resolution,
            membership=detector,
            stop_on_error=self.stop_on_error,
            stop=session.stop,
        )
        counter = session.counter

        def emit() -> None:
            calls = self._destination.stats.requests - session.stats_before.requests
            progress.emit(counter.progress(session.segment, calls, self._clock() - session.start))

        pipeline = _Pipeline(
            run=run,
            counter=counter,
            sink=sink,
            concurrency=self.concurrency,
            stop_on_error=self.stop_on_error,
            emit=emit,
            before_first_send=session.preflight,
        )
        try:
            pipeline.feed(items, admit, send_filter, self.batch_size)
        except FATAL_ERRORS as error:
            # Keep the exact error type (callers catch it), but with what happened until then.
            self._attach_report(error, session, resolution, detector)
            raise
        return pipeline, run

    def _attach_report(
        self,
        error: BaseException,
        session: _Session,
        resolution: Target,
        detector: Membership,
        removal: RemovalOutcome | None = None,
        run_id: int | None = None,
        during: str = "",
    ) -> None:
        if isinstance(error, APIError):
            stopped_by = f"aborted{during}: {type(error).__name__}: {error}"
            error.export_report = self._report(session, resolution, detector, stopped_by, removal, run_id)
            _log.info("export aborted: %s", _counts_line(error.export_report))

    def _interrupted(
        self,
        interrupt: KeyboardInterrupt,
        session: _Session,
        resolution: Target,
        detector: Membership,
        removal: RemovalOutcome | None = None,
        run_id: int | None = None,
        during: str = "",
    ) -> ExportInterrupted:
        """Ctrl-C, after the batches in flight settled: the same interrupt, with the report attached."""
        if isinstance(interrupt, ExportInterrupted):
            return interrupt
        stopped_by = f"interrupted{during} by {str(interrupt) or type(interrupt).__name__}"
        report = self._report(session, resolution, detector, stopped_by, removal, run_id, interrupted=True)
        _log.info("export interrupted: %s", _counts_line(report))
        return ExportInterrupted(f"export of segment {session.segment!r} {stopped_by}", export_report=report)

    def _conclude(
        self,
        session: _Session,
        resolution: Target,
        pipeline: _Pipeline,
        run: _ExportRun,
        removal: RemovalOutcome | None,
        run_id: int | None = None,
    ) -> ExportReport:
        """The final report; `ExportError` (with the partial report) if the export stopped early."""
        stopped_by = pipeline.stopped_by
        final = self._report(session, resolution, run.membership, stopped_by, removal, run_id)
        if stopped_by is not None:
            _log.info("export stopped early: %s", _counts_line(final))
            raise ExportError(
                f"export of segment {session.segment!r} stopped: {stopped_by}",
                report=final,
                cause=pipeline.failure,
            ) from pipeline.failure
        _log.info("export finished: %s", _counts_line(final))
        return final

    def _export_with_state(
        self, rows: Iterable[Mapping[str, Any]], *, segment: str, full: bool, force: bool
    ) -> ExportReport:
        """Incremental, resumable export: first pass and guard rails, the send, the leavers, the journal."""
        self._require_segment(segment)
        destination = self._destination
        session = self._session(segment)
        # The first row is mapped before anything else: a mapping that does not fit the input
        # (ConfigurationError) stops here, before a single API call.
        items = self._mapping.map_rows(rows)
        first_item = next(items, None)
        if first_item is not None:
            items = itertools.chain([first_item], items)
        with self._open_state() as state:
            # Only reads until the guard rails have passed: not even an empty list may be created.
            found = destination.find_target(segment)
            journal = _Journal(state, segment, full)
            if found is not None:
                journal.begin(found.id)
            spool: Spool | None = None
            try:
                admit: Callable[[MappedRow | Rejection], MappedRow | None] = session.counter.admit
                if self.on_leave == "remove" and found is not None:
                    spool = Spool.create()
                    run_id = journal.record.run_id
                    self._first_pass(items, session.counter, spool, SeenSet(state, run_id))
                    self._check_guardrails(state, found, journal.record, session.counter, force=force)
                    items, admit = iter(spool), _already_admitted
                else:
                    first = next(items, None)
                    if first is None and not force:
                        raise _empty_input_error(segment)
                    items = itertools.chain([] if first is None else [first], items)
                if found is None:
                    session.preflight()
                    resolution = destination.resolve_target(segment, known_absent=True)
                    journal.begin(resolution.id)
                else:
                    resolution = found
                report = self._send_with_state(session, state, resolution, journal.record, items, admit, rows)
            except GuardrailError:
                journal.finish("guardrail", _partial_counts(session.counter))
                raise
            except ExportError as stopped:
                journal.finish("failed", _journal_counts(stopped.report))
                raise
            except BaseException:
                journal.finish("failed", _partial_counts(session.counter))
                raise
            finally:
                if spool is not None:
                    spool.close()
            journal.finish("completed", _journal_counts(report))
            return report

    def _send_with_state(
        self,
        session: _Session,
        state: ExportState,
        resolution: Target,
        record: RunRecord,
        items: Iterator[MappedRow | Rejection],
        admit: Callable[[MappedRow | Rejection], MappedRow | None],
        rows: object,
    ) -> ExportReport:
        remembered = state.membership_verdict(resolution.id)
        detector = self._destination.open_membership(
            resolution, remembered=remembered, should_stop=session.stop.is_set
        )
        sink = StateSink(state, resolution.id, record.run_id, detector, remembered)
        progress = self._progress_sink(session.segment, rows)
        try:
            pipeline, run = self._send(
                session,
                resolution,
                detector,
                items,
                admit,
                StateFilter(state, resolution.id, record),
                sink,
                progress,
            )
        except _FATAL_OR_INTERRUPT as error:
            if admit is _already_admitted:  # see below: the spooled contacts never read again
                session.counter.rejected.extend(
                    _rejection(contact, "failed", _NOT_SENT) for contact in cast(Iterator[MappedRow], items)
                )
            if isinstance(error, KeyboardInterrupt):
                raise self._interrupted(error, session, resolution, detector, run_id=record.run_id) from error
            self._attach_report(error, session, resolution, detector, run_id=record.run_id)
            raise
        finally:
            progress.close()
        if pipeline.stopped_by is not None and admit is _already_admitted:
            # Second pass of a two-pass export: the first pass counted every row, so the spooled
            # contacts the stopped pipeline never read again still need their one outcome.
            session.counter.rejected.extend(
                _rejection(contact, "failed", _NOT_SENT) for contact in cast(Iterator[MappedRow], items)
            )
        sink.remember_verdict()
        removal = None
        # Leavers are only known when the list existed before this run (then the first pass ran).
        if self.on_leave == "remove" and not resolution.created and pipeline.stopped_by is None:
            removed_so_far = 0

            def on_step(removed: int) -> None:
                nonlocal removed_so_far
                removed_so_far = removed

            try:
                removal = remove_leavers(
                    self._destination,
                    state,
                    target=resolution,
                    run_id=record.run_id,
                    concurrency=self.concurrency,
                    on_step=on_step,
                )
            except _FATAL_OR_INTERRUPT as error:
                partial = RemovalOutcome(removed=removed_so_far, failed=0, first_error=error)
                during = " while removing leavers"
                if isinstance(error, KeyboardInterrupt):
                    raise self._interrupted(
                        error, session, resolution, detector, partial, record.run_id, during
                    ) from error
                self._attach_report(error, session, resolution, detector, partial, record.run_id, during)
                raise
        return self._conclude(session, resolution, pipeline, run, removal, record.run_id)

    def _first_pass(
        self, items: Iterator[MappedRow | Rejection], counter: _RowCounter, spool: Spool, seen: SeenSet
    ) -> None:
        """Read every row before anything is written: spool the contacts, remember who is in the segment."""
        for item in items:
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

    def _check_guardrails(
        self, state: ExportState, target: Target, record: RunRecord, counter: _RowCounter, *, force: bool
    ) -> None:
        if force:
            return
        list_id = target.id
        noun = self._destination.capabilities.target_noun
        if counter.rows_seen == 0:
            raise _empty_input_error(record.segment)
        leavers = state.count_leavers(list_id, record.run_id)
        members = state.member_count(list_id)
        if leavers > self.max_removal_fraction * members:
            raise GuardrailError(
                f"export of segment {record.segment!r} stopped before writing anything: it would remove "
                f"{leavers:,} of the {members:,} contacts known on {noun} {list_id} "
                f"({leavers / members:.0%}, over max_removal_fraction={self.max_removal_fraction:g}); "
                "check the input, or pass force=True to go ahead",
                details={
                    "reason": "mass_removal",
                    "list_id": list_id,
                    "would_remove": leavers,
                    "known_members": members,
                    "max_removal_fraction": self.max_removal_fraction,
                    "rows": counter.rows_seen,
                    "valid_rows": counter.valid,
                },
            )

    def _report(
        self,
        session: _Session,
        resolution: Target,
        detector: Membership,
        stopped_by: str | None,
        removal: RemovalOutcome | None = None,
        run_id: int | None = None,
        *,
        interrupted: bool = False,
    ) -> ExportReport:
        stats, before, counter = self._destination.stats, session.stats_before, session.counter
        return ExportReport(
            segment=session.segment,
            list_id=resolution.id,
            list_note=resolution.note,
            list_created=resolution.created,
            list_membership=detector.description,
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
            finished_at=self._now(),
            duration=self._clock() - session.start,
            complete=stopped_by is None,
            stopped_by=stopped_by,
            interrupted=interrupted,
            requests_per_second=self._destination.requests_per_second,
        )

    def _require_segment(self, segment: str) -> None:
        if not isinstance(segment, str) or not segment.strip():
            capabilities = self._destination.capabilities
            raise ConfigurationError(
                "segment must be a non-empty name: it becomes the "
                f"{capabilities.name} {capabilities.target_noun} title"
            )


@attrs.define
class _Journal:
    """The run's entry in the state's journal: begun once the list is known, finished exactly once."""

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


_PLAN_SEEN_RUN: Final = 0  # a plan's seen set is keyed by no journaled run (run ids start at 1)


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
        if len(self._pending) >= _PLAN_LOOKUP_CHUNK:
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


@attrs.define
class _Preflight:
    """Runs the destination's field check once, when the export is about to write for the first time.

    A conflict raises `ConfigurationError` (nothing was written); an unreadable definition list only
    logs a warning.
    """

    destination: Destination
    mapping: object
    done: bool = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            conflicts = self.destination.field_conflicts(self.mapping)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            _log.warning("could not read the account's custom fields to check the mapping: %s", error)
            return
        if conflicts:
            raise ConfigurationError(
                "the mapping's custom fields conflict with the account's definitions, so "
                f"{self.destination.capabilities.name} would refuse every contact (nothing was written): "
                f"{'; '.join(conflicts)}. A custom field keeps the type it was first stored with: give "
                "the mapping the account's type, or map to a new field name"
            )


def _already_admitted(item: MappedRow | Rejection) -> MappedRow | None:
    # Second pass of a two-pass export: the first pass counted every row, the spool holds contacts only.
    return cast(MappedRow, item)


def _empty_input_error(segment: str) -> GuardrailError:
    return GuardrailError(
        f"export of segment {segment!r} stopped before writing anything: the input has no rows "
        "(a broken extract?); pass force=True to export an empty segment",
        details={"reason": "empty_input", "segment": segment, "rows": 0},
    )


def _journal_counts(report: ExportReport) -> dict[str, int]:
    counts = dict(report.counts)
    counts.update(total_rows=report.total_rows, removed=report.removed, removal_failed=report.removal_failed)
    counts["api_calls"] = report.api_calls
    return counts


def _partial_counts(counter: _RowCounter) -> dict[str, int]:
    counts = {"total_rows": counter.rows_seen, "exported": counter.exported, "unchanged": counter.unchanged}
    counts.update(counter.rejected.reason_counts())
    return counts


def _state_problems(destination: Destination, state: object, on_leave: object, fraction: object) -> list[str]:
    problems: list[str] = []
    if on_leave not in _ON_LEAVE:
        problems.append(f"on_leave must be 'keep' or 'remove', got {on_leave!r}")
    elif on_leave == "remove" and state is None:
        problems.append(
            "on_leave='remove' needs state=<file>: the state remembers who was exported, "
            "so leavers can be found"
        )
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        problems.append(f"max_removal_fraction must be a number between 0 and 1, got {fraction!r}")
    if state is not None:
        if not isinstance(state, (str, os.PathLike)) or not os.fspath(state):
            problems.append(f"state must be a file path (str or os.PathLike) or None, got {state!r}")
        else:
            try:
                destination.account_fingerprint  # noqa: B018 - the state is keyed by it
            except ConfigurationError as error:
                problems.extend(error.problems)
    return problems


def _counts_line(report: ExportReport) -> str:
    return (
        f"{report.total_rows} rows, {report.exported} exported, {report.unchanged} unchanged, "
        f"{len(report.rejected)} rejected, {report.api_calls} API calls, {report.duration:.1f} s"
    )


@attrs.define
class _RowCounter:
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
            self.rejected.append(_rejection(item, "over_limit", self._over_limit_message))
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
class _ExportRun:
    """What every worker thread shares for one export: the destination, the target, the membership,
    the brakes."""

    destination: Destination
    target: Target
    membership: Membership
    stop_on_error: bool = False
    # `stop`: send nothing more, even mid-batch (401/403, Ctrl-C). `halted`: start no new batch
    # (stop_on_error after a failure). Workers set them themselves: the main thread learns late.
    stop: threading.Event = attrs.Factory(threading.Event)
    halted: threading.Event = attrs.Factory(threading.Event)
    # The 401/403 that set `stop`: other workers then end with ExportAborted, which must never be
    # what the caller sees.
    fatal: BaseException | None = None
    _fatal_lock: threading.Lock = attrs.Factory(threading.Lock)

    def process_batch(self, batch: Sequence[MappedRow]) -> _BatchOutcome:
        """Upsert one batch (bisecting refused ones), then make sure its stored contacts are members."""
        if self.stop.is_set() or self.halted.is_set():
            return _BatchOutcome([], [_rejection(c, "failed", _NOT_SENT) for c in batch], None)
        try:
            outcome = self._process(batch)
        except FATAL_ERRORS as error:
            with self._fatal_lock:
                self.fatal = self.fatal or error
            self.stop.set()
            raise
        if outcome.first_failure is not None and self.stop_on_error:
            self.halted.set()
        return outcome

    def _process(self, batch: Sequence[MappedRow]) -> _BatchOutcome:
        name = self.destination.capabilities.name
        # Contacts the state knows as members need no membership work (see ListedContact).
        claim = self.membership.before_upsert([c for c in batch if not isinstance(c, ListedContact)])
        try:
            result = send_with_bisection(
                batch, self._upsert, should_stop=self.stop.is_set, concerns_all=self._concerns_all
            )
        except BaseException:
            self.membership.cancel(claim)
            raise
        acknowledged: list[tuple[MappedRow, str]] = []
        rejections: list[Rejection] = []
        failure: BaseException | None = None
        for piece, answers in result.accepted:
            if len(answers) != len(piece):
                self.membership.cancel(claim)
                raise RuntimeError(
                    f"{name}: upsert_batch answered {len(answers)} acknowledgements for {len(piece)} contacts"
                )
            for contact, answer in zip(piece, answers, strict=True):
                if answer.contact_id is not None:
                    acknowledged.append((contact, answer.contact_id))
                    continue
                if answer.reason == "failed":
                    failure = failure or answer.error
                rejections.append(_rejection(contact, answer.reason, answer.problem))
        for piece, reason in result.refused:
            message = (
                f"{name} refused the whole batch (its halves failed for the same reason, so it was not "
                f"split further): {reason}"
            )
            rejections.extend(_rejection(contact, "rejected_by_api", message) for contact in piece)
        for contact, error in result.isolated:
            message = f"{name} rejected this contact: {error.message}"
            rejections.append(_rejection(contact, "rejected_by_api", message))
        for failed_piece, failed_error in result.failed:
            failure = failure or failed_error
            rejections.extend(_rejection(c, "failed", f"not stored: {failed_error}") for c in failed_piece)
        # Contacts the state knows as members only needed their upsert, unless the destination answered
        # with another contact id: deleted and re-created since, so no longer a member (see ListedContact).
        listed = [pair for pair in acknowledged if _still_listed(*pair)]
        if listed:
            acknowledged = [pair for pair in acknowledged if not _still_listed(*pair)]
        # From here on the membership owns what its claim holds, if anything.
        made: MembershipResult = self.membership.after_upsert(acknowledged, claim)
        members = listed + list(made.members)
        rejections.extend(_rejection(contact, "failed", message) for contact, message in made.failures)
        entries = [
            AcknowledgedEntry(row=c.row, email=c.email, contact_id=cid, payload=c.payload)
            for c, cid in members
        ]
        return _BatchOutcome(entries, rejections, failure or made.error)

    def _concerns_all(self, piece: Sequence[MappedRow], reason: str) -> bool:
        """Can the destination's refusal `reason` concern every contact of `piece`? (Then bisecting
        it is pointless.)"""
        return self.destination.refusal_concerns_all(self.target, piece, reason)

    def _upsert(self, piece: Sequence[MappedRow]) -> Sequence[Acknowledgement]:
        return self.destination.upsert_batch(self.target, piece, should_stop=self.stop.is_set)


def _still_listed(contact: MappedRow, contact_id: str) -> bool:
    """A contact the state knows as a member, upserted under the contact id the state remembers."""
    return isinstance(contact, ListedContact) and contact.contact_id in (None, contact_id)


def _rejection(contact: MappedRow, reason: Any, message: str) -> Rejection:
    return Rejection(row=contact.row, email=contact.email, reason=reason, message=message)


@attrs.define
class _Pipeline:
    """Reads mapped rows on the caller's thread and keeps a bounded number of batches in flight."""

    run: _ExportRun
    counter: _RowCounter
    sink: AcknowledgementSink | None
    concurrency: int
    stop_on_error: bool
    emit: Callable[[], None]
    before_first_send: Callable[[], None] | None = None
    stopped_by: str | None = None
    failure: BaseException | None = None
    _pending: dict[Future[_BatchOutcome], Sequence[MappedRow]] = attrs.Factory(dict)

    def feed(
        self,
        items: Iterator[MappedRow | Rejection],
        admit: Callable[[MappedRow | Rejection], MappedRow | None],
        send_filter: BatchSendFilter,
        batch_size: int,
    ) -> None:
        """Admit every item, let the filter pick what to send (one batch of candidates at a time), send."""
        counter = self.counter
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="segments-export")
        candidates: list[MappedRow] = []
        batch: list[MappedRow] = []

        def select() -> None:
            nonlocal candidates
            chosen = send_filter.select(candidates)
            counter.unchanged += len(candidates) - len(chosen)
            batch.extend(chosen)
            candidates = []

        try:
            # Counted here, not from `counter.rows_seen`: a second pass reads items the first one counted.
            for read, item in enumerate(items, start=1):
                contact = admit(item)
                if contact is not None:
                    candidates.append(contact)
                    if len(candidates) >= batch_size:
                        select()
                if len(batch) >= batch_size:
                    self._submit(executor, batch[:batch_size])
                    del batch[:batch_size]
                elif read % _PROGRESS_EVERY_ROWS == 0:
                    self.emit()
                if self.stopped_by is not None:
                    break
            if self.stopped_by is None:
                if candidates:
                    select()
                while batch:
                    self._submit(executor, batch[:batch_size])
                    del batch[:batch_size]
            while self._pending:
                self._harvest()
            self.emit()
        except BaseException as error:
            # 401/403, a failing input iterator, a bug, Ctrl-C: nothing more may be sent. Batches that
            # were acknowledged meanwhile are still counted and recorded, so that a re-run (with state)
            # does not send them again and the partial report keeps them.
            self.run.stop.set()
            for future in self._pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            self._settle_after_abort(error)
            for contact in [*batch, *candidates]:
                counter.rejected.append(_rejection(contact, "failed", _NOT_SENT))
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        for contact in [*batch, *candidates]:  # read but never submitted because the export stopped
            counter.rejected.append(_rejection(contact, "failed", _NOT_SENT))

    def _submit(self, executor: ThreadPoolExecutor, batch: Sequence[MappedRow]) -> None:
        if self.before_first_send is not None:
            check, self.before_first_send = self.before_first_send, None
            check()
        # Twice the workers: the next batch is always ready when a worker frees up, memory stays flat.
        while len(self._pending) >= 2 * self.concurrency:
            self._harvest()
        if self.stopped_by is not None:
            self._pending[_cancelled_future()] = batch
            return
        self._pending[executor.submit(self.run.process_batch, batch)] = batch

    def _harvest(self) -> None:
        # Cancelled futures count as done at once: `wait` would block until a worker notices them.
        done = {f for f in self._pending if f.cancelled()}
        if not done:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
        for future in [f for f in self._pending if f in done]:
            batch = self._pending.pop(future)
            if future.cancelled():
                self.counter.rejected.extend(_rejection(c, "failed", _NOT_SENT) for c in batch)
                continue
            try:
                outcome = future.result()
            except BaseException as error:
                # Its rows get their outcome now; the batches done with it are settled by feed().
                self.counter.rejected.extend(
                    _rejection(c, "failed", _aborted(error, self.run)) for c in batch
                )
                if isinstance(error, ExportAborted) and self.run.fatal is not None:
                    raise self.run.fatal from None
                raise
            self._account(outcome)
            if outcome.first_failure is not None and self.stop_on_error and self.stopped_by is None:
                self.stopped_by = f"a batch failed after retries ({outcome.first_failure})"
                self.failure = outcome.first_failure
                for waiting in self._pending:
                    waiting.cancel()  # only batches no worker has started: running ones finish
            self.emit()

    def _account(self, outcome: _BatchOutcome) -> None:
        self.counter.exported += len(outcome.acknowledged)
        self.counter.rejected.extend(outcome.rejections)
        if self.sink is not None and outcome.acknowledged:
            self.sink.acknowledged(outcome.acknowledged)

    def _settle_after_abort(self, error: BaseException) -> None:
        """Every worker has stopped: count (and record) the batches that completed, fail the others."""
        sink_broken = False
        for future, batch in list(self._pending.items()):
            del self._pending[future]
            if future.cancelled():
                self.counter.rejected.extend(_rejection(c, "failed", _NOT_SENT) for c in batch)
                continue
            failure = future.exception()
            if failure is not None:
                message = _aborted(failure if not isinstance(failure, ExportAborted) else error, self.run)
                self.counter.rejected.extend(_rejection(c, "failed", message) for c in batch)
                continue
            outcome = future.result()
            self.counter.exported += len(outcome.acknowledged)
            self.counter.rejected.extend(outcome.rejections)
            if self.sink is None or not outcome.acknowledged or sink_broken:
                continue
            try:
                self.sink.acknowledged(outcome.acknowledged)
            except Exception:
                # The sink (the state?) failed too: keep raising the original error; Autopilot has these.
                _log.warning("could not record a batch acknowledged before the export aborted", exc_info=True)
                sink_broken = True


def _aborted(error: BaseException, run: _ExportRun) -> str:
    cause = run.fatal if isinstance(error, ExportAborted) and run.fatal is not None else error
    if isinstance(cause, ExportAborted):
        return "not confirmed: the export was aborted"
    return f"not confirmed: the export was aborted ({cause})"


def _cancelled_future() -> Future[_BatchOutcome]:
    future: Future[_BatchOutcome] = Future()
    future.cancel()
    return future
