"""One batch: its upsert (with bisection), each contact's acknowledgement, and its membership.

`ExportRun` is what the worker threads of one export share: the destination, the target, the
`Membership`, and the brakes (`stop` for 401/403 and Ctrl-C, `halted` for `stop_on_error`). A batch
ends as a `BatchOutcome`: the contacts acknowledged and now members, one rejection for every other
contact, and the first failure (for `stop_on_error`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs

from .._destinations.base import (
    FATAL_ERRORS,
    Acknowledgement,
    Destination,
    MappedRow,
    Membership,
    MembershipResult,
    Target,
)
from .._rejections import Rejection
from .accounting import NOT_SENT, rejection
from .bisection import send_with_bisection
from .seams import AcknowledgedEntry, ListedContact

__all__ = ["BatchOutcome", "ExportRun"]


@attrs.frozen
class BatchOutcome:
    acknowledged: list[AcknowledgedEntry]
    rejections: list[Rejection]
    first_failure: BaseException | None


@attrs.define
class ExportRun:
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

    def process_batch(self, batch: Sequence[MappedRow]) -> BatchOutcome:
        """Upsert one batch (bisecting refused ones), then make sure its stored contacts are members."""
        if self.stop.is_set() or self.halted.is_set():
            return BatchOutcome([], [rejection(c, "failed", NOT_SENT) for c in batch], None)
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

    def _process(self, batch: Sequence[MappedRow]) -> BatchOutcome:
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
                rejections.append(rejection(contact, answer.reason, answer.problem))
        for piece, reason in result.refused:
            message = (
                f"{name} refused the whole batch (its halves failed for the same reason, so it was not "
                f"split further): {reason}"
            )
            rejections.extend(rejection(contact, "rejected_by_api", message) for contact in piece)
        for contact, error in result.isolated:
            message = f"{name} rejected this contact: {error.message}"
            rejections.append(rejection(contact, "rejected_by_api", message))
        for failed_piece, failed_error in result.failed:
            failure = failure or failed_error
            rejections.extend(rejection(c, "failed", f"not stored: {failed_error}") for c in failed_piece)
        # Contacts the state knows as members only needed their upsert, unless the destination answered
        # with another contact id: deleted and re-created since, so no longer a member (see ListedContact).
        listed = [pair for pair in acknowledged if _still_listed(*pair)]
        if listed:
            acknowledged = [pair for pair in acknowledged if not _still_listed(*pair)]
        # From here on the membership owns what its claim holds, if anything.
        made: MembershipResult = self.membership.after_upsert(acknowledged, claim)
        members = listed + list(made.members)
        rejections.extend(rejection(contact, "failed", message) for contact, message in made.failures)
        entries = [
            AcknowledgedEntry(row=c.row, email=c.email, contact_id=cid, payload=c.payload)
            for c, cid in members
        ]
        return BatchOutcome(entries, rejections, failure or made.error)

    def _concerns_all(self, piece: Sequence[MappedRow], reason: str) -> bool:
        """Can the destination's refusal `reason` concern every contact of `piece`? (Then bisecting
        it is pointless.)"""
        return self.destination.refusal_concerns_all(self.target, piece, reason)

    def _upsert(self, piece: Sequence[MappedRow]) -> Sequence[Acknowledgement]:
        return self.destination.upsert_batch(self.target, piece, should_stop=self.stop.is_set)


def _still_listed(contact: MappedRow, contact_id: str) -> bool:
    """A contact the state knows as a member, upserted under the contact id the state remembers."""
    return isinstance(contact, ListedContact) and contact.contact_id in (None, contact_id)
