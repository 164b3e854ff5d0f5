"""Test doubles shared by several test files."""

from __future__ import annotations


class FakeTime:
    """A clock that only moves when someone sleeps (or the test advances it): nothing really waits."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
