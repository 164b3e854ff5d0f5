"""The destination seam: everything the export engine may ask of a destination, and nothing more.

The engine (`Exporter` and the modules behind it) holds one `Destination`, as httpx's `Client` holds
one `BaseTransport`: it never names a platform, never builds a request and never reads an answer's
shape. Every quirk of a platform (Autopilot's lists and `_autopilot_list`, Ortto's tags and person
merges) lives behind this protocol, in `_destinations/<name>/destination.py`. The engine reaches a
destination only through this module; `as_destination()` (in `_destinations/__init__.py`) turns a
client into a `Destination`.

The promises below are what the engine's guarantees rest on ("a row counts as exported only if the
destination acknowledged it", "every row ends in exactly one outcome", "leavers are removed, never
deleted or unsubscribed"). A destination that breaks one breaks an export's report.

Vocabulary: a *target* is where a segment goes (an Autopilot list, an Ortto tag); a *contact id* is
the destination's own id for a stored contact (an Autopilot contact id, an Ortto person id); a
*member* is a contact that belongs to the target.

Errors: the API error classes of `_errors.py` (`APIError` and its subclasses, `APIConnectionError`)
are shared by every destination. `AuthenticationError`/`PermissionDeniedError` (401/403) are fatal:
a method raises them at once and the engine stops sending. A method raises anything else only after
its own pacing and retries. `ExportAborted` is raised by a method whose `should_stop` says stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .._errors import AuthenticationError, PermissionDeniedError
from .._rejections import RejectionReason

__all__ = [
    "FATAL_ERRORS",
    "Acknowledgement",
    "CallStats",
    "Capabilities",
    "Claim",
    "Destination",
    "ExportAborted",
    "MappedRow",
    "Membership",
    "MembershipResult",
    "PlannedCost",
    "PlannedWork",
    "Target",
    "never",
]


# Errors after which nothing more may be sent: the key is wrong or not allowed to write.
FATAL_ERRORS: tuple[type[BaseException], ...] = (AuthenticationError, PermissionDeniedError)


class ExportAborted(Exception):
    """Raised inside a worker when the export was aborted elsewhere; never escapes the exporter."""


def never() -> bool:
    """The default `should_stop`: never stop."""
    return False


class MappedRow(Protocol):
    """A valid row, as the mapping layer yields it: its 1-based row number, email and payload.

    The payload is the mapping's (today Autopilot-shaped: `Email`, `FirstName`, `custom` with
    `type--Name` keys); a destination with another field dialect translates it in `upsert_batch`.
    """

    @property
    def row(self) -> int: ...

    @property
    def email(self) -> str: ...

    @property
    def payload(self) -> Mapping[str, Any]: ...


class CallStats(Protocol):
    """Running totals kept by the destination's transport (requests made, retries, 429s)."""

    @property
    def requests(self) -> int: ...

    @property
    def retries(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a destination is called and the limits the engine must respect; declared, never probed.

    - `name`: the platform's name ("Autopilot", "Ortto"), used in messages and reports.
    - `max_batch`: most contacts one `upsert_batch` call takes (the engine's `batch_size` ceiling).
    - `removal_batch`: most contact ids one `remove_members` call takes.
    - `target_noun`: what a target is called in messages ("list", "tag").
    - `member_page`: members returned per page by `iter_members` (for plans); 0 if unknown.
    """

    name: str
    max_batch: int = attrs.field(validator=attrs.validators.ge(1))
    removal_batch: int = attrs.field(validator=attrs.validators.ge(1))
    target_noun: str = "list"
    member_page: int = 0


@attrs.frozen(kw_only=True)
class Target:
    """Where a segment goes: an Autopilot list (id = list_id), an Ortto tag (id = the tag).

    `created` is True when this run made it (so nobody was a member before); `note` says why this
    target was chosen when that is not obvious (duplicates, a 409, a lost answer), else "".
    """

    id: str
    title: str
    created: bool = False
    note: str = ""


@attrs.frozen
class Acknowledgement:
    """What the destination said about one submitted contact.

    `contact_id` set: the contact is stored (and, when the destination's membership travels in the
    upsert, tagged/listed as that implies). None: it was not stored, or it could not be confirmed;
    `problem` says why (shown to the user, no personal data beyond the contact's own), `reason` is
    the row's outcome (`rejected_by_api` when the destination refused or left it out, `failed` when
    it is unknown whether it was stored, `invalid_value` when a value breaks the destination's limits),
    and `error` is the API error behind a `failed` one (it counts as the batch's failure for
    `stop_on_error`).
    """

    contact_id: str | None
    problem: str = ""
    reason: RejectionReason = attrs.field(default="rejected_by_api", kw_only=True)
    error: BaseException | None = attrs.field(default=None, kw_only=True, eq=False)

    @property
    def stored(self) -> bool:
        return self.contact_id is not None

    @classmethod
    def ok(cls, contact_id: str) -> Acknowledgement:
        return cls(contact_id)

    @classmethod
    def refused(cls, problem: str, reason: RejectionReason = "rejected_by_api") -> Acknowledgement:
        return cls(None, problem, reason=reason)

    @classmethod
    def unconfirmed(cls, problem: str, error: BaseException | None = None) -> Acknowledgement:
        return cls(None, problem, reason="failed", error=error)


@attrs.frozen(kw_only=True)
class MembershipResult:
    """What `Membership.after_upsert` made of a batch's stored contacts.

    `members`: the (contact, contact id) pairs that are now members (in the order given; they count
    as exported). `failures`: (contact, message) pairs stored but not made members (reported
    `failed`; the state does not record them, so a re-run tries again). `error`: the first API error
    behind a failure, if any (the batch's failure for `stop_on_error`).
    """

    members: Sequence[tuple[MappedRow, str]]
    failures: Sequence[tuple[MappedRow, str]] = ()
    error: BaseException | None = None


class Claim:
    """An opaque token a `Membership` hands out in `before_upsert` and takes back afterwards.

    Destinations subclass it (or return any object): the engine only passes it back.
    """


class Membership(Protocol):
    """Makes sure every stored contact of one export ends up a member of the target.

    One per export, shared by the engine's worker threads (so thread-safe). For each batch the
    engine calls `before_upsert` (may probe, may block, may raise `ExportAborted`), sends the batch,
    then calls exactly one of `after_upsert` (the upsert answered) or `cancel` (it raised). Neither
    sees contacts the export state already knows as members of the target.
    """

    @property
    def description(self) -> str:
        """How membership was ensured, for `ExportReport.list_membership`."""

    @property
    def verdict(self) -> str | None:
        """A fact verified during this export worth remembering for the next run of the same account
        and target (`ExportState` stores it; `open_membership(remembered=...)` gets it back), or None.

        The state accepts "honoured" and "ignored" today (Autopilot's `_autopilot_list` verdicts); a
        destination with nothing to remember answers None."""

    def before_upsert(self, batch: Sequence[MappedRow]) -> object | None:
        """Called on a worker thread before `batch` is upserted; returns a claim to pass back, or None."""

    def after_upsert(self, stored: Sequence[tuple[MappedRow, str]], claim: object | None) -> MembershipResult:
        """The stored (contact, contact id) pairs of one batch, in order: make them members.

        Raises only fatal errors and `ExportAborted`; any other failure is a `MembershipResult.failures`.
        """

    def cancel(self, claim: object | None) -> None:
        """The batch's upsert raised after `before_upsert` returned `claim`: release what it holds."""


@attrs.frozen(kw_only=True)
class PlannedWork:
    """What a dry run found, for `Destination.plan_cost` to price.

    - `send`: contacts that would be upserted; `new`: of those, contacts not known as members;
    - `batch_size`: contacts per upsert; `removals`: leavers that would be removed;
    - `target_known`: the target is known from the state (it exists: it is not created);
    - `known_members`: members the state knows on it; `remembered`: `Membership.verdict` remembered;
    - `custom_fields`: the mapping sends custom fields (a destination may check them first).
    """

    send: int
    new: int
    batch_size: int
    removals: int = 0
    target_known: bool = False
    known_members: int = 0
    remembered: str | None = None
    custom_fields: bool = False


@attrs.frozen(kw_only=True)
class PlannedCost:
    """API calls an export would make: `best` when every shortcut holds, `worst` when none does."""

    best: int
    worst: int


@runtime_checkable
class Destination(Protocol):
    """A platform segments are exported to. Every method is required.

    Retries, pacing and rate limits are the destination's job (its client's), never the engine's.
    Methods may be called from several worker threads at once (`upsert_batch`, `remove_members`,
    the `Membership`); a destination shares one client, rate limiter and connection pool among them.
    """

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def requests_per_second(self) -> float:
        """The configured request rate (the engine sizes its concurrency from it)."""

    @property
    def stats(self) -> CallStats:
        """A snapshot of the transport's running totals (the engine subtracts two for a report)."""

    @property
    def account_fingerprint(self) -> str:
        """A stable, non-secret identity of the account (the export state is keyed by it).

        New destinations namespace it ("ortto:<hex>") so that two platforms never share state.
        Autopilot's is the bare hex digest it always was (state files written before the seam stay
        valid); it is the only destination allowed an unprefixed fingerprint.
        """

    def find_target(self, segment: str) -> Target | None:
        """The existing target for `segment`, or None. Only reads; never writes anything."""

    def resolve_target(self, segment: str, *, known_absent: bool = False) -> Target:
        """The target for `segment`, created if needed. Safe to repeat; converges when exporters race.

        `known_absent=True`: the caller has just seen (`find_target`) that there is none. Raises
        `ConfigurationError` when the choice is ambiguous, API errors when it cannot be made.
        """

    def upsert_batch(
        self,
        target: Target,
        contacts: Sequence[MappedRow],
        *,
        should_stop: Callable[[], bool] = never,
    ) -> Sequence[Acknowledgement]:
        """Create or update 1..`capabilities.max_batch` contacts; one `Acknowledgement` each, in order.

        Acknowledged means the destination named a contact id for it: only then does the engine
        count the row as exported. Membership travels in the call where the platform allows it.
        Raises `BadRequestError` when the whole batch is refused (the engine bisects it), fatal errors
        at once, `ExportAborted` when `should_stop()` turns true during follow-up reads, and any other
        API error only after its retries (the engine then reports the batch `failed`). Idempotent:
        sending the same contacts again updates them, never duplicates them.
        """

    def refusal_concerns_all(self, target: Target, contacts: Sequence[MappedRow], reason: str) -> bool:
        """Can the refusal `reason` (emails left out) concern every contact of `contacts`?

        True stops the engine's bisection early (a whole piece refused for one reason costs 3 calls,
        not ~2 per contact); answer True only for a reason that names the target, or a field every
        one of `contacts` carries.
        """

    def open_membership(
        self, target: Target, *, remembered: str | None, should_stop: Callable[[], bool] = never
    ) -> Membership:
        """The `Membership` of one export to `target`; `remembered` is a verdict from an earlier run."""

    def remove_members(self, target: Target, contact_ids: Sequence[str]) -> Sequence[BaseException | None]:
        """Take 1..`capabilities.removal_batch` contacts off the target; one result per id, in order.

        None means acknowledged (removed, was no member, or the contact is gone); otherwise the error
        (the state keeps that contact for the next run). Raises only fatal errors. Never deletes a
        contact and never unsubscribes one. Idempotent.
        """

    def iter_members(self, target: Target) -> Iterator[str | None]:
        """The target's members' emails (None for a member without one), page by page; only reads."""

    def field_conflicts(self, mapping: object) -> Sequence[str]:
        """Why the account would refuse every contact this mapping produces (a custom field defined
        with another type, ...), one description each; [] when none. Only reads (at most one call
        per export: the engine runs it once, before its first write). API errors propagate."""

    def plan_cost(self, work: PlannedWork) -> PlannedCost:
        """The calls an export of `work` would make (for `Exporter.plan`); makes no call itself."""
