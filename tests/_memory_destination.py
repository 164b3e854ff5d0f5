"""An in-memory `Destination` (as httpx's `MockTransport` is a transport): no HTTP, no platform.

It shows the engine's seam is neutral: the `Exporter` drives it through `_destinations.base` alone.
Its target is a tag named like the segment; membership travels in the upsert (as Ortto's tags do),
so its `Membership` has nothing to do. Faults are chosen per email:

- `invalid`: emails whose presence makes a whole upsert answer 400 (the engine bisects them out);
- `left_out`: emails acknowledged without a contact id (refused, `rejected_by_api`);
- `unconfirmed`: emails whose storage is unknown (`failed`, with an API error);
- `fatal_after`: after that many upserts, every call answers 401 (`AuthenticationError`);
- `failing_removals`: contact ids whose removal answers a 503.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from autopilot_segments import AuthenticationError, BadRequestError, ServerError
from autopilot_segments._destinations.base import (
    Acknowledgement,
    Capabilities,
    MappedRow,
    MembershipResult,
    PlannedCost,
    PlannedWork,
    Target,
    never,
)


@attrs.define
class MemoryStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


def _api_error(cls: type[Any], status: int, message: str) -> Any:
    return cls(status=status, method="POST", url="memory://", message=message)


class NothingToDo:
    """Membership that travels in the upsert: every stored contact is a member already."""

    description = "tagged in the upsert"
    verdict = None

    def before_upsert(self, batch: Sequence[MappedRow]) -> None:
        return None

    def after_upsert(self, stored: Sequence[tuple[MappedRow, str]], claim: object | None) -> MembershipResult:
        return MembershipResult(members=list(stored))

    def cancel(self, claim: object | None) -> None:
        return None


@attrs.define
class MemoryDestination:
    max_batch: int = 50
    removal_batch: int = 7
    invalid: frozenset[str] = frozenset()
    left_out: frozenset[str] = frozenset()
    unconfirmed: frozenset[str] = frozenset()
    fatal_after: int | None = None
    failing_removals: frozenset[str] = frozenset()
    requests_per_second: float = 1000.0
    account_fingerprint: str = "memory:account-1"
    # What the "platform" holds: contact id by email, payload by contact id, members by tag.
    contacts: dict[str, str] = attrs.Factory(dict)
    payloads: dict[str, Any] = attrs.Factory(dict)
    tags: dict[str, set[str]] = attrs.Factory(dict)
    upserts: list[list[str]] = attrs.Factory(list)
    removal_calls: list[list[str]] = attrs.Factory(list)
    _stats: MemoryStats = attrs.Factory(MemoryStats)
    _lock: threading.Lock = attrs.Factory(threading.Lock)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="Memory", max_batch=self.max_batch, removal_batch=self.removal_batch, target_noun="tag"
        )

    @property
    def stats(self) -> MemoryStats:
        with self._lock:
            return attrs.evolve(self._stats)

    def _call(self) -> None:
        with self._lock:
            self._stats.requests += 1
            if self.fatal_after is not None and self._stats.requests > self.fatal_after:
                raise _api_error(AuthenticationError, 401, "the key was revoked")

    def members(self, segment: str) -> set[str]:
        """The emails tagged with `segment`."""
        by_id = {cid: email for email, cid in self.contacts.items()}
        return {by_id[cid] for cid in self.tags.get(segment, set())}

    def find_target(self, segment: str) -> Target | None:
        self._call()
        return Target(id=segment, title=segment) if segment in self.tags else None

    def resolve_target(self, segment: str, *, known_absent: bool = False) -> Target:
        self._call()
        with self._lock:
            created = segment not in self.tags
            self.tags.setdefault(segment, set())
        return Target(id=segment, title=segment, created=created)

    def upsert_batch(
        self, target: Target, contacts: Sequence[MappedRow], *, should_stop: Callable[[], bool] = never
    ) -> Sequence[Acknowledgement]:
        assert 1 <= len(contacts) <= self.max_batch
        self._call()
        emails = [c.email for c in contacts]
        with self._lock:
            self.upserts.append(emails)
        bad = [e for e in emails if e in self.invalid]
        if bad:
            raise _api_error(BadRequestError, 400, f"invalid value in contact {bad[0]}")
        answers: list[Acknowledgement] = []
        with self._lock:
            for contact in contacts:
                if contact.email in self.left_out:
                    answers.append(Acknowledgement.refused("the memory destination left it out"))
                    continue
                contact_id = self.contacts.setdefault(contact.email, f"c{len(self.contacts) + 1}")
                self.payloads[contact_id] = dict(contact.payload)
                self.tags[target.id].add(contact_id)
                if contact.email in self.unconfirmed:
                    error = _api_error(ServerError, 503, "could not confirm")
                    answers.append(Acknowledgement.unconfirmed("storage unknown", error))
                else:
                    answers.append(Acknowledgement.ok(contact_id))
        return answers

    def refusal_concerns_all(self, target: Target, contacts: Sequence[MappedRow], reason: str) -> bool:
        return False

    def open_membership(
        self, target: Target, *, remembered: str | None, should_stop: Callable[[], bool] = never
    ) -> NothingToDo:
        return NothingToDo()

    def remove_members(self, target: Target, contact_ids: Sequence[str]) -> Sequence[BaseException | None]:
        assert 1 <= len(contact_ids) <= self.removal_batch
        self._call()
        results: list[BaseException | None] = []
        with self._lock:
            self.removal_calls.append(list(contact_ids))
            for contact_id in contact_ids:
                if contact_id in self.failing_removals:
                    results.append(_api_error(ServerError, 503, "try again"))
                else:
                    self.tags[target.id].discard(contact_id)
                    results.append(None)
        return results

    def iter_members(self, target: Target) -> Iterator[str | None]:
        yield from sorted(self.members(target.id))

    def field_conflicts(self, mapping: object) -> Sequence[str]:
        return []

    def plan_cost(self, work: PlannedWork) -> PlannedCost:
        calls = 1 + math.ceil(work.send / work.batch_size) + math.ceil(work.removals / self.removal_batch)
        return PlannedCost(best=calls, worst=calls)
