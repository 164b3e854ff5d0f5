"""The pipeline: rows read on the caller's thread, a bounded number of batches in flight on a pool.

Batches go to `ExportRun.process_batch` on worker threads; at most twice `concurrency` are pending,
so memory stays flat however long the input. A source that fails mid-stream stops the export as a
batch failing under `stop_on_error` does (`ExportError` with the partial report). After an abort
(401/403, a bug, Ctrl-C) the batches that completed meanwhile are still counted and recorded; every
other contact gets its one outcome (`failed`, "not sent" or "not confirmed").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Final

import attrs

from .._destinations.base import ExportAborted, MappedRow
from .._rejections import Rejection
from .accounting import NOT_SENT, RowCounter, input_failed, rejection
from .batch import BatchOutcome, ExportRun
from .seams import AcknowledgementSink, BatchSendFilter

__all__ = ["PROGRESS_EVERY_ROWS", "Pipeline"]

_log = logging.getLogger("autopilot_segments.exporter")
PROGRESS_EVERY_ROWS: Final = 5_000


@attrs.define
class Pipeline:
    """Reads mapped rows on the caller's thread and keeps a bounded number of batches in flight."""

    run: ExportRun
    counter: RowCounter
    sink: AcknowledgementSink | None
    concurrency: int
    stop_on_error: bool
    emit: Callable[[], None]
    before_first_send: Callable[[], None] | None = None
    stopped_by: str | None = None
    failure: BaseException | None = None
    _pending: dict[Future[BatchOutcome], Sequence[MappedRow]] = attrs.Factory(dict)
    _accounting: _Accounting | None = None

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
            for read, item in enumerate(self._reading(items), start=1):
                contact = admit(item)
                if contact is not None:
                    candidates.append(contact)
                    if len(candidates) >= batch_size:
                        select()
                if len(batch) >= batch_size:
                    self._submit(executor, batch[:batch_size])
                    del batch[:batch_size]
                elif read % PROGRESS_EVERY_ROWS == 0:
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
            # 401/403, a bug, Ctrl-C: nothing more may be sent. Batches that
            # were acknowledged meanwhile are still counted and recorded, so that a re-run (with state)
            # does not send them again and the partial report keeps them.
            self.run.stop.set()
            self._finish_accounting()
            for future in self._pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)
            self._settle_after_abort(error)
            for contact in [*batch, *candidates]:
                counter.rejected.append(rejection(contact, "failed", NOT_SENT))
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
        for contact in [*batch, *candidates]:  # read but never submitted because the export stopped
            counter.rejected.append(rejection(contact, "failed", NOT_SENT))

    def _reading(self, items: Iterator[MappedRow | Rejection]) -> Iterator[MappedRow | Rejection]:
        """`items`, until the source fails: then the export stops as `stop_on_error` stops it.

        A source that raises mid-stream (a database connection dropping, a malformed line deep in a
        file) does not abort like a 401: nothing more is read, the batches already queued are sent and
        settle, the rows of the batch being filled are not sent, and the export ends with `ExportError`
        (the partial report, the source's error as its cause). Ctrl-C (not an `Exception`) still goes
        through as it is.
        """
        read = 0
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except Exception as error:  # anything the source (or the mapping of its rows) raised
                self.stopped_by = input_failed(read, error)
                self.failure = error
                # The batches already queued hold rows read before the failure: they are still sent.
                # The type only: the message may quote the input (personal data stays out of logs).
                _log.warning(
                    "export stopped: reading the rows failed after %d rows (%s)", read, type(error).__name__
                )
                return
            read += 1
            yield item

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
                self.counter.rejected.extend(rejection(c, "failed", NOT_SENT) for c in batch)
                continue
            try:
                outcome = future.result()
            except BaseException as error:
                # Its rows get their outcome now; the batches done with it are settled by feed().
                self.counter.rejected.extend(rejection(c, "failed", _aborted(error, self.run)) for c in batch)
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

    def _account(self, outcome: BatchOutcome) -> None:
        # Ctrl-C (or SIGTERM, raised as one) may land anywhere in here, most likely during the state's
        # write, the longest step. So the state is written first (one transaction, and writing it again
        # is harmless), the counts after, and an abort finishes a batch caught halfway
        # (`_finish_accounting`): the report never counts a batch the state lacks, nor loses its rows.
        step = self._accounting = _Accounting(outcome)
        self._record(outcome)
        step.recorded = True
        self._count(outcome)
        step.counted = True
        self._accounting = None

    def _record(self, outcome: BatchOutcome) -> None:
        if self.sink is not None and outcome.acknowledged:
            self.sink.acknowledged(outcome.acknowledged)

    def _count(self, outcome: BatchOutcome) -> None:
        self.counter.exported += len(outcome.acknowledged)
        self.counter.rejected.extend(outcome.rejections)

    def _finish_accounting(self) -> None:
        """After an abort: take in the batch whose accounting the abort cut short, if any."""
        step, self._accounting = self._accounting, None
        if step is None or step.counted:
            return
        if not step.recorded:
            try:
                self._record(step.outcome)
            except Exception:
                _log.warning("could not record a batch acknowledged before the export aborted", exc_info=True)
        self._count(step.outcome)

    def _settle_after_abort(self, error: BaseException) -> None:
        """Every worker has stopped: count (and record) the batches that completed, fail the others."""
        sink_broken = False
        for future, batch in list(self._pending.items()):
            del self._pending[future]
            if future.cancelled():
                self.counter.rejected.extend(rejection(c, "failed", NOT_SENT) for c in batch)
                continue
            failure = future.exception()
            if failure is not None:
                message = _aborted(failure if not isinstance(failure, ExportAborted) else error, self.run)
                self.counter.rejected.extend(rejection(c, "failed", message) for c in batch)
                continue
            outcome = future.result()
            self.counter.exported += len(outcome.acknowledged)
            self.counter.rejected.extend(outcome.rejections)
            if self.sink is None or not outcome.acknowledged or sink_broken:
                continue
            try:
                self.sink.acknowledged(outcome.acknowledged)
            except Exception:
                # The sink (the state?) failed too: keep raising the original error.
                _log.warning("could not record a batch acknowledged before the export aborted", exc_info=True)
                sink_broken = True


@attrs.define
class _Accounting:
    """A settled batch being taken in: how far its recording and counting got."""

    outcome: BatchOutcome
    recorded: bool = False
    counted: bool = False


def _aborted(error: BaseException, run: ExportRun) -> str:
    cause = run.fatal if isinstance(error, ExportAborted) and run.fatal is not None else error
    if isinstance(cause, ExportAborted):
        return "not confirmed: the export was aborted"
    return f"not confirmed: the export was aborted ({cause})"


def _cancelled_future() -> Future[BatchOutcome]:
    future: Future[BatchOutcome] = Future()
    future.cancel()
    return future
