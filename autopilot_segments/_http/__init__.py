"""What every destination's client stands on: the base client, the transport, the rate limiter, retries.

`client.py` (`APIClientBase`), `transport.py` (`Transport`), `ratelimit.py` (`RateLimiter`),
`retry_policy.py` (`RetryPolicy`), `json_body.py`, `deadline.py`, `log_redaction.py`, `stats.py`
(`ClientStats`).
"""

from __future__ import annotations

from .client import APIClientBase
from .ratelimit import RateLimiter
from .retry_policy import RetryPolicy
from .stats import ClientStats
from .transport import Transport

__all__ = ["APIClientBase", "ClientStats", "RateLimiter", "RetryPolicy", "Transport"]
