"""What both sandbox apps do alike with their switches: swap them atomically, pace, schedule faults, log."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from ._faults import FaultPlan, FaultSchedule
from ._ratelimit import TokenBucket
from ._recording import RequestLog

__all__ = ["SwitchedApp", "same_key"]


class _Switches(Protocol):
    @property
    def rate_limit(self) -> float | None: ...

    @property
    def faults(self) -> FaultPlan | None: ...


_S = TypeVar("_S", bound=_Switches)


def same_key(given: str, expected: str) -> bool:
    """Compare keys in constant time (a sandbox is a fake, but it is a fake of something secure)."""
    return hmac.compare_digest(given.encode(), expected.encode())


class SwitchedApp(Generic[_S]):
    """The switches, rate bucket, fault schedule, request log and lock of an app; subclasses add a store.

    Thread-safe: state changes happen under `lock`.
    """

    def __init__(self, settings: _S, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.lock = threading.RLock()
        self.log = RequestLog()
        self.faults = FaultSchedule(settings.faults)
        self._settings = settings
        self._bucket = self._new_bucket(settings)

    def _new_bucket(self, settings: _S) -> TokenBucket | None:
        return None if settings.rate_limit is None else TokenBucket(settings.rate_limit, clock=self._clock)

    @property
    def settings(self) -> _S:
        return self._settings

    def configure(self, settings: _S, *, restart_faults: bool = False) -> None:
        """Swap the switches; a new rate empties nothing but starts a fresh (full) bucket."""
        with self.lock:
            old, self._settings = self._settings, settings
            if settings.rate_limit != old.rate_limit:
                self._bucket = self._new_bucket(settings)
            if restart_faults or settings.faults != old.faults:
                self.faults.set_plan(settings.faults)

    def reset(self) -> None:
        """Forget everything stored, every recorded request and every injected fault."""
        with self.lock:
            self._reset_store()
            self.log.clear()
            self.faults.clear()
            self._bucket = self._new_bucket(self._settings)

    def _reset_store(self) -> None:
        raise NotImplementedError

    def arrival(self) -> float:
        """The sandbox clock's reading, taken by the server when a request line arrives."""
        return self._clock()
