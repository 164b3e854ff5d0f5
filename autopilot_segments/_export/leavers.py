"""Removing leavers (contacts exported earlier, no longer in the segment) through the seam, in batches.

Leavers come from the state (`ExportState.leavers`); each group of `capabilities.removal_batch`
contact ids is one `Destination.remove_members` call, a few of them in flight on a small thread pool.
A removal the destination acknowledges is forgotten by the state; any other is kept for the next run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Final

import attrs

from .._destinations.base import FATAL_ERRORS, Destination, ExportAborted, Target
from .._errors import APIConnectionError, APIError
from .._state import ExportState

__all__ = ["RemovalOutcome", "remove_leavers"]

_FORGET_EVERY: Final = 100


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
