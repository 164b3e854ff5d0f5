"""An export's settings, validated once, and the context every step of an export reads them from.

`Exporter.__init__` checks its arguments here (every problem at once, as one `ConfigurationError`
saying what to fix); each export or plan then runs with one frozen `ExportContext`: the destination,
the mapping, the `ExportOptions` and the injected clocks.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from typing import Any, Final, Literal, Protocol

import attrs

from .._destinations.base import Destination, MappedRow
from .._errors import ConfigurationError
from .._progress import ProgressCallback, ProgressSink
from .._rejections import Rejection

__all__ = [
    "ExportContext",
    "ExportOptions",
    "OnLeave",
    "RowMapper",
    "auto_concurrency",
    "option_problems",
    "utcnow",
]

# With no way to know the latency up front, "auto" keeps enough requests in flight to saturate the
# rate at up to half a second per request; at 5 r/s that is the classic 4.
_ASSUMED_LATENCY: Final = 0.5
_AUTO_MIN, _AUTO_MAX = 4, 32

OnLeave = Literal["keep", "remove"]
_ON_LEAVE: Final = ("keep", "remove")


class RowMapper(Protocol):
    """What `Exporter` needs from a `FieldMapping`."""

    def map_rows(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[MappedRow | Rejection]: ...


def auto_concurrency(requests_per_second: float) -> int:
    """Requests to keep in flight so that `requests_per_second` is reached at up to 0.5 s latency."""
    return max(_AUTO_MIN, min(_AUTO_MAX, math.ceil(requests_per_second * _ASSUMED_LATENCY)))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@attrs.frozen(kw_only=True)
class ExportOptions:
    """The validated settings of an `Exporter` (see its docstring for each)."""

    max_profiles: int | None
    concurrency: int
    stop_on_error: bool
    batch_size: int
    state_path: str | None
    on_leave: OnLeave
    max_removal_fraction: float


@attrs.frozen(kw_only=True)
class ExportContext:
    """What every step of one export or plan reads: who to send to, how to map, the settings, the clocks."""

    destination: Destination
    mapping: RowMapper
    options: ExportOptions
    clock: Callable[[], float]
    now: Callable[[], dt.datetime]
    on_progress: ProgressCallback | None = None
    bar_class: Any = None

    def progress_sink(self, segment: str, rows: object) -> ProgressSink:
        sink = ProgressSink(callback=self.on_progress, bar_class=self.bar_class)
        sink.open(segment, len(rows) if isinstance(rows, Sized) else None)
        return sink

    def require_segment(self, segment: str) -> None:
        if not isinstance(segment, str) or not segment.strip():
            capabilities = self.destination.capabilities
            raise ConfigurationError(
                "segment must be a non-empty name: it becomes the "
                f"{capabilities.name} {capabilities.target_noun} title"
            )


def option_problems(
    destination: Destination,
    *,
    max_profiles: int | None,
    concurrency: int | None,
    batch_size: int,
    state: object,
    on_leave: object,
    max_removal_fraction: object,
) -> list[str]:
    """Every problem with the `Exporter`'s settings, each saying what to fix; [] when none."""
    problems: list[str] = []
    if max_profiles is not None and (isinstance(max_profiles, bool) or max_profiles < 0):
        problems.append(f"max_profiles must be None (no cap) or >= 0, got {max_profiles!r}")
    if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
        problems.append(f"concurrency must be >= 1 (requests in flight) or None (auto), got {concurrency!r}")
    max_batch = destination.capabilities.max_batch
    if isinstance(batch_size, bool) or not 1 <= batch_size <= max_batch:
        problems.append(f"batch_size must be between 1 and {max_batch}, got {batch_size!r}")
    if on_leave not in _ON_LEAVE:
        problems.append(f"on_leave must be 'keep' or 'remove', got {on_leave!r}")
    elif on_leave == "remove" and state is None:
        problems.append(
            "on_leave='remove' needs state=<file>: the state remembers who was exported, "
            "so leavers can be found"
        )
    fraction = max_removal_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction <= 1.0:
        problems.append(f"max_removal_fraction must be a number between 0 and 1, got {fraction!r}")
    if state is not None:
        if not isinstance(state, (str, os.PathLike)) or not os.fspath(state):
            problems.append(f"state must be a file path (str or os.PathLike) or None, got {state!r}")
        else:
            try:
                destination.account_fingerprint  # noqa: B018 - the state is keyed by it
            except ConfigurationError as error:
                problems.extend(error.problems)
    return problems
