"""The export state plugged into the exporter: what to send, what to record, and who is in the segment.

These are the `BatchSendFilter` and `AcknowledgementSink` the exporter's seams take (see
`seams.py`), plus the seen set of a two-pass export (leavers are removed by `leavers.py`). All of it
runs on the exporter's own thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs

from .._destinations.base import Membership
from .._rejections import Rejection
from .._state import ExportState, RunRecord, needs_sending
from .seams import AcknowledgedEntry, ListedContact, MappedRow

__all__ = ["SeenSet", "StateFilter", "StateSink", "seen_email"]

_SEEN_FLUSH: Final = 1000
# Rows refused for a fixable reason still name a contact of the segment: they must never make it a leaver.
_SEEN_REJECTIONS: Final = frozenset({"invalid_value", "duplicate_email", "over_limit"})


def seen_email(item: Rejection) -> str | None:
    """The email of a rejected row that still belongs to the segment (a bad value, a duplicate, the cap)."""
    return item.email if item.reason in _SEEN_REJECTIONS and item.email else None


@attrs.define
class StateFilter:
    """Sends contacts that are new on the list or whose payload changed (all of them with `run.full`).

    A changed contact the state knows as a member comes back as a `ListedContact`: its membership
    needs no check and no explicit add. A full resend re-checks everyone's membership: it is what
    to run when the target may have been edited inside the destination.
    """

    state: ExportState
    list_id: str
    run: RunRecord

    def select(self, contacts: Sequence[MappedRow]) -> Sequence[MappedRow]:
        state = self.state
        hashes = [state.hash_email(c.email) for c in contacts]
        known = state.lookup(self.list_id, hashes)
        chosen: list[MappedRow] = []
        for contact, email_hash in zip(contacts, hashes, strict=True):
            record = known.get(email_hash)
            if not needs_sending(self.run, record, state.hash_payload(contact.payload)):
                continue
            if record is None or self.run.full:
                chosen.append(contact)
            else:
                chosen.append(
                    ListedContact(
                        row=contact.row,
                        email=contact.email,
                        payload=contact.payload,
                        contact_id=record.contact_id,
                    )
                )
        return chosen


@attrs.define
class StateSink:
    """Records every acknowledged batch in one transaction, and a verified membership verdict once."""

    state: ExportState
    list_id: str
    run_id: int
    membership: Membership
    remembered: str | None = None
    recorded: int = 0
    _verdict_saved: bool = attrs.field(init=False, default=False)

    def acknowledged(self, entries: Sequence[AcknowledgedEntry]) -> None:
        state = self.state
        self.recorded += state.record_acknowledged(
            self.list_id,
            [(state.hash_email(e.email), e.contact_id, state.hash_payload(e.payload)) for e in entries],
            run_id=self.run_id,
        )
        self.remember_verdict()

    def remember_verdict(self) -> None:
        if self._verdict_saved:
            return
        verdict = self.membership.verdict
        if verdict is not None and verdict != self.remembered:
            self.state.remember_membership_verdict(self.list_id, verdict)
            self._verdict_saved = True


@attrs.define
class SeenSet:
    """The emails of this run's rows, as hashes in the state's temporary seen table (never in the file)."""

    state: ExportState
    run_id: int
    _pending: list[bytes] = attrs.Factory(list)

    def add(self, email: str) -> None:
        self._pending.append(self.state.hash_email(email))
        if len(self._pending) >= _SEEN_FLUSH:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.state.mark_seen(self.run_id, self._pending)
            self._pending = []
