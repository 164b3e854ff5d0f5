"""`AutopilotDestination`: the destination seam over an `AutopilotClient`.

What the engine asks, in Autopilot's terms:

- the target is the list titled like the segment (`lists.py`: found case-insensitively, created
  with a retry that never makes twins, converging on the lowest list_id);
- a batch is one bulk upsert (`POST /contacts`, at most 100) with `_autopilot_list` stamped into
  every contact; which contacts were stored comes from the answer's `email_contact_map`, read
  case-insensitively, or is confirmed by reads when the answer has ids only (`confirmation.py`);
- membership is the `_autopilot_list` verdict with its probe, check, one list read and one-by-one
  adds (`membership.py`);
- leavers are removed one by one (`DELETE /list/{id}/contact/{id}`; 404 means gone: acknowledged);
- the preflight compares the mapping's custom fields with the account's (`preflight.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol, cast

from ..._errors import APIConnectionError, APIError, ConfigurationError, NotFoundError
from ..base import (
    FATAL_ERRORS,
    Acknowledgement,
    CallStats,
    Capabilities,
    MappedRow,
    Membership,
    PlannedCost,
    PlannedWork,
    Target,
    never,
)
from .confirmation import confirm_stored
from .lists import ListInfo, find_list, resolve_list
from .membership import PROBES_PER_BATCH, ListMembership, ListMembershipDetector, MembershipClient, Verdict
from .preflight import check_custom_fields

__all__ = ["AUTOPILOT", "AutopilotDestination", "AutopilotLike"]

AUTOPILOT: Final = Capabilities(name="Autopilot", max_batch=100, removal_batch=1, member_page=100)
# Constant overhead of an export to a new list when Autopilot honours `_autopilot_list`: the list
# read, the create, the re-read after it and the one membership check.
_NEW_LIST_OVERHEAD_CALLS: Final = 4


_LEFT_OUT: Final = "Autopilot's bulk answer left this contact out: it was not stored"


class _UpsertAnswer(Protocol):
    @property
    def email_contact_map(self) -> Mapping[str, str]: ...


class AutopilotLike(Protocol):
    """The calls `AutopilotDestination` needs: an `AutopilotClient`'s (or a look-alike's).

    Optional, looked up when used: `account_fingerprint` (state), `iter_list_contacts` (one list read
    instead of one-by-one adds on a re-run), `get_contact` (answers without a map),
    `custom_fields` (the preflight) and `retry_policy` (the create's retries).
    """

    @property
    def requests_per_second(self) -> float: ...

    @property
    def stats(self) -> CallStats: ...

    def upsert_contacts(self, contacts: Sequence[Mapping[str, Any]]) -> _UpsertAnswer: ...

    def lists(self) -> Sequence[ListInfo]: ...

    def create_list(self, name: str) -> str: ...

    def is_on_list(self, list_id: str, contact: str) -> bool: ...

    def add_to_list(self, list_id: str, contact: str) -> bool: ...


class AutopilotDestination:
    """Exports segments to Autopilot lists through an `AutopilotClient`; see the module's doc."""

    capabilities: Final = AUTOPILOT

    def __init__(self, client: AutopilotLike) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"AutopilotDestination({self.client!r})"

    @property
    def requests_per_second(self) -> float:
        return self.client.requests_per_second

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def account_fingerprint(self) -> str:
        """The client's fingerprint as it always was (no namespace): earlier state files stay valid."""
        fingerprint = getattr(self.client, "account_fingerprint", None)
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ConfigurationError("state needs a client with account_fingerprint (an AutopilotClient)")
        return fingerprint

    @property
    def has_account_fingerprint(self) -> bool:
        return isinstance(getattr(self.client, "account_fingerprint", None), str)

    # -- target -------------------------------------------------------------------------------------

    def find_target(self, segment: str) -> Target | None:
        return find_list(self.client, segment)

    def resolve_target(self, segment: str, *, known_absent: bool = False) -> Target:
        return resolve_list(self.client, segment, known_absent=known_absent)

    # -- contacts -----------------------------------------------------------------------------------

    def upsert_batch(
        self, target: Target, contacts: Sequence[MappedRow], *, should_stop: Callable[[], bool] = never
    ) -> Sequence[Acknowledgement]:
        """One bulk upsert onto `target`'s list; stored contacts are those the answer names (by email,
        case-insensitively), or that reads confirm when it names ids only."""
        answer = self.client.upsert_contacts([{**c.payload, "_autopilot_list": target.id} for c in contacts])
        confirmation = confirm_stored(
            self.client, [c.email for c in contacts], answer, should_stop=should_stop
        )
        acknowledgements: list[Acknowledgement] = []
        for contact in contacts:
            key = contact.email.lower()
            contact_id = confirmation.stored.get(key)
            if contact_id is not None:
                acknowledgements.append(Acknowledgement.ok(contact_id))
            elif key in confirmation.unconfirmed:
                acknowledgements.append(
                    Acknowledgement.unconfirmed(confirmation.unconfirmed[key], confirmation.first_error)
                )
            else:
                acknowledgements.append(
                    Acknowledgement.refused(
                        "Autopilot's bulk answer left this contact out: it was not stored"
                    )
                )
        return acknowledgements

    def refusal_concerns_all(self, target: Target, contacts: Sequence[MappedRow], reason: str) -> bool:
        """Yes when `reason` names the list every contact is upserted to, or a custom field that every
        contact carries (by its name or its `type--Name` key): a field the account defines with another
        type refuses them all. A field only some contacts carry refuses only those: they are isolated.
        """
        if target.id in reason:
            return True
        common: set[str] | None = None
        for contact in contacts:
            custom = contact.payload.get("custom")
            keys = set(custom) if isinstance(custom, Mapping) else set()
            common = keys if common is None else common & keys
            if not common:
                return False
        keys = common or set()
        names = keys | {" ".join(key.split("--")[1:]) for key in keys}
        return any(name and name in reason for name in names)

    # -- membership ---------------------------------------------------------------------------------

    def open_membership(
        self, target: Target, *, remembered: str | None, should_stop: Callable[[], bool] = never
    ) -> Membership:
        verdict = cast(Verdict, remembered) if remembered in ("honoured", "ignored") else "unknown"
        detector = ListMembershipDetector(
            list_is_new=target.created, verdict=verdict, remembered=verdict != "unknown"
        )
        return ListMembership(
            client=cast(MembershipClient, self.client),
            list_id=target.id,
            detector=detector,
            should_stop=should_stop,
            can_list=callable(getattr(self.client, "iter_list_contacts", None)),
        )

    def remove_members(self, target: Target, contact_ids: Sequence[str]) -> Sequence[BaseException | None]:
        """`DELETE` each contact from the list, one call each; 2xx (`not_modified` too) or 404 (the
        contact is gone) acknowledge it. The contact itself is never deleted or unsubscribed."""
        remove = cast(Callable[[str, str], bool], self.client.remove_from_list)  # type: ignore[attr-defined]
        results: list[BaseException | None] = []
        for contact_id in contact_ids:
            try:
                remove(target.id, contact_id)
            except FATAL_ERRORS:
                raise
            except NotFoundError:
                results.append(None)
            except (APIError, APIConnectionError) as error:
                results.append(error)
            else:
                results.append(None)
        return results

    def iter_members(self, target: Target) -> Iterator[str | None]:
        reader = getattr(self.client, "iter_list_contacts", None)
        if not callable(reader):
            raise ConfigurationError("this client cannot read a list's members (no iter_list_contacts)")
        for member in reader(target.id):
            yield member.email

    # -- checks and plans ---------------------------------------------------------------------------

    def field_conflicts(self, mapping: object) -> Sequence[str]:
        return [conflict.describe() for conflict in check_custom_fields(self.client, mapping)]

    def plan_cost(self, work: PlannedWork) -> PlannedCost:
        """Best: Autopilot honours `_autopilot_list` (a new list: read, create, re-read, one check).
        Worst: every contact is added one by one; a stateless plan cannot know an existing list's
        size, and on a known list with no remembered verdict, the list may be read once."""
        batches = math.ceil(work.send / work.batch_size) if work.send else 0
        preflight = 1 if work.custom_fields else 0  # one read before the first write
        if work.target_known:
            # The list exists: one read, the bulk calls, the removals, and a probe + check if no
            # verdict is remembered.
            calls = 1 + batches + work.removals + (2 if work.send and work.remembered is None else 0)
            calls += preflight if work.send else 0
            worst = calls + (0 if work.remembered == "honoured" else work.new)
            if work.send and work.remembered is None:
                # If every probed contact is a member already, the list is read once more: its known
                # members' pages, and the remaining probes.
                pages = math.ceil(work.known_members / AUTOPILOT.member_page)
                worst += max(1, pages) + PROBES_PER_BATCH - 1
            return PlannedCost(best=calls, worst=worst)
        calls = preflight + (
            _NEW_LIST_OVERHEAD_CALLS + batches if work.send else _NEW_LIST_OVERHEAD_CALLS - 1
        )
        return PlannedCost(best=calls, worst=calls + work.send)
