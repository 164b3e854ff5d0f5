"""`Exporter`: a segment of rows in, a destination target with exactly those contacts out, and a report.

One export: resolve the segment's target (an Autopilot list, ...: find or create it), map and
validate rows as they stream in, cut the valid contacts into batches of at most
`capabilities.max_batch`, keep `concurrency` of them in flight through the destination (whose rate
limiter and retrying transport every thread shares), bisect batches the destination refuses, make
sure every stored contact is a member of the target, and account for every row.

This module is the public face only; the flows live beside it: `stateless.py`, `stateful.py`,
`plan.py`, and below them `pipeline.py`, `batch.py`, `accounting.py`. Of the destination side the
engine knows `_destinations/base.py` alone (and `as_destination`, which wraps a client).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .._destinations import as_destination
from .._destinations.base import Destination
from .._errors import ConfigurationError
from .._progress import ProgressCallback, load_tqdm
from .._report import ExportReport
from .._state import RunRecord
from ..sources import rows_of
from .options import (
    ExportContext,
    ExportOptions,
    OnLeave,
    RowMapper,
    auto_concurrency,
    option_problems,
    utcnow,
)
from .plan import plan as plan_export
from .seams import AcknowledgementSink, BatchSendFilter, SendEverything, SendFilter
from .stateful import export_with_state, open_state
from .stateless import export_stateless

__all__ = ["Exporter", "RowMapper", "auto_concurrency"]


class Exporter:
    """Exports segments (iterables of row mappings) to a destination: Autopilot lists named after them.

    Parameters
    ----------
    client:
        An `AutopilotClient` (or anything with the same few calls), or any object implementing the
        destination seam (`_destinations.base.Destination`). Its rate limiter and retries apply to
        every request the exporter makes.
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
        Contacts per upsert, 1..the destination's maximum (100 for Autopilot); `None` (default): the
        maximum.
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
        now: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        destination = as_destination(client)
        if batch_size is None:
            batch_size = destination.capabilities.max_batch
        problems = option_problems(
            destination,
            max_profiles=max_profiles,
            concurrency=concurrency,
            batch_size=batch_size,
            state=state,
            on_leave=on_leave,
            max_removal_fraction=max_removal_fraction,
        )
        bar_class = None
        if progress:
            try:
                bar_class = load_tqdm()
            except ConfigurationError as exc:
                problems.extend(exc.problems)
        if problems:
            raise ConfigurationError(problems)
        self._client = client  # as given (an AutopilotClient stays reachable as it was)
        self._destination: Destination = destination
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

    @property
    def destination(self) -> Destination:
        """The destination exports go to (the client, wrapped by `as_destination`)."""
        return self._destination

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
        `ExportError` with the partial report when `stop_on_error=True` and a batch failed, or when
        `rows` raised mid-stream (the source's exception is its `cause`; with `state`, what was
        acknowledged is recorded, so a re-run completes the export), and
        `StateError` when the state file is locked, corrupt or from a newer version.
        """
        source = rows_of(rows)
        if self.state_path is None:
            return self._export(source, segment=segment, send_filter=SendEverything(), sink=None, force=force)
        return export_with_state(self._context(), source, segment=segment, full=full, force=force)

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
        with open_state(self._context()) as state:
            return state.history(segment)

    def plan(self, rows: object, *, segment: str, check_account: bool = False) -> ExportReport:
        """Dry run: map and validate every row and estimate the API cost. Makes no API call at all.

        With `check_account=True` it makes one read (Autopilot: `GET /contacts/custom_fields`, never a
        write): a custom field of the mapping that the account defines with another type is reported
        in `list_note` (an export would stop with `ConfigurationError` before writing anything).

        `exported` counts the rows that would be exported; the cost comes from the destination.
        `planned_calls` is the best case, `planned_calls_worst` the worst. For Autopilot: the best case
        is a new list whose bulk calls add the contacts to it, the worst that every contact must be
        added to the list one by one.
        A stateless plan cannot know an existing list's size: a stateless re-run onto a list whose
        probed contacts are all members also reads that list once (`ceil(members / 100)` calls), in
        place of the one-by-one adds.

        With `state` (an existing file; a missing one is not created), the plan uses the list of the
        segment's last run: rows the state says are unchanged count as `unchanged`, `removed` counts
        the leavers `on_leave="remove"` would remove, and `list_note` says if a guard rail would stop
        the export. No run is journaled.
        """
        ctx = self._context()
        ctx.require_segment(segment)
        source = rows_of(rows)
        if self.state_path is not None and os.path.exists(self.state_path):
            with open_state(ctx) as state:
                return plan_export(ctx, source, segment, state, check_account)
        return plan_export(ctx, source, segment, None, check_account)

    # -- internals --------------------------------------------------------------------------------

    def _context(self) -> ExportContext:
        """The settings as they are now (attributes may have been changed since construction)."""
        return ExportContext(
            destination=self._destination,
            mapping=self._mapping,
            options=ExportOptions(
                max_profiles=self.max_profiles,
                concurrency=self.concurrency,
                stop_on_error=self.stop_on_error,
                batch_size=self.batch_size,
                state_path=self.state_path,
                on_leave=self.on_leave,
                max_removal_fraction=self.max_removal_fraction,
            ),
            clock=self._clock,
            now=self._now,
            on_progress=self._on_progress,
            bar_class=self._bar_class,
        )

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
        return export_stateless(
            self._context(), rows, segment=segment, send_filter=send_filter, sink=sink, force=force
        )
