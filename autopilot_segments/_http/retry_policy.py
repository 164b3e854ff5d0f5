"""`RetryPolicy`: the client's retry budget and backoff, for the few retries the transport cannot make.

The transport retries every call it may replay. A call it must not replay blindly (creating a list)
is retried by the caller after it has looked whether the call was applied after all; such a caller
uses the same budget (`max_retries`), the same backoff and the same injected `sleep` as the transport,
and its requests go through the client's rate limiter like every other one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import attrs

__all__ = ["NO_RETRIES", "RetryPolicy"]

_BACKOFF_MAX: Final = 30.0


def _no_sleep(_seconds: float) -> None:
    return None


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a call whose failure was transient (429, 5xx, connection)."""

    max_retries: int
    backoff_factor: float
    sleep: Callable[[float], None] = attrs.field(eq=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based): factor * 2**(attempt - 1), capped."""
        if attempt < 1 or self.backoff_factor <= 0:
            return 0.0
        return float(min(_BACKOFF_MAX, self.backoff_factor * 2 ** (attempt - 1)))

    def pause(self, attempt: int) -> None:
        """Wait before retry number `attempt` (nothing at all with a zero backoff factor)."""
        delay = self.backoff(attempt)
        if delay > 0:
            self.sleep(delay)


NO_RETRIES: Final = RetryPolicy(max_retries=0, backoff_factor=0.0, sleep=_no_sleep)
