"""The seams for incremental exports: what to send, and what to do once a batch is acknowledged.

The exporter sends every valid row and does nothing after a batch by default. An incremental run
plugs in a `SendFilter` (skip rows unchanged since the last run: they count as `unchanged`) and an
`AcknowledgementSink` (record what the destination acknowledged). Both are called on the exporter's own
thread, in order of acknowledgement, so they may hold a SQLite connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

import attrs

from .._destinations.base import MappedRow

__all__ = [
    "AcknowledgedEntry",
    "AcknowledgementSink",
    "BatchSendFilter",
    "ListedContact",
    "MappedRow",
    "SendEverything",
    "SendFilter",
    "batch_filter",
]


@attrs.frozen(kw_only=True)
class AcknowledgedEntry:
    """One contact the destination stored and that is now a member of the segment's target."""

    row: int
    email: str
    contact_id: str
    payload: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class ListedContact:
    """A contact to send that the state knows is a member of the target already (its payload changed).

    Its membership needs no membership work (the `Membership` never sees it): only its upsert is sent,
    as long as the upsert answers with the remembered `contact_id`. Another id means the contact was
    deleted in the destination and re-created by this upsert (a deleted contact leaves every target):
    then the remembered membership is void, and the contact is made a member like a new one.
    """

    row: int
    email: str
    payload: Mapping[str, Any]
    contact_id: str | None = None


class SendFilter(Protocol):
    def should_send(self, contact: MappedRow) -> bool:
        """False to skip the row as `unchanged`."""


class AcknowledgementSink(Protocol):
    def acknowledged(self, entries: Sequence[AcknowledgedEntry]) -> None:
        """Called once per acknowledged batch with the contacts it exported."""


class BatchSendFilter(Protocol):
    def select(self, contacts: Sequence[MappedRow]) -> Sequence[MappedRow]:
        """The contacts to send, in order (maybe as `ListedContact`); the others count as `unchanged`.

        Called with up to one batch of contacts at a time, so a lookup can serve a whole batch.
        """


class SendEverything:
    """The default filter: every valid row is sent."""

    def should_send(self, contact: MappedRow) -> bool:
        return True

    def select(self, contacts: Sequence[MappedRow]) -> Sequence[MappedRow]:
        return contacts


@attrs.frozen
class _OneByOne:
    inner: SendFilter

    def select(self, contacts: Sequence[MappedRow]) -> Sequence[MappedRow]:
        return [c for c in contacts if self.inner.should_send(c)]


def batch_filter(send_filter: SendFilter | BatchSendFilter) -> BatchSendFilter:
    """A filter deciding per batch: batch filters as they are, per-contact ones wrapped."""
    if callable(getattr(send_filter, "select", None)):
        return cast(BatchSendFilter, send_filter)
    return _OneByOne(cast(SendFilter, send_filter))
