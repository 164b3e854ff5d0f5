"""One export without state: resolve the target, stream the rows, send the batches, conclude.

`send` is also the sending half of a stateful export (`stateful.py`), which plugs in its own send
filter (unchanged contacts are skipped) and acknowledgement sink (the state records every batch).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .._destinations.base import FATAL_ERRORS, MappedRow, Membership, Target
from .._progress import ProgressSink
from .._rejections import Rejection
from .._report import ExportReport
from .accounting import RowCounter, Session, attach_report, conclude, interrupted
from .batch import ExportRun
from .guardrails import Preflight, empty_input_error
from .options import ExportContext
from .pipeline import Pipeline
from .seams import AcknowledgementSink, BatchSendFilter, SendFilter, batch_filter
from .startup import resolve_after_preflight

__all__ = ["export_stateless", "new_session", "send"]

_log = logging.getLogger("autopilot_segments.exporter")


def new_session(ctx: ExportContext, segment: str) -> Session:
    return Session(
        segment=segment,
        counter=RowCounter(ctx.options.max_profiles),
        started_at=ctx.now(),
        start=ctx.clock(),
        stats_before=ctx.destination.stats,
        preflight=Preflight(ctx.destination, ctx.mapping),
    )


def export_stateless(
    ctx: ExportContext,
    rows: Iterable[Mapping[str, Any]],
    *,
    segment: str,
    send_filter: SendFilter | BatchSendFilter,
    sink: AcknowledgementSink | None,
    force: bool = False,
) -> ExportReport:
    """The stateless export, with the seams incremental runs plug into (filter and sink)."""
    ctx.require_segment(segment)
    session = new_session(ctx, segment)
    items = ctx.mapping.map_rows(rows)
    # The same guard rail as with state: an empty extract is far more often a broken pipeline
    # than an empty segment, and not even the target is created before it is known to have rows.
    first = next(items, None)
    if first is None and not force:
        raise empty_input_error(segment)
    items = itertools.chain([] if first is None else [first], items)
    target = resolve_after_preflight(ctx.destination, segment, session.preflight)
    membership = ctx.destination.open_membership(target, remembered=None, should_stop=session.stop.is_set)
    progress = ctx.progress_sink(segment, rows)
    try:
        pipeline = send(
            ctx,
            session,
            target,
            membership,
            items,
            session.counter.admit,
            batch_filter(send_filter),
            sink,
            progress,
        )
    except KeyboardInterrupt as interrupt:
        raise interrupted(ctx, interrupt, session, target, membership) from interrupt
    finally:
        progress.close()
    return conclude(ctx, session, target, membership, pipeline.stopped_by, pipeline.failure, None)


def send(
    ctx: ExportContext,
    session: Session,
    target: Target,
    membership: Membership,
    items: Iterator[MappedRow | Rejection],
    admit: Callable[[MappedRow | Rejection], MappedRow | None],
    send_filter: BatchSendFilter,
    sink: AcknowledgementSink | None,
    progress: ProgressSink,
) -> Pipeline:
    """Stream `items` through the send filter into upserts onto the target; returns when all settled."""
    destination, options = ctx.destination, ctx.options
    _log.info(
        "export started: %s %s (created: %s)",
        destination.capabilities.target_noun,
        target.id,
        target.created,
    )
    run = ExportRun(
        destination=destination,
        target=target,
        membership=membership,
        stop_on_error=options.stop_on_error,
        stop=session.stop,
    )
    counter = session.counter

    def emit() -> None:
        calls = destination.stats.requests - session.stats_before.requests
        progress.emit(counter.progress(session.segment, calls, ctx.clock() - session.start))

    pipeline = Pipeline(
        run=run,
        counter=counter,
        sink=sink,
        concurrency=options.concurrency,
        stop_on_error=options.stop_on_error,
        emit=emit,
        before_first_send=session.preflight,
    )
    try:
        pipeline.feed(items, admit, send_filter, options.batch_size)
    except FATAL_ERRORS as error:
        # Keep the exact error type (callers catch it), but with what happened until then.
        attach_report(ctx, error, session, target, membership)
        raise
    return pipeline
