"""Sending a batch that the destination may reject because of a few contacts in it.

A batch answered with 400 is split in halves until every offending contact is isolated: the
other contacts still get through and each offender carries the destination's message. When both halves
of a refused piece are refused for the same reason (the destination's message, with the email addresses and
numbers it names left out) and the caller confirms that the reason can concern every item of the
piece (`concerns_all`: e.g. it names a custom field that every contact carries, which the account
defines with another type), the piece is not split further and all its contacts are refused with that
reason, so a batch refused as a whole costs 3 calls instead of ~2 per contact. Without that
confirmation, two offenders of the same kind, one in each half, would take the whole piece down with
them. This module only does the bookkeeping; the caller supplies `send` (one API call) and decides
what the answers mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import attrs

from .._destinations.base import FATAL_ERRORS, ExportAborted
from .._errors import APIConnectionError, APIError, BadRequestError
from .batching import halves

__all__ = ["FATAL_ERRORS", "BisectionResult", "ExportAborted", "send_with_bisection"]

T = TypeVar("T")
A = TypeVar("A")

# An email address as a destination's messages name one, quoted or not.
_EMAIL = re.compile(r"[^\s\"'<>(),;:@]+@[^\s\"'<>(),;:@]+")
_NUMBER = re.compile(r"\d+")


def without_emails(message: str) -> str:
    """A destination's message with the email addresses it names replaced by `<email>`."""
    return _EMAIL.sub("<email>", message).strip()


def same_reason_key(message: str) -> str:
    """Equal for two messages giving the same reason about different contacts (emails, positions)."""
    return _NUMBER.sub("#", without_emails(message))


def _always(_piece: Sequence[Any], _reason: str) -> bool:
    return True


@attrs.define
class BisectionResult(Generic[T, A]):
    """What happened to every item of one batch: accepted pieces, isolated offenders, failed pieces.

    `refused` are pieces whose halves were both refused for the same reason, with that reason (emails
    left out): every item of such a piece was refused by the destination.
    """

    accepted: list[tuple[Sequence[T], A]] = attrs.Factory(list)
    isolated: list[tuple[T, BadRequestError]] = attrs.Factory(list)
    failed: list[tuple[Sequence[T], APIError | APIConnectionError]] = attrs.Factory(list)
    refused: list[tuple[Sequence[T], str]] = attrs.Factory(list)
    calls: int = 0


def send_with_bisection(
    items: Sequence[T],
    send: Callable[[Sequence[T]], A],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    concerns_all: Callable[[Sequence[T], str], bool] = _always,
) -> BisectionResult[T, A]:
    """Send `items`; on `BadRequestError` send each half, recursively, until offenders are single items.

    A refused piece whose two halves are both refused for the same reason, a reason that
    `concerns_all(piece, message)` says can concern every item, is not split further (see the
    module's doc). A piece that fails for another API reason (retries exhausted, connection lost)
    is recorded as failed and the rest goes on. 401/403 propagate at once. `should_stop` is checked
    before every call; when it says stop, `ExportAborted` is raised and nothing more is sent.
    """
    result: BisectionResult[T, A] = BisectionResult()

    def attempt(piece: Sequence[T]) -> BadRequestError | None:
        """Send one piece; the 400 it got, or None when it was settled (accepted or failed)."""
        if should_stop():
            raise ExportAborted
        result.calls += 1
        try:
            answer = send(piece)
        except FATAL_ERRORS:
            raise
        except BadRequestError as error:
            return error
        except (APIError, APIConnectionError) as error:
            result.failed.append((piece, error))
        else:
            result.accepted.append((piece, answer))
        return None

    # Refused pieces still to split, each with its 400; left is popped first: input order is kept.
    stack: list[tuple[Sequence[T], BadRequestError]] = []
    if items:
        first = attempt(items)
        if first is not None:
            stack.append((items, first))
    while stack:
        piece, error = stack.pop()
        if len(piece) == 1:
            result.isolated.append((piece[0], error))
            continue
        left, right = halves(piece)
        left_error = attempt(left)
        right_error = attempt(right)
        if left_error is not None and right_error is not None:
            reason = without_emails(left_error.message)
            same = same_reason_key(left_error.message) == same_reason_key(right_error.message)
            if same and concerns_all(piece, reason):
                result.refused.append((piece, reason))
                continue
        stack.extend((p, e) for p, e in ((right, right_error), (left, left_error)) if e is not None)
    return result
