"""The request log: every request the sandbox received, faulted or not, in arrival order."""

from __future__ import annotations

import threading
from typing import Any

import attrs

__all__ = ["RecordedRequest", "RequestLog", "busiest_window"]


@attrs.frozen(kw_only=True)
class RecordedRequest:
    """One request as the sandbox saw it.

    `at` is the monotonic arrival time, `path` the decoded path without `/v1`, `raw_path` the request
    target exactly as the client sent it (percent-encoding, `/v1` and any query included), `status`
    the status sent (None when the connection was dropped without an answer), `body` the parsed JSON
    body (None if absent, unparsable, or body recording is off), `applied` whether the endpoint ran
    and succeeded (true for `drop_after`: applied, then dropped), `fault` the fault kind played, if any.
    """

    at: float
    method: str
    path: str
    status: int | None
    body: Any
    applied: bool
    fault: str | None = None
    raw_path: str = ""


def busiest_window(times: list[float], window: float = 1.0) -> int:
    """The most of `times` that fall in any half-open window `[t, t + window)`."""
    ordered = sorted(times)
    best = first = 0
    for last, at in enumerate(ordered):
        while ordered[first] <= at - window:
            first += 1
        best = max(best, last - first + 1)
    return best


@attrs.define
class _Entry:
    at: float
    method: str
    path: str
    body: Any
    raw_path: str = ""
    status: int | None = None
    applied: bool = False
    fault: str | None = None

    def freeze(self) -> RecordedRequest:
        return RecordedRequest(
            at=self.at,
            method=self.method,
            path=self.path,
            status=self.status,
            body=self.body,
            applied=self.applied,
            fault=self.fault,
            raw_path=self.raw_path,
        )


class RequestLog:
    """Thread-safe; an entry is opened on arrival (so order is arrival order) and completed later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []

    def open(self, *, at: float, method: str, path: str, body: Any, raw_path: str = "") -> _Entry:
        entry = _Entry(at=at, method=method, path=path, body=body, raw_path=raw_path)
        with self._lock:
            self._entries.append(entry)
        return entry

    def complete(self, entry: _Entry, *, status: int | None, applied: bool, fault: str | None) -> None:
        with self._lock:
            entry.status, entry.applied, entry.fault = status, applied, fault

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return [e.freeze() for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
