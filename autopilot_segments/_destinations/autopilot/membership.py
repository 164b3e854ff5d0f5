"""Does Autopilot honour `_autopilot_list` inside bulk upserts? Find out once, cheaply, per export.

The record is unclear (some accounts ignore it in bulk calls), so every bulk contact carries it and
the exporter verifies it on one contact known not to have been a member before the upsert:

- on a list created by this export, nobody was a member, so any acknowledged contact will do;
- on an existing list, a few contacts are probed with `is_on_list` *before* their batch is sent;
- if the probed contacts are all members already (a stateless re-run), the list's members are read
  once (`MemberSet`) after that batch: from then on a contact in that set needs nothing in either
  mode, and the first acknowledged contact *not* in it is the one checked.

Only one verification (probe round, list read or check) runs at a time; batches acknowledged
meanwhile wait for the verdict. Checks that fail (API errors) are retried on later batches up to
`probe_budget` times; then, or if the list cannot be read, the detector assumes "ignored": adding
members explicitly is always correct, only slower.

With an export state, a verdict verified on an earlier run of the same account and list is remembered
(`remembered=True`): no probe at all, and a re-run never reads the list merely because its contacts
are members already.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Literal, Protocol

import attrs

from ..._errors import APIConnectionError, APIError
from ..base import FATAL_ERRORS, ExportAborted, MappedRow, MembershipResult, never
from ..members import MemberSet

__all__ = ["ListMembership", "ListMembershipDetector", "Verdict"]

_log = logging.getLogger("autopilot_segments.exporter")
PROBES_PER_BATCH = 3

Verdict = Literal["unknown", "honoured", "ignored"]


@attrs.define
class ListMembershipDetector:
    """Thread-safe bookkeeping of the `_autopilot_list` verdict (and the list's members) for one export."""

    list_is_new: bool
    probe_budget: int = 3
    _verdict: Verdict = "unknown"
    remembered: bool = False
    _checking: bool = False
    _failures: int = 0
    _assumed: bool = False
    _fell_back: bool = False
    _members: MemberSet | None = None
    _lock: threading.Condition = attrs.field(factory=threading.Condition, init=False)

    @property
    def verdict(self) -> Verdict:
        with self._lock:
            return self._verdict

    @property
    def members(self) -> MemberSet | None:
        """The list's members as read once during this export (None until, or if never, read)."""
        with self._lock:
            return self._members

    @property
    def description(self) -> str:
        """How membership was ensured, for the report."""
        with self._lock:
            since = " (verified on an earlier run, remembered by the state)" if self.remembered else ""
            read = ""
            if self._members is not None:
                read = (
                    f"; the list's {len(self._members):,} members were read once, since the probed "
                    "contacts were members already"
                )
            if self._assumed or (self._verdict == "unknown" and self._fell_back):
                return (
                    "unverified: no check was conclusive; contacts were added to the list one by one "
                    "to be sure" + read
                )
            if self._verdict == "honoured":
                return f"honoured: _autopilot_list in bulk calls added the contacts{since}{read}"
            if self._verdict == "ignored":
                added = (
                    "contacts that were not members were" if self._members is not None else "contacts were"
                )
                return (
                    f"ignored: _autopilot_list in bulk calls had no effect; {added} added one by one"
                    + since
                    + read
                )
            if self._members is not None:
                return "not checked: the exported contacts were all already members of the list" + read
            return "not checked (nothing was exported)"

    @property
    def verified(self) -> Verdict:
        """The verdict if a check established it ("unknown" when none did, or it was only assumed)."""
        with self._lock:
            return "unknown" if self._assumed else self._verdict

    @property
    def checking(self) -> bool:
        with self._lock:
            return self._checking

    def note_fallback(self) -> None:
        """A batch was added to the list explicitly without a verdict."""
        with self._lock:
            self._fell_back = True

    def try_claim(self) -> bool:
        """Claim the single verification slot; False if the verdict is in, or another check runs."""
        with self._lock:
            if self._verdict != "unknown" or self._checking or self._failures >= self.probe_budget:
                return False
            self._checking = True
            return True

    def settle(self, verdict: Verdict) -> None:
        """Release the claimed slot with a verdict, or "unknown" when the check failed (inconclusive)."""
        with self._lock:
            self._checking = False
            if verdict != "unknown":
                self._verdict = verdict
            else:
                self._failures += 1
                if self._failures >= self.probe_budget:
                    self._verdict = "ignored"
                    self._assumed = True
            self._lock.notify_all()

    def release(self) -> None:
        """Release the claimed slot without a verdict and without a failure: nothing to check here."""
        with self._lock:
            self._checking = False
            self._lock.notify_all()

    def publish_members(self, members: MemberSet) -> None:
        """Make the list's members (read by the slot's holder) known to every worker; keeps the slot."""
        with self._lock:
            self._members = members
            self._lock.notify_all()

    def give_up(self) -> None:
        """Release the slot assuming "ignored": the list could not be read, so add contacts explicitly."""
        with self._lock:
            self._checking = False
            if self._verdict == "unknown":
                self._verdict = "ignored"
                self._assumed = True
            self._lock.notify_all()

    def wait_while_checking(self, timeout: float | None = None) -> Verdict:
        """Block while another worker's check is running; return the verdict (maybe still unknown)."""
        with self._lock:
            self._lock.wait_for(lambda: self._verdict != "unknown" or not self._checking, timeout)
            return self._verdict


class _Member(Protocol):
    @property
    def email(self) -> str | None: ...


class MembershipClient(Protocol):
    """The client calls membership is checked and made with (an `AutopilotClient`'s)."""

    def is_on_list(self, list_id: str, contact: str) -> bool: ...

    def add_to_list(self, list_id: str, contact: str) -> bool: ...

    def iter_list_contacts(self, list_id: str) -> Iterator[_Member]: ...


@attrs.frozen(kw_only=True)
class _Claim:
    """The verification slot, held by one batch: check `candidate` (probed: no member before the
    upsert) once the batch is acknowledged, or, when None, read the list's members first."""

    candidate: MappedRow | None


Pair = tuple[MappedRow, str]


@attrs.define
class ListMembership:
    """The `Membership` of one export to an Autopilot list: the verdict on `_autopilot_list` (see the
    module's doc), list reads, and explicit adds when bulk calls ignore it. Shared by the workers."""

    client: MembershipClient
    list_id: str
    detector: ListMembershipDetector
    should_stop: Callable[[], bool] = never
    can_list: bool = True

    @property
    def description(self) -> str:
        return self.detector.description

    @property
    def verdict(self) -> str | None:
        verified = self.detector.verified
        return None if verified == "unknown" else verified

    def cancel(self, claim: object | None) -> None:
        if claim is not None:
            self.detector.settle("unknown")

    def _check_stop(self) -> None:
        if self.should_stop():
            raise ExportAborted

    def before_upsert(self, batch: Sequence[MappedRow]) -> _Claim | None:
        """On an existing list, find a contact of `batch` that is not a member yet (holding the slot).

        If every probed contact is a member already (a re-run), the slot is kept to read the list's
        members once this batch is acknowledged.
        """
        detector = self.detector
        if detector.list_is_new or detector.verdict != "unknown" or detector.members is not None:
            return None
        probes = list(batch[:PROBES_PER_BATCH])
        if not probes or not detector.try_claim():
            return None
        try:
            for contact in probes:
                self._check_stop()
                if not self.client.is_on_list(self.list_id, contact.email):
                    return _Claim(candidate=contact)
        except BaseException as error:
            detector.settle("unknown")
            if isinstance(error, (APIError, APIConnectionError)) and not isinstance(error, FATAL_ERRORS):
                return None  # a failed probe only costs the shortcut: inconclusive, the batch goes on
            raise
        if self.can_list:
            return _Claim(candidate=None)
        detector.settle("unknown")  # a client that cannot list members: no shortcut
        return None

    def after_upsert(self, stored: Sequence[Pair], claim: object | None) -> MembershipResult:
        """Settle the `_autopilot_list` verdict if this batch can, then add members when needed.

        A contact of the list's member set (when it was read) needs nothing in either mode; the
        others need an add only when bulk calls ignore `_autopilot_list`. Any contact that was not a
        member when the set was read tells the verdict once its own upsert was acknowledged: if it is
        on the list now, the upsert put it there.
        """
        acknowledged = list(stored)
        detector = self.detector
        if isinstance(claim, _Claim) and claim.candidate is not None:
            candidate = claim.candidate
            self._check_holding(next((pair for pair in acknowledged if pair[0] is candidate), None))
        elif isinstance(claim, _Claim) and self._read_members():
            pending = self._not_members(acknowledged)  # still holding the slot
            if pending:
                self._check_holding(pending[0])
            else:
                detector.release()  # every contact of this batch was a member already
        while detector.verdict == "unknown":
            if not self._not_members(acknowledged):
                break
            if detector.list_is_new or detector.members is not None:
                if detector.try_claim():
                    self._check_holding(self._not_members(acknowledged)[0])
                    continue
                if not detector.checking and detector.verdict == "unknown":
                    break  # cannot happen while the budget holds; never spin
                detector.wait_while_checking()
                continue
            # An existing list whose verdict a probe (or the list read) is still working on.
            if not detector.checking:
                break  # nobody can tell for this batch: add its contacts explicitly
            detector.wait_while_checking()
        pending = self._not_members(acknowledged)
        verdict = detector.verdict
        if verdict == "honoured" or not pending:
            return MembershipResult(members=acknowledged)
        if verdict == "unknown":
            detector.note_fallback()
        known = [pair for pair in acknowledged if all(pair is not p for p in pending)]
        return self._add_members(known, pending)

    def _not_members(self, acknowledged: list[Pair]) -> list[Pair]:
        """The contacts not in the list's member set (all of them while the set is not read)."""
        members = self.detector.members
        if members is None:
            return acknowledged
        return [pair for pair in acknowledged if pair[0].email not in members]

    def _check_holding(self, subject: Pair | None) -> None:
        """Holding the slot: check `subject` (a contact that was no member before) and settle."""
        verdict: Verdict = "unknown"
        try:
            verdict = self._verify(subject) if subject is not None else "unknown"
        finally:
            self.detector.settle(verdict)

    def _read_members(self) -> bool:
        """Holding the slot: read the list's members once, streamed into a compact set, and publish it.

        False when the read failed: the slot is released and contacts are added explicitly.
        """
        try:
            members = MemberSet.read(self._member_emails())
        except FATAL_ERRORS:
            self.detector.settle("unknown")
            raise
        except (APIError, APIConnectionError):
            self.detector.give_up()  # cannot tell members apart: add contacts explicitly
            return False
        except BaseException:
            self.detector.settle("unknown")
            raise
        _log.info(
            "read the %d members of list %s once: the probed contacts were members",
            len(members),
            self.list_id,
        )
        self.detector.publish_members(members)
        return True

    def _member_emails(self) -> Iterator[str | None]:
        for member in self.client.iter_list_contacts(self.list_id):
            self._check_stop()
            yield member.email

    def _verify(self, check: Pair) -> Verdict:
        """ "honoured" if a contact that was no member before its upsert is one now, else "ignored"."""
        self._check_stop()
        try:
            return "honoured" if self.client.is_on_list(self.list_id, check[1]) else "ignored"
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError):
            return "unknown"

    def _add_members(self, known: list[Pair], pending: list[Pair]) -> MembershipResult:
        members = list(known)
        failures: list[tuple[MappedRow, str]] = []
        first_error: BaseException | None = None
        for contact, contact_id in pending:
            self._check_stop()
            try:
                self.client.add_to_list(self.list_id, contact_id)
            except FATAL_ERRORS:
                raise
            except (APIError, APIConnectionError) as error:
                first_error = first_error or error
                failures.append((contact, f"stored, but adding it to the list failed: {error}"))
            else:
                members.append((contact, contact_id))
        return MembershipResult(members=members, failures=failures, error=first_error)
