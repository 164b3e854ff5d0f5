"""Sending a batch that Autopilot may reject because of a few contacts in it.

A bulk call answered with 400 is split in halves until every offending contact is isolated: the
other contacts still get through and each offender carries Autopilot's message. This module only does
the bookkeeping; the caller supplies `send` (one API call) and decides what the answers mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import attrs

from ._batching import halves
from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    PermissionDeniedError,
)

__all__ = ["BisectionResult", "ExportAborted", "send_with_bisection"]

T = TypeVar("T")
A = TypeVar("A")

# Errors after which nothing more may be sent: the key is wrong or not allowed to write.
FATAL_ERRORS: tuple[type[BaseException], ...] = (AuthenticationError, PermissionDeniedError)


class ExportAborted(Exception):
    """Raised inside a worker when the export was aborted elsewhere; never escapes the exporter."""


@attrs.define
class BisectionResult(Generic[T, A]):
    """What happened to every item of one batch: accepted pieces, isolated offenders, failed pieces."""

    accepted: list[tuple[Sequence[T], A]] = attrs.Factory(list)
    isolated: list[tuple[T, BadRequestError]] = attrs.Factory(list)
    failed: list[tuple[Sequence[T], APIError | APIConnectionError]] = attrs.Factory(list)
    calls: int = 0


def send_with_bisection(
    items: Sequence[T],
    send: Callable[[Sequence[T]], A],
    *,
    should_stop: Callable[[], bool] = lambda: False,
) -> BisectionResult[T, A]:
    """Send `items`; on `BadRequestError` send each half, recursively, until offenders are single items.

    A piece that fails for another API reason (retries exhausted, connection lost) is recorded as
    failed and the rest goes on. 401/403 propagate at once. `should_stop` is checked before every
    call; when it says stop, `ExportAborted` is raised and nothing more is sent.
    """
    result: BisectionResult[T, A] = BisectionResult()
    stack: list[Sequence[T]] = [items] if items else []
    while stack:
        piece = stack.pop()
        if should_stop():
            raise ExportAborted
        result.calls += 1
        try:
            answer = send(piece)
        except FATAL_ERRORS:
            raise
        except BadRequestError as error:
            if len(piece) == 1:
                result.isolated.append((piece[0], error))
            else:
                left, right = halves(piece)
                stack.extend((right, left))  # left is popped first: input order is kept
        except (APIError, APIConnectionError) as error:
            result.failed.append((piece, error))
        else:
            result.accepted.append((piece, answer))
    return result
