"""Scripted and seeded random faults: what a flaky Autopilot (or the network in front of it) does."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from typing import Any, Final

import attrs

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultSchedule", "delay_seconds", "validate_fault_kind"]

# "delay:<seconds>" is also accepted wherever a kind is; it is not in this tuple because it is parameterised.
FAULT_KINDS: Final[tuple[str, ...]] = ("500", "502", "503", "429", "drop_before", "drop_after")
_DELAY_PREFIX: Final = "delay:"


def delay_seconds(kind: str) -> float | None:
    """The hold time of a `delay:<seconds>` kind, None for any other kind."""
    if not kind.startswith(_DELAY_PREFIX):
        return None
    return float(kind[len(_DELAY_PREFIX) :])


def validate_fault_kind(kind: str) -> str:
    """Return `kind` if it names a fault, else raise ValueError saying which kinds exist."""
    if kind in FAULT_KINDS:
        return kind
    if isinstance(kind, str) and kind.startswith(_DELAY_PREFIX):
        try:
            seconds = delay_seconds(kind)
        except ValueError:
            seconds = None
        if seconds is not None and seconds >= 0 and seconds == seconds:
            return kind
    raise ValueError(f"unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)} or 'delay:<seconds>'")


def _validate_kinds(_instance: Any, _attribute: Any, kinds: tuple[str, ...]) -> None:
    if not kinds:
        raise ValueError("FaultPlan.kinds must name at least one fault kind")
    for kind in kinds:
        validate_fault_kind(kind)


def _validate_rate(_instance: Any, _attribute: Any, rate: float) -> None:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"FaultPlan.rate must be between 0 and 1, got {rate!r}")


def _to_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    return tuple(kinds)


def _to_rate(rate: float) -> float:
    return float(rate)


def _upper_methods(methods: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if methods is None else tuple(m.upper() for m in methods)


@attrs.frozen(kw_only=True)
class FaultPlan:
    """Seeded random faults: each matching request fails with probability `rate`.

    The kind of each fault is drawn from `kinds` by a RNG seeded with `seed`, so a given seed and
    request order always give the same faults. `methods` and `path_prefix` (decoded, without `/v1`)
    restrict which requests are eligible; None means all.
    """

    rate: float = attrs.field(default=0.0, converter=_to_rate, validator=_validate_rate)
    kinds: tuple[str, ...] = attrs.field(default=FAULT_KINDS, converter=_to_kinds, validator=_validate_kinds)
    seed: int = 0
    methods: tuple[str, ...] | None = attrs.field(default=None, converter=_upper_methods)
    path_prefix: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is eligible for a fault under this plan."""
        if self.methods is not None and method not in self.methods:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


@attrs.define
class _Injected:
    kind: str
    remaining: int
    method: str | None
    path_prefix: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and method != self.method:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultSchedule:
    """Decides, request by request, which fault (if any) to play.

    Injected faults come first (in the order they were injected), then the seeded plan. Thread-safe.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._injected: list[_Injected] = []
        self._plan = plan
        self._rng = random.Random(plan.seed if plan else 0)

    def set_plan(self, plan: FaultPlan | None) -> None:
        """Replace the seeded plan; its RNG restarts from the plan's seed."""
        with self._lock:
            self._plan = plan
            self._rng = random.Random(plan.seed if plan else 0)

    def inject(self, kind: str, *, times: int, method: str | None, path_prefix: str | None) -> None:
        validate_fault_kind(kind)
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times!r}")
        with self._lock:
            self._injected.append(_Injected(kind, times, method.upper() if method else None, path_prefix))

    def clear(self) -> None:
        """Forget injected faults and restart the plan's RNG."""
        with self._lock:
            self._injected.clear()
            self._rng = random.Random(self._plan.seed if self._plan else 0)

    @property
    def pending(self) -> int:
        """How many injected faults are still waiting for a matching request."""
        with self._lock:
            return sum(i.remaining for i in self._injected)

    def next_fault(self, method: str, path: str) -> str | None:
        """The fault to play for this request, or None to answer it normally."""
        with self._lock:
            for index, injected in enumerate(self._injected):
                if injected.matches(method, path):
                    injected.remaining -= 1
                    if injected.remaining == 0:
                        del self._injected[index]
                    return injected.kind
            plan = self._plan
            if plan is None or plan.rate <= 0.0 or not plan.matches(method, path):
                return None
            if self._rng.random() >= plan.rate:
                return None
            return self._rng.choice(plan.kinds)
