"""A total deadline per call, and the instant each request really left.

urllib3's read timeout applies to each socket read, so a server that trickles its answer one byte at a
time holds a call for ever. Every call therefore runs under a `CallWatch`: a deadline on the monotonic
clock, kept by one watchdog thread. The connections the call uses register with the watch (through the
connection classes of `WatchedAdapter`'s pools); when the deadline passes, the watchdog shuts their
sockets down, which ends any blocked read at once, whatever phase the call is in (headers or body).
Retries check the watch too (`deadline_passed`, `remaining`), so a call never starts another attempt,
or sleeps for one, past its deadline. The transport then raises `APITimeoutError`.

The same connection classes tell the watch when a request's bytes were written (`on_sent`): the rate
limiter spaces the next start from that instant, not from when it gave the start.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError
from urllib3.poolmanager import PoolManager

__all__ = ["CallWatch", "DeadlineExceeded", "WatchedAdapter", "current_watch", "watching"]

_local = threading.local()


class DeadlineExceeded(HTTPError):
    """The call's deadline passed (urllib3 lets its own exception types through unchanged)."""


class CallWatch:
    """One call: its deadline (monotonic seconds, None for none) and the connections it uses."""

    def __init__(self, deadline: float | None, *, on_sent: Callable[[], None] | None = None) -> None:
        self.expires_at = None if deadline is None else time.monotonic() + deadline
        self.deadline = deadline
        self.on_sent = on_sent
        self.expired = False
        self._done = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never below 0), None without one."""
        if self.expires_at is None:
            return None
        return max(0.0, self.expires_at - time.monotonic())

    def deadline_passed(self) -> bool:
        if self.expires_at is not None and time.monotonic() >= self.expires_at:
            self.expired = True
        return self.expired

    def attach(self, connection: HTTPConnection) -> None:
        """The call is about to use `connection`: shut it down if the deadline passes meanwhile."""
        with self._lock:
            if self.deadline_passed():
                raise DeadlineExceeded("the call's deadline passed")
            connection.autopilot_watch = self  # type: ignore[attr-defined]
            self._connections.append(connection)

    def expire(self) -> None:
        """Called by the watchdog: end every blocked read of this call."""
        with self._lock:
            if self._done:
                return
            self.expired = True
            for connection in self._connections:
                if getattr(connection, "autopilot_watch", None) is not self:
                    continue  # since handed to another call through the pool
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            for connection in self._connections:
                if getattr(connection, "autopilot_watch", None) is self:
                    connection.autopilot_watch = None  # type: ignore[attr-defined]
            self._connections.clear()


class _Watchdog:
    """One daemon thread that expires the watches whose deadline passed (earliest first)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, CallWatch]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, watch: CallWatch) -> None:
        if watch.expires_at is None:
            return
        with self._cond:
            heapq.heappush(self._heap, (watch.expires_at, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="autopilot-deadline", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                expires_at, _, watch = self._heap[0]
                wait = expires_at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            watch.expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def watching(watch: CallWatch) -> Iterator[CallWatch]:
    """Run the block as `watch`'s call on this thread."""
    previous = getattr(_local, "watch", None)
    _local.watch = watch
    _WATCHDOG.add(watch)
    try:
        yield watch
    finally:
        watch.finish()
        _local.watch = previous


def current_watch() -> CallWatch | None:
    """The watch of the call running on this thread, if any."""
    watch: CallWatch | None = getattr(_local, "watch", None)
    return watch


class _WatchedMixin:
    """Registers the connection with the running call; bounds connecting by the time left."""

    timeout: Any

    def connect(self) -> None:
        watch = current_watch()
        if watch is not None:
            watch.attach(self)  # type: ignore[arg-type]
            left = watch.remaining()
            if left is not None and isinstance(self.timeout, (int, float)):
                self.timeout = max(0.001, min(float(self.timeout), left))
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = current_watch()
        if watch is not None:
            watch.attach(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]
        if watch is not None and watch.on_sent is not None:
            watch.on_sent()


class _WatchedHTTPConnection(_WatchedMixin, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """An `HTTPAdapter` whose connections (direct or through an HTTP proxy) report to the call's watch."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager).__name__ == "ProxyManager" and isinstance(manager, PoolManager):
            manager.pool_classes_by_scheme = _POOLS
        return manager
