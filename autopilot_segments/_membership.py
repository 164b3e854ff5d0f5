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

import threading
from typing import Literal

import attrs

from ._members import MemberSet

__all__ = ["ListMembershipDetector", "Verdict"]

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
