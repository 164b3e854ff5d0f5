"""Does Autopilot honour `_autopilot_list` inside bulk upserts? Find out once, cheaply, per export.

The record is unclear (some accounts ignore it in bulk calls), so every bulk contact carries it and
the exporter verifies it on one contact known not to have been a member before the upsert:

- on a list created by this export, nobody was a member, so any acknowledged contact will do;
- on an existing list, a contact is probed with `is_on_list` *before* its batch is sent.

Only one verification runs at a time (so the cost stays a small constant); batches acknowledged
meanwhile wait for the verdict. If probes keep finding contacts already on the list (a re-run), the
detector gives up after `probe_budget` attempts and assumes "ignored": adding members explicitly is
always correct, only slower.

With an export state, a verdict verified on an earlier run of the same account and list is remembered
(`remembered=True`): no probe at all, and a re-run never falls back to adding contacts one by one merely
because its contacts are members already.
"""

from __future__ import annotations

import threading
from typing import Literal

import attrs

__all__ = ["ListMembershipDetector", "Verdict"]

Verdict = Literal["unknown", "honoured", "ignored"]


@attrs.define
class ListMembershipDetector:
    """Thread-safe bookkeeping of the `_autopilot_list` verdict for one export."""

    list_is_new: bool
    probe_budget: int = 3
    _verdict: Verdict = "unknown"
    remembered: bool = False
    _checking: bool = False
    _attempts: int = 0
    _assumed: bool = False
    _fell_back: bool = False
    _lock: threading.Condition = attrs.field(factory=threading.Condition, init=False)

    @property
    def verdict(self) -> Verdict:
        with self._lock:
            return self._verdict

    @property
    def description(self) -> str:
        """How membership was ensured, for the report."""
        with self._lock:
            since = " (verified on an earlier run, remembered by the state)" if self.remembered else ""
            if self._verdict == "honoured":
                return f"honoured: _autopilot_list in bulk calls added the contacts{since}"
            if self._assumed or (self._verdict == "unknown" and self._fell_back):
                return (
                    "unverified: no probe was conclusive (probed contacts were already members); "
                    "contacts were added to the list one by one to be sure"
                )
            if self._verdict == "ignored":
                return (
                    "ignored: _autopilot_list in bulk calls had no effect; contacts were added one by one"
                    + since
                )
            return "not checked (nothing was exported)"

    @property
    def verified(self) -> Verdict:
        """The verdict if a check established it ("unknown" when none did, or it was only assumed)."""
        with self._lock:
            return "unknown" if self._assumed else self._verdict

    def note_fallback(self) -> None:
        """A batch was added to the list explicitly without a verdict."""
        with self._lock:
            self._fell_back = True

    def try_claim(self) -> bool:
        """Claim the single verification slot; False if the verdict is in, or another check runs."""
        with self._lock:
            if self._verdict != "unknown" or self._checking:
                return False
            if self._attempts >= self.probe_budget:
                return False
            self._checking = True
            self._attempts += 1
            return True

    def settle(self, verdict: Verdict) -> None:
        """Release the claimed slot with a verdict, or "unknown" when the check was inconclusive."""
        with self._lock:
            self._checking = False
            if verdict != "unknown":
                self._verdict = verdict
            elif self._attempts >= self.probe_budget:
                self._verdict = "ignored"
                self._assumed = True
            self._lock.notify_all()

    def wait_while_checking(self, timeout: float | None = None) -> Verdict:
        """Block while another worker's check is running; return the verdict (maybe still unknown)."""
        with self._lock:
            self._lock.wait_for(lambda: self._verdict != "unknown" or not self._checking, timeout)
            return self._verdict
