"""What every destination's client stands on: checked settings, one transport, one limiter, typed errors.

`AutopilotClient` and `OrttoClient` differ in their endpoints, their key header and the shape of their
error bodies; everything else is here, once: the configuration checks (timeouts, retries, the deadline,
plain http only to loopback), the shared `RateLimiter`, the urllib3 retry layer of `transport.py`, strict
JSON bodies, and the mapping of every failure onto the `APIError` classes without the key anywhere.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import os
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType
from typing import Any, ClassVar, Final, TypeVar
from urllib.parse import urlsplit

import requests
from typing_extensions import Self

from .._errors import APIConnectionError, APIError, ConfigurationError, api_error_class
from .._version import __version__
from .json_body import encode_json
from .log_redaction import install_log_redaction
from .ratelimit import RateLimiter
from .retry_policy import RetryPolicy
from .stats import ClientStats
from .transport import (
    RetryHooks,
    SecretKey,
    StatsCounter,
    Transport,
    parse_retry_after,
    redact_path,
    redact_secret,
)

__all__ = [
    "APIClientBase",
    "as_array",
    "as_object",
    "resolve_base_url",
]

_REQUEST_ID_HEADERS: Final = ("X-Request-Id", "X-Amzn-RequestId", "Request-Id")
_UNEXPECTED: Final = "Unexpected response"
_T = TypeVar("_T")


class APIClientBase:
    """The plumbing of a destination's client; subclasses add the endpoints and say who they talk to."""

    service: ClassVar[str]  # the platform's name, in messages: "Autopilot", "Ortto"
    key_header: ClassVar[str]  # the header that carries the key
    _fingerprint_prefix: ClassVar[bytes]
    _log: ClassVar[logging.Logger]

    def __init__(
        self,
        *,
        key: str | None,
        base_url: str,
        problems: list[str],
        requests_per_second: float,
        timeout: float | tuple[float, float],
        max_retries: int,
        backoff_factor: float,
        max_retry_after: float,
        deadline: float | None,
        session: requests.Session | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        """`problems` holds what the subclass found wrong with the key and URL; more are added here."""
        check_options(
            requests_per_second=requests_per_second,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
            deadline=deadline,
            problems=problems,
        )
        if problems:
            raise ConfigurationError(problems)
        assert key is not None
        install_log_redaction()  # urllib3's DEBUG request lines hold emails in their paths
        self._key = SecretKey(key)
        self._base_url = base_url
        self._requests_per_second = float(requests_per_second)
        self._clock = clock
        self._stats = StatsCounter()
        self._limiter = RateLimiter(requests_per_second, clock=clock, sleep=sleep)
        self._max_retry_after = float(max_retry_after)
        self._deadline = None if deadline is None else float(deadline)
        self._retry_policy = RetryPolicy(max_retries=max_retries, backoff_factor=backoff_factor, sleep=sleep)
        self._transport = Transport(
            session=session,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            deadline=self._deadline,
            hooks=RetryHooks(
                limiter=self._limiter, stats=self._stats, sleep=sleep, max_retry_after=max_retry_after
            ),
            key_header=self.key_header,
            service=self.service,
        )
        self._headers = {
            "User-Agent": f"autopilot-segments/{__version__}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    # -- properties and lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def requests_per_second(self) -> float:
        """The configured request rate (the limiter may run slower for a while after a 429)."""
        return self._requests_per_second

    @property
    def deadline(self) -> float | None:
        """Seconds one call may take in all, retries and their waits included (None: no deadline)."""
        return self._deadline

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the running totals: request starts (retries included), retries, 429s."""
        return self._stats.snapshot()

    @property
    def account_fingerprint(self) -> str:
        """A one-way hash of the key (hex): identifies the account in state files, reveals nothing."""
        return hashlib.sha256(self._fingerprint_prefix + self._key.reveal().lower().encode()).hexdigest()

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry budget and backoff for calls the transport does not replay (creating a list...)."""
        return self._retry_policy

    @property
    def limiter(self) -> RateLimiter:
        """The rate limiter every request of this client goes through."""
        return self._limiter

    def close(self) -> None:
        """Release the connection pools (and the session, if the client created it)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, "
            f"requests_per_second={self._requests_per_second!r}, account={self.account_fingerprint[:12]})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled (it holds an API key and open connections)")

    # -- one call ------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json_body: Any = None, replay: bool) -> Any:
        _, body = self._request(method, path, json_body=json_body, replay=replay)
        return body

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        replay: bool,
        also_ok: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Send one call; returns (status, parsed JSON body or None). Non-2xx raises an `APIError`."""
        url = self._base_url + path
        body = None if json_body is None else encode_json(json_body)  # PayloadError: nothing sent
        started = self._clock()
        try:
            response = self._transport.send(
                method, url, key=self._key, headers=self._headers, body=body, replay=replay
            )
        except APIConnectionError as exc:
            self._log.debug(
                "%s %s failed after %.3fs: %s", method, _log_path(url), self._clock() - started, exc.message
            )
            raise
        elapsed = self._clock() - started
        status = response.status_code
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("%s %s -> %d in %.3fs", method, _log_path(url), status, elapsed)
        if status == 429:
            # Retried 429s were counted by the retry policy; this one came back to us.
            self._stats.add(rate_limited=1)
            self._limiter.note_rate_limited(self._retry_after(response))
            self._log.info("%s answered 429 after retries; slowing the whole client down", self.service)
        if not (200 <= status < 300 or status in also_ok):
            raise self._error_from(response, method, url)
        if not response.content.strip():
            return status, None
        try:
            return status, json.loads(response.content)
        except ValueError:
            if status in also_ok:
                return status, None
            raise self._unexpected(
                method, path, "the success answer is not valid JSON", status=status, response=response
            ) from None

    def _retry_after(self, response: requests.Response) -> float | None:
        """Seconds a 429 asks us to wait (the `Retry-After` header; destinations may read the body)."""
        return parse_retry_after(response.headers.get("Retry-After"), cap=self._max_retry_after)

    def _parse(self, method: str, path: str, body: Any, parser: Callable[[Any], _T]) -> _T:
        try:
            return parser(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
        raise self._unexpected(method, path, f"the answer does not have the documented shape ({detail})")

    def _unexpected(
        self,
        method: str,
        path: str,
        message: str,
        *,
        status: int = 200,
        response: requests.Response | None = None,
    ) -> APIError:
        body = _body_text(response) if response is not None else ""
        return APIError(
            status=status,
            method=method,
            url=self._base_url + path,
            message=message,
            body=redact_secret(body, self._key),
            error=_UNEXPECTED,
            request_id=_request_id(response) if response is not None else None,
        )

    def _error_from(self, response: requests.Response, method: str, url: str) -> APIError:
        status = response.status_code
        text = redact_secret(_body_text(response), self._key)
        message, reason = self._error_parts(text)
        if message is None:
            message = _status_phrase(status)
        message = redact_secret(message, self._key)
        cls = self._error_class(status, message)
        return cls(
            status=status,
            method=method,
            url=url,
            message=message,
            body=text,
            error=reason if reason is not None else _status_phrase(status),
            request_id=_request_id(response),
        )

    def _error_parts(self, text: str) -> tuple[str | None, str | None]:
        """(message, reason) from an error body of any shape; (None, None) when it has neither."""
        try:
            data = json.loads(text)
        except ValueError:
            return None, None
        if not isinstance(data, dict):
            return None, None
        message = data.get("message")
        reason = data.get("error")
        if reason is None and data.get("code") is not None:
            reason = data.get("code")
        message_text = str(message) if message is not None else None
        reason_text = str(reason) if reason is not None else None
        return message_text or reason_text, reason_text

    def _error_class(self, status: int, message: str) -> type[APIError]:
        return api_error_class(status)


# -- settings --------------------------------------------------------------------------------------


def resolve_base_url(base_url: object, *, env: str, default: str, example: str, problems: list[str]) -> str:
    """The argument, else the `env` environment variable, else `default`; checked the same way."""
    if base_url is not None:
        return check_base_url(base_url, example=example, problems=problems)
    from_env = os.environ.get(env, "").strip()
    if not from_env:
        return default
    env_problems: list[str] = []
    url = check_base_url(from_env, example=example, problems=env_problems)
    problems.extend(f"{problem} (from the {env} environment variable)" for problem in env_problems)
    return url


def check_base_url(base_url: object, *, example: str, problems: list[str]) -> str:
    if not isinstance(base_url, str):
        problems.append(f"base_url must be a string such as {example!r}")
        return ""
    url = base_url.strip().rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        problems.append(f"base_url must be an https:// URL with a host, got {url!r}")
    elif parts.scheme == "http" and not _is_loopback(host):
        problems.append(
            f"base_url {url!r} uses plain http: the API key would travel unencrypted; "
            "use https:// (plain http is only allowed for loopback hosts such as 127.0.0.1)"
        )
    elif parts.query or parts.fragment or parts.username or parts.password:
        problems.append("base_url must not carry credentials, a query or a fragment")
    return url


def check_options(
    *,
    requests_per_second: float,
    timeout: float | tuple[float, float],
    max_retries: int,
    backoff_factor: float,
    max_retry_after: float,
    deadline: float | None,
    problems: list[str],
) -> None:
    if not _positive(requests_per_second):
        problems.append(f"requests_per_second must be a number > 0, got {requests_per_second!r}")
    parts = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(parts) not in (1, 2) or not all(_positive(t) for t in parts):
        problems.append(
            f"timeout must be a number of seconds > 0 or a (connect, read) pair of them, got {timeout!r}"
        )
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        problems.append(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if not (_positive(backoff_factor) or backoff_factor == 0) or isinstance(backoff_factor, bool):
        problems.append(f"backoff_factor must be a number >= 0, got {backoff_factor!r}")
    if not (_positive(max_retry_after) or max_retry_after == 0) or isinstance(max_retry_after, bool):
        problems.append(f"max_retry_after must be a number of seconds >= 0, got {max_retry_after!r}")
    if deadline is not None and not _positive(deadline):
        problems.append(
            f"deadline must be a number of seconds > 0 (the longest one call may take), or None, "
            f"got {deadline!r}"
        )


# -- answers ---------------------------------------------------------------------------------------


def as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def as_array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a JSON array, got {type(value).__name__}")
    return value


def _log_path(url: str) -> str:
    return redact_path(urlsplit(url).path)


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _positive(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _body_text(response: requests.Response) -> str:
    return response.content.decode("utf-8", errors="replace")


def _status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _request_id(response: requests.Response) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None
