"""The few calls the exporter needs from a destination (the Autopilot client today).

Keeping this narrow is deliberate: anything that offers these calls can receive an export, so a
second destination (e.g. Ortto's API) only has to implement this protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "CallStats",
    "Destination",
    "ListInfo",
    "ListMember",
    "MemberListing",
    "StatefulDestination",
    "UpsertAnswer",
]


class UpsertAnswer(Protocol):
    """The answer to one bulk upsert: which submitted emails were stored, under which contact ids."""

    @property
    def email_contact_map(self) -> Mapping[str, str]: ...


class ListInfo(Protocol):
    @property
    def list_id(self) -> str: ...

    @property
    def title(self) -> str: ...


class ListMember(Protocol):
    @property
    def email(self) -> str | None: ...


class CallStats(Protocol):
    """Running totals kept by the destination's transport."""

    @property
    def requests(self) -> int: ...

    @property
    def retries(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...


class Destination(Protocol):
    """What `Exporter` calls. Retries and rate limiting are the destination's job, not the exporter's."""

    @property
    def requests_per_second(self) -> float: ...

    @property
    def stats(self) -> CallStats: ...

    def upsert_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> UpsertAnswer: ...

    def lists(self) -> Sequence[ListInfo]: ...

    def create_list(self, name: str) -> str: ...

    def is_on_list(self, list_id: str, contact: str) -> bool: ...

    def add_to_list(self, list_id: str, contact: str) -> bool: ...


class StatefulDestination(Destination, Protocol):
    """What a stateful export also needs: an account identity for the state, and removals for leavers."""

    @property
    def account_fingerprint(self) -> str: ...

    def remove_from_list(self, list_id: str, contact: str) -> bool: ...


class MemberListing(Protocol):
    """Optional: reading a list's members, page by page. With it, a stateless re-run onto a list of
    existing members reads the list once instead of adding every contact one by one."""

    def iter_list_contacts(self, list_id: str) -> Iterator[ListMember]: ...
