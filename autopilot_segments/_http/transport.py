"""The HTTP transport: a `requests.Session`, two `HTTPAdapter`s and one `urllib3` `Retry` subclass.

There is exactly one retry layer: urllib3's. One adapter may replay every method (for calls that are
safe to repeat: reads, deletes, upserts, list membership); the other never replays a POST (journey
triggers, list creation, hook registration), because a POST whose answer was lost may have been applied.
Connection failures before anything was sent are retried on both.

The `Retry` subclass counts retries and 429s, caps `Retry-After`, sleeps through the injectable `sleep`
and takes a rate-limiter slot before every retry, because a retry is a request too.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Final

import requests
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from .._errors import APIConnectionError, APITimeoutError
from .deadline import CallWatch, DeadlineExceeded, WatchedAdapter, current_watch, watching
from .ratelimit import RateLimiter
from .stats import ClientStats

__all__ = [
    "RETRY_STATUSES",
    "SecretKey",
    "StatsCounter",
    "Transport",
    "parse_retry_after",
    "redact_path",
    "redact_secret",
]

RETRY_STATUSES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})
_REPLAYABLE_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "POST"})
_IDEMPOTENT_METHODS: Final[frozenset[str]] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_POOL_SIZE = 32  # comfortably above the ~16 concurrent requests an exporter runs
_BACKOFF_MAX = 30.0
_EMAIL_SEGMENT = re.compile(r"[^/]*(?:@|%40)[^/]*", re.IGNORECASE)
REDACTED: Final = "[REDACTED]"
_log = logging.getLogger("autopilot_segments.client")
_RETRY_AFTER_PARSER: Final = Retry(0)


class SecretKey:
    """Holds the API key so that it never shows up in a repr, str or traceback locals dump."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretKey('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key cannot be pickled")


def redact_secret(text: str, secret: SecretKey) -> str:
    """`text` with every occurrence of the key (any letter case) replaced by `[REDACTED]`."""
    key = secret.reveal()
    if not key or key.lower() not in text.lower():
        return text
    return re.sub(re.escape(key), REDACTED, text, flags=re.IGNORECASE)


def parse_retry_after(value: str | None, *, cap: float) -> float | None:
    """Retry-After (seconds or an HTTP date) in seconds, capped at `cap`; None if absent or garbled."""
    if value is None or not value.strip():
        return None
    try:
        seconds = _RETRY_AFTER_PARSER.parse_retry_after(value)
    except (InvalidHeader, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, min(float(seconds), cap))


def redact_path(path: str) -> str:
    """A URL path with every segment that holds an email address replaced, for logs."""
    return _EMAIL_SEGMENT.sub("<email>", path)


class StatsCounter:
    """Thread-safe running totals behind `client.stats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._retries = 0
        self._rate_limited = 0

    def add(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self._requests += requests
            self._retries += retries
            self._rate_limited += rate_limited

    def snapshot(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                requests=self._requests, retries=self._retries, rate_limited=self._rate_limited
            )


class RetryHooks:
    """What a `CountingRetry` reports to and waits on; shared by every copy `Retry.new()` makes."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        stats: StatsCounter,
        sleep: Callable[[float], None],
        max_retry_after: float,
    ) -> None:
        self.limiter = limiter
        self.stats = stats
        self.sleep = sleep
        self.max_retry_after = max_retry_after


class CountingRetry(Retry):
    """urllib3 `Retry` that counts, caps `Retry-After`, sleeps via an injectable function and rate-limits."""

    def __init__(self, *args: Any, hooks: RetryHooks | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hooks = hooks

    def new(self, **kw: Any) -> CountingRetry:
        retry = super().new(**kw)
        retry.hooks = self.hooks
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # Only the statuses we chose; urllib3 would also retry a 413 that carries Retry-After.
        return self._is_method_retryable(method) and status_code in self.status_forcelist

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> CountingRetry:
        watch = current_watch()
        if watch is not None and watch.deadline_passed():
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()  # its connection may hold an unread answer: never reuse it
            raise DeadlineExceeded("the call's deadline passed")
        # Raises when exhausted (or when the error may not be retried): nothing is counted then.
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if _log.isEnabledFor(logging.DEBUG):
            cause = f"status {response.status}" if response is not None else type(error).__name__
            _log.debug("retrying %s %s after %s", method, redact_path(url or ""), cause)
        if self.hooks is not None:
            limited = response is not None and response.status == 429
            self.hooks.stats.add(retries=1, rate_limited=int(limited))
            if response is not None and limited:
                self.hooks.limiter.note_rate_limited(self.capped_retry_after(response))
        return retry

    def capped_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """The server's Retry-After in seconds, capped at `max_retry_after`; None if absent or garbled."""
        cap = self.hooks.max_retry_after if self.hooks is not None else _BACKOFF_MAX
        return parse_retry_after(response.headers.get("Retry-After"), cap=cap)

    def get_backoff_time(self) -> float:
        # Exponential with "equal jitter": between half and all of factor * 2**(n-1), n = retries so far.
        attempts = len(self.history)
        if attempts == 0 or self.backoff_factor <= 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_factor * (2 ** (attempts - 1)))
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        delay = self.capped_retry_after(response) if response is not None else None
        if delay is None:
            delay = self.get_backoff_time()
        watch = current_watch()
        left = watch.remaining() if watch is not None else None
        if watch is not None and left is not None and delay >= left:
            watch.expired = True  # the next attempt could not even start in time
            raise DeadlineExceeded("the call's deadline would pass before the next attempt")
        if self.hooks is None:
            if delay > 0:
                time.sleep(delay)
            return
        if delay > 0:
            self.hooks.sleep(delay)
        self.hooks.limiter.acquire()
        self.hooks.stats.add(requests=1)


def build_retry(
    *,
    max_retries: int,
    backoff_factor: float,
    replay_post: bool,
    hooks: RetryHooks,
) -> CountingRetry:
    """The retry policy for one adapter; `replay_post` decides whether a POST may be sent twice."""
    methods: Collection[str] = _REPLAYABLE_METHODS if replay_post else _IDEMPOTENT_METHODS
    return CountingRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        redirect=0,
        allowed_methods=methods,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=_BACKOFF_MAX,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=True,
        hooks=hooks,
    )


class Transport:
    """Sends one request through the right adapter and turns transport failures into typed errors.

    The session supplies headers, proxies and CA settings; the adapters are ours and are used directly,
    so a caller's session is never mutated (no mounts) and redirects are never followed: a redirect to
    another host would carry the key header with it.
    """

    def __init__(
        self,
        *,
        session: requests.Session | None,
        timeout: float | tuple[float, float],
        max_retries: int,
        backoff_factor: float,
        hooks: RetryHooks,
        deadline: float | None = None,
        key_header: str = "autopilotapikey",
        service: str = "Autopilot",
    ) -> None:
        self._owns_session = session is None
        self.key_header = key_header
        self.service = service
        self.deadline = deadline
        self._hooks = hooks
        self.session = session if session is not None else requests.Session()
        self.timeout = timeout
        self._replaying = WatchedAdapter(
            pool_connections=4,
            pool_maxsize=_POOL_SIZE,
            max_retries=build_retry(
                max_retries=max_retries, backoff_factor=backoff_factor, replay_post=True, hooks=hooks
            ),
        )
        self._careful = WatchedAdapter(
            pool_connections=4,
            pool_maxsize=_POOL_SIZE,
            max_retries=build_retry(
                max_retries=max_retries, backoff_factor=backoff_factor, replay_post=False, hooks=hooks
            ),
        )

    def send(
        self,
        method: str,
        url: str,
        *,
        key: SecretKey,
        headers: Mapping[str, str],
        body: bytes | None = None,
        replay: bool,
    ) -> requests.Response:
        """One call (with its retries). Raises `APITimeoutError` / `APIConnectionError`, nothing else.

        The request is prepared first, then the rate limiter is asked for a start, so that the time
        between the start the limiter granted and the bytes leaving is as short (and as even) as it
        can be. Every failure, preparation included, becomes a typed error raised outside the except
        block: `requests`' exceptions hold the prepared request (and so the key header), and not even
        `__context__` may point at them. The key is revealed only inside the request object: no
        local variable of this frame (or of the caller's) is a plain dict holding it, so even a
        traceback printed with its locals (`pytest -l`, error trackers) does not show it.
        """
        failure: APIConnectionError
        prepared: requests.PreparedRequest | None = None
        response: requests.Response | None = None
        watch = CallWatch(self.deadline, on_sent=self._hooks.limiter.note_started)
        try:
            prepared = self.session.prepare_request(
                requests.Request(method, url, headers={**headers, self.key_header: key.reveal()}, data=body)
            )
            settings = self.session.merge_environment_settings(prepared.url, {}, False, None, None)
            verify = settings.get("verify")
            # TLS verification stays on: a CA bundle path is honoured, `False` never is.
            verify = verify if isinstance(verify, str) else True
            adapter = self._replaying if replay else self._careful
            self._hooks.limiter.acquire()
            self._hooks.stats.add(requests=1)
            with watching(watch):
                response = adapter.send(
                    prepared,
                    stream=False,
                    timeout=self.timeout,
                    verify=verify,
                    cert=settings.get("cert"),
                    proxies=settings.get("proxies") or {},
                )
                # The adapter leaves the body unread (only `Session.send` reads it): read it here, under
                # the deadline, so that a body cut short, stalled past the read timeout or trickled past
                # the deadline becomes a typed error, not a bare exception from `response.content` later.
                _ = response.content
            if watch.expired:
                raise DeadlineExceeded("the call's deadline passed")
            return response
        except Exception as exc:
            failure = _failure(exc, watch, method=method, url=url, service=self.service)
        # The prepared request (and a half-read response, which holds it too) are dropped, so that this
        # frame's locals hold nothing that reveals the key.
        del prepared, response
        raise failure

    def close(self) -> None:
        self._replaying.close()
        self._careful.close()
        if self._owns_session:
            self.session.close()


def _failure(exc: Exception, watch: CallWatch, *, method: str, url: str, service: str) -> APIConnectionError:
    """The typed error for any failure of a call (never chained to `exc`, which may hold the key)."""
    if watch.expired or isinstance(exc, DeadlineExceeded):
        return APITimeoutError(
            f"{service} did not answer within the call's deadline of {watch.deadline:g} s",
            method=method,
            url=url,
        )
    if isinstance(exc, requests.Timeout):
        return APITimeoutError(f"{service} did not answer in time", method=method, url=url)
    if isinstance(exc, requests.ConnectionError):
        return _connection_failure(exc, method=method, url=url, service=service)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return APIConnectionError(
            f"the connection broke while {service}'s answer was being read", method=method, url=url
        )
    return APIConnectionError(f"request failed: {type(exc).__name__}", method=method, url=url)


def _connection_failure(
    exc: requests.ConnectionError, *, method: str, url: str, service: str
) -> APIConnectionError:
    reason: object = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, ReadTimeoutError):
        return APITimeoutError(
            f"{service} did not answer in time (retries exhausted)", method=method, url=url
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return APIConnectionError("TLS handshake or certificate verification failed", method=method, url=url)
    kind = type(reason).__name__ if isinstance(reason, BaseException) else type(exc).__name__
    return APIConnectionError(f"could not reach {service} ({kind})", method=method, url=url)
