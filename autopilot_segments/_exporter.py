"""`Exporter`: a segment of rows in, an Autopilot list with exactly those contacts out, and a report.

One export: resolve the list (find or create it), map and validate rows as they stream in, cut the
valid contacts into bulk upserts of at most 100, keep `concurrency` of them in flight through the
client (whose rate limiter and retrying transport every thread shares), bisect batches Autopilot
rejects, make sure every stored contact is a member of the list, and account for every row.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import attrs

from ._acknowledgement import AcknowledgedEntry, AcknowledgementSink, MappedRow, SendEverything, SendFilter
from ._bisection import FATAL_ERRORS, ExportAborted, send_with_bisection
from ._destination import CallStats, Destination, UpsertAnswer
from ._errors import APIConnectionError, APIError, ConfigurationError, ExportError
from ._lists import ListResolution, resolve_list
from ._membership import ListMembershipDetector, Verdict
from ._progress import Progress, ProgressCallback, ProgressSink, load_tqdm
from ._rejection_log import RejectionLog
from ._rejections import Rejection
from ._report import ExportReport

__all__ = ["Exporter", "RowMapper", "auto_concurrency"]

_log = logging.getLogger("autopilot_segments.exporter")

MAX_BATCH_SIZE = 100
# With no way to know the latency up front, "auto" keeps enough requests in flight to saturate the
# rate at up to half a second per request; at 5 r/s that is the classic 4.
_ASSUMED_LATENCY = 0.5
_AUTO_MIN, _AUTO_MAX = 4, 32
_PROBES_PER_BATCH = 3
_PROGRESS_EVERY_ROWS = 5_000
_NOT_SENT = "not sent: the export stopped early"
# Constant overhead of an export to a new list when Autopilot honours `_autopilot_list`: the list
# read, the create, the re-read after it and the one membership check. Used for plans.
_PLAN_OVERHEAD_CALLS = 4


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
    """

    def __init__(
        self,
        client: Destination,
        mapping: RowMapper,
        *,
        max_profiles: int | None = 100_000,
        concurrency: int | None = None,
        stop_on_error: bool = False,
        on_progress: ProgressCallback | None = None,
        progress: bool = False,
        batch_size: int = MAX_BATCH_SIZE,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        problems: list[str] = []
        if max_profiles is not None and (isinstance(max_profiles, bool) or max_profiles < 0):
            problems.append(f"max_profiles must be None (no cap) or >= 0, got {max_profiles!r}")
        if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
            problems.append(
                f"concurrency must be >= 1 (requests in flight) or None (auto), got {concurrency!r}"
            )
        if isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_BATCH_SIZE:
            problems.append(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size!r}")
        bar_class = None
        if progress:
            try:
                bar_class = load_tqdm()
            except ConfigurationError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigurationError(problems)
        self._client = client
        self._mapping = mapping
        self.max_profiles = max_profiles
        self.concurrency = (
            concurrency if concurrency is not None else auto_concurrency(client.requests_per_second)
        )
        self.stop_on_error = stop_on_error
        self.batch_size = batch_size
        self._on_progress = on_progress
        self._bar_class = bar_class
        self._clock = clock
        self._now = now

    def __repr__(self) -> str:
        return (
            f"Exporter(max_profiles={self.max_profiles!r}, concurrency={self.concurrency!r}, "
            f"stop_on_error={self.stop_on_error!r}, batch_size={self.batch_size!r})"
        )

    def export(self, rows: Iterable[Mapping[str, Any]], *, segment: str) -> ExportReport:
        """Export `rows` to the list titled `segment` (created if needed) and report every row's outcome.

        Raises `AuthenticationError` / `PermissionDeniedError` at once on 401/403 (nothing more is sent),
        and `ExportError` with the partial report when `stop_on_error=True` and a batch failed.
        """
        return self._export(rows, segment=segment, send_filter=SendEverything(), sink=None)

    def export_segments(self, segments: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, ExportReport]:
        """Export several segments one after the other, each to its own list; reports keyed by name."""
        return {name: self.export(rows, segment=name) for name, rows in segments.items()}

    def plan(self, rows: Iterable[Mapping[str, Any]], *, segment: str) -> ExportReport:
        """Dry run: map and validate every row and estimate the API cost. Makes no API call at all.

        `exported` counts the rows that would be exported; `planned_calls` assumes Autopilot honours
        `_autopilot_list` in bulk calls and the list must be created, `planned_calls_worst` that it
        must add every contact to the list one by one.
        """
        _require_segment(segment)
        started_at, start = self._now(), self._clock()
        sink = self._progress_sink(segment, rows)
        counter = _RowCounter(self.max_profiles)
        try:
            for item in self._mapping.map_rows(rows):
                contact = counter.admit(item)
                if contact is not None:
                    counter.exported += 1
                if counter.rows_seen % _PROGRESS_EVERY_ROWS == 0:
                    sink.emit(counter.progress(segment, 0, self._clock() - start, dry_run=True))
            sink.emit(counter.progress(segment, 0, self._clock() - start, dry_run=True))
        finally:
            sink.close()
        batches = math.ceil(counter.exported / self.batch_size)
        calls = _PLAN_OVERHEAD_CALLS + batches if counter.exported else _PLAN_OVERHEAD_CALLS - 1
        worst = calls + counter.exported
        rate = self._client.requests_per_second
        return ExportReport(
            segment=segment,
            list_id=None,
            list_note="dry run: the list was not looked up (plan() makes no API calls)",
            list_membership="not checked (dry run)",
            total_rows=counter.rows_seen,
            exported=counter.exported,
            rejected=counter.rejected,
            started_at=started_at,
            finished_at=self._now(),
            duration=self._clock() - start,
            dry_run=True,
            planned_calls=calls,
            planned_calls_worst=worst,
            planned_min_duration=calls / rate,
            requests_per_second=rate,
        )

    # -- internals --------------------------------------------------------------------------------

    def _progress_sink(self, segment: str, rows: object) -> ProgressSink:
        sink = ProgressSink(callback=self._on_progress, bar_class=self._bar_class)
        sink.open(segment, len(rows) if isinstance(rows, Sized) else None)
        return sink

    def _export(
        self,
        rows: Iterable[Mapping[str, Any]],
        *,
        segment: str,
        send_filter: SendFilter,
        sink: AcknowledgementSink | None,
    ) -> ExportReport:
        """The export proper, with the seams incremental runs plug into (filter and sink)."""
        _require_segment(segment)
        started_at, start = self._now(), self._clock()
        stats_before = self._client.stats
        resolution = resolve_list(self._client, segment)
        _log.info("export started: list %s (created: %s)", resolution.list_id, resolution.created)
        run = _ExportRun(
            client=self._client,
            resolution=resolution,
            detector=ListMembershipDetector(list_is_new=resolution.created),
            stop_on_error=self.stop_on_error,
        )
        counter = _RowCounter(self.max_profiles)
        progress = self._progress_sink(segment, rows)

        def emit() -> None:
            calls = self._client.stats.requests - stats_before.requests
            progress.emit(counter.progress(segment, calls, self._clock() - start))

        def report(*, stopped_by: str | None = None) -> ExportReport:
            return self._report(
                segment, resolution, run, counter, stats_before, started_at, start, stopped_by
            )

        pipeline = _Pipeline(
            run=run,
            counter=counter,
            sink=sink,
            concurrency=self.concurrency,
            stop_on_error=self.stop_on_error,
            emit=emit,
        )
        try:
            pipeline.feed(self._mapping.map_rows(rows), send_filter, self.batch_size)
        finally:
            progress.close()
        if pipeline.stopped_by is not None:
            partial = report(stopped_by=pipeline.stopped_by)
            _log.info("export stopped early: %s", _counts_line(partial))
            raise ExportError(
                f"export of segment {segment!r} stopped: {pipeline.stopped_by}",
                report=partial,
                cause=pipeline.failure,
            ) from pipeline.failure
        final = report()
        _log.info("export finished: %s", _counts_line(final))
        return final

    def _report(
        self,
        segment: str,
        resolution: ListResolution,
        run: _ExportRun,
        counter: _RowCounter,
        stats_before: CallStats,
        started_at: dt.datetime,
        start: float,
        stopped_by: str | None,
    ) -> ExportReport:
        stats = self._client.stats
        return ExportReport(
            segment=segment,
            list_id=resolution.list_id,
            list_note=resolution.note,
            list_created=resolution.created,
            list_membership=run.detector.description,
            total_rows=counter.rows_seen,
            exported=counter.exported,
            unchanged=counter.unchanged,
            rejected=counter.rejected,
            api_calls=stats.requests - stats_before.requests,
            retries=stats.retries - stats_before.retries,
            rate_limited=stats.rate_limited - stats_before.rate_limited,
            started_at=started_at,
            finished_at=self._now(),
            duration=self._clock() - start,
            complete=stopped_by is None,
            stopped_by=stopped_by,
            requests_per_second=self._client.requests_per_second,
        )


def _require_segment(segment: str) -> None:
    if not isinstance(segment, str) or not segment.strip():
        raise ConfigurationError("segment must be a non-empty name: it becomes the Autopilot list title")


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
                self._over_limit_message = f"beyond the contract's cap of {self.max_profiles:,} profiles"
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
    """What every worker thread shares for one export: the client, the list, the verdict, the brake."""

    client: Destination
    resolution: ListResolution
    detector: ListMembershipDetector
    stop_on_error: bool = False
    # `stop`: send nothing more, even mid-batch (401/403, Ctrl-C). `halted`: start no new batch
    # (stop_on_error after a failure). Workers set them themselves: the main thread learns late.
    stop: threading.Event = attrs.Factory(threading.Event)
    halted: threading.Event = attrs.Factory(threading.Event)
    # The 401/403 that set `stop`: other workers then end with ExportAborted, which must never be
    # what the caller sees.
    fatal: BaseException | None = None
    _fatal_lock: threading.Lock = attrs.Factory(threading.Lock)

    @property
    def list_id(self) -> str:
        return self.resolution.list_id

    def process_batch(self, batch: Sequence[MappedRow]) -> _BatchOutcome:
        """Upsert one batch (bisecting on 400), then make sure its stored contacts are list members."""
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
        candidate = self._probe_before_send(batch)
        try:
            result = send_with_bisection(batch, self._upsert, should_stop=self.stop.is_set)
        except BaseException:
            if candidate is not None:
                self.detector.settle("unknown")
            raise
        acknowledged: list[tuple[MappedRow, str]] = []
        rejections: list[Rejection] = []
        failure: BaseException | None = None
        for piece, answer in result.accepted:
            stored = {email.lower(): cid for email, cid in answer.email_contact_map.items()}
            for contact in piece:
                contact_id = stored.get(contact.email.lower())
                if contact_id is None:
                    message = "Autopilot's bulk answer left this contact out: it was not stored"
                    rejections.append(_rejection(contact, "rejected_by_api", message))
                else:
                    acknowledged.append((contact, contact_id))
        for contact, error in result.isolated:
            message = f"Autopilot rejected this contact: {error.message}"
            rejections.append(_rejection(contact, "rejected_by_api", message))
        for failed_piece, failed_error in result.failed:
            failure = failure or failed_error
            rejections.extend(_rejection(c, "failed", f"not stored: {failed_error}") for c in failed_piece)
        # From here on _ensure_membership owns the verification claim taken by the probe, if any.
        members, add_failures, add_error = self._ensure_membership(acknowledged, candidate)
        rejections.extend(add_failures)
        entries = [
            AcknowledgedEntry(row=c.row, email=c.email, contact_id=cid, payload=c.payload)
            for c, cid in members
        ]
        return _BatchOutcome(entries, rejections, failure or add_error)

    def _upsert(self, piece: Sequence[MappedRow]) -> UpsertAnswer:
        return self.client.upsert_contacts([{**c.payload, "_autopilot_list": self.list_id} for c in piece])

    def _probe_before_send(self, batch: Sequence[MappedRow]) -> MappedRow | None:
        """On an existing list, find a contact of `batch` that is not a member yet (holding the claim)."""
        detector = self.detector
        if detector.list_is_new or detector.verdict != "unknown" or not detector.try_claim():
            return None
        try:
            for contact in batch[:_PROBES_PER_BATCH]:
                if self.stop.is_set():
                    raise ExportAborted
                if not self.client.is_on_list(self.list_id, contact.email):
                    return contact
        except BaseException as error:
            if isinstance(error, (APIError, APIConnectionError)) and not isinstance(error, FATAL_ERRORS):
                pass  # a failed probe only costs the shortcut: inconclusive, the batch goes on
            else:
                detector.settle("unknown")
                raise
        detector.settle("unknown")
        return None

    def _ensure_membership(
        self, acknowledged: list[tuple[MappedRow, str]], candidate: MappedRow | None
    ) -> tuple[list[tuple[MappedRow, str]], list[Rejection], BaseException | None]:
        """Settle the `_autopilot_list` verdict if this batch can, then add members when needed."""
        detector = self.detector
        holding = candidate is not None
        verdict: Verdict
        while holding or (detector.verdict == "unknown" and acknowledged):
            if holding:
                check = next((pair for pair in acknowledged if pair[0] is candidate), None)
            elif detector.list_is_new and detector.try_claim():
                holding, check = True, acknowledged[0]
            else:
                if detector.wait_while_checking() == "unknown" and not detector.list_is_new:
                    break  # nobody can tell for this batch: add its contacts explicitly
                continue
            verdict = "unknown"
            try:
                verdict = self._verify(check) if check is not None else "unknown"
            finally:
                holding = False
                detector.settle(verdict)
        verdict = detector.verdict
        if verdict == "honoured" or not acknowledged:
            return acknowledged, [], None
        if verdict == "unknown":
            detector.note_fallback()
        return self._add_members(acknowledged)

    def _verify(self, check: tuple[MappedRow, str]) -> Verdict:
        """ "honoured" if a contact that was no member before its upsert is one now, else "ignored"."""
        if self.stop.is_set():
            raise ExportAborted
        try:
            return "honoured" if self.client.is_on_list(self.list_id, check[1]) else "ignored"
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError):
            return "unknown"

    def _add_members(
        self, acknowledged: list[tuple[MappedRow, str]]
    ) -> tuple[list[tuple[MappedRow, str]], list[Rejection], BaseException | None]:
        members: list[tuple[MappedRow, str]] = []
        failures: list[Rejection] = []
        first_error: BaseException | None = None
        for contact, contact_id in acknowledged:
            if self.stop.is_set():
                raise ExportAborted
            try:
                self.client.add_to_list(self.list_id, contact_id)
            except FATAL_ERRORS:
                raise
            except (APIError, APIConnectionError) as error:
                first_error = first_error or error
                message = f"stored, but adding it to the list failed: {error}"
                failures.append(_rejection(contact, "failed", message))
            else:
                members.append((contact, contact_id))
        return members, failures, first_error


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
    stopped_by: str | None = None
    failure: BaseException | None = None
    _pending: dict[Future[_BatchOutcome], Sequence[MappedRow]] = attrs.Factory(dict)

    def feed(self, items: Iterator[MappedRow | Rejection], send_filter: SendFilter, batch_size: int) -> None:
        counter = self.counter
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="autopilot-export")
        batch: list[MappedRow] = []
        try:
            for item in items:
                contact = counter.admit(item)
                if contact is not None:
                    if send_filter.should_send(contact):
                        batch.append(contact)
                    else:
                        counter.unchanged += 1
                if len(batch) >= batch_size:
                    self._submit(executor, batch)
                    batch = []
                elif counter.rows_seen % _PROGRESS_EVERY_ROWS == 0:
                    self.emit()
                if self.stopped_by is not None:
                    break
            if batch and self.stopped_by is None:
                self._submit(executor, batch)
                batch = []
            while self._pending:
                self._harvest()
            self.emit()
        except BaseException:
            # 401/403, a failing input iterator, a bug, Ctrl-C: nothing more may be sent.
            self.run.stop.set()
            for future in self._pending:
                future.cancel()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        for contact in batch:  # read but never submitted because the export stopped
            counter.rejected.append(_rejection(contact, "failed", _NOT_SENT))

    def _submit(self, executor: ThreadPoolExecutor, batch: Sequence[MappedRow]) -> None:
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
            except ExportAborted:
                if self.run.fatal is not None:
                    raise self.run.fatal from None
                raise
            self.counter.exported += len(outcome.acknowledged)
            self.counter.rejected.extend(outcome.rejections)
            if self.sink is not None and outcome.acknowledged:
                self.sink.acknowledged(outcome.acknowledged)
            if outcome.first_failure is not None and self.stop_on_error and self.stopped_by is None:
                self.stopped_by = f"a batch failed after retries ({outcome.first_failure})"
                self.failure = outcome.first_failure
                for waiting in self._pending:
                    waiting.cancel()  # only batches no worker has started: running ones finish
            self.emit()


def _cancelled_future() -> Future[_BatchOutcome]:
    future: Future[_BatchOutcome] = Future()
    future.cancel()
    return future
