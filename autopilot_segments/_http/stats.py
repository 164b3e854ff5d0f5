"""`ClientStats`: a client's running totals, counted by the transport every destination client stands on."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats"]


@attrs.frozen(kw_only=True)
class ClientStats:
    """Running totals of one client: request starts (retries included), retries, and 429 answers."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
