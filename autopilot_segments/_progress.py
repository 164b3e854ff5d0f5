"""Progress of a running export: a frozen snapshot for callbacks, and the optional tqdm bar."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from ._errors import ConfigurationError

__all__ = ["Progress", "ProgressCallback", "ProgressSink", "load_tqdm"]

_INSTALL_HINT = "progress=True needs tqdm: pip install 'autopilot-segments[progress]'"


@attrs.frozen(kw_only=True)
class Progress:
    """A snapshot of a running export, handed to `on_progress` after every batch.

    `rows_seen` rows were read from the input; of those, `exported` are confirmed on the list and
    `rejected` will not be (yet-unsent rows are in neither). `rate` is rows seen per second.
    """

    segment: str
    rows_seen: int = attrs.field(validator=attrs.validators.ge(0))
    exported: int = attrs.field(validator=attrs.validators.ge(0))
    rejected: int = attrs.field(validator=attrs.validators.ge(0))
    unchanged: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    api_calls: int = attrs.field(validator=attrs.validators.ge(0))
    elapsed: float = attrs.field(validator=attrs.validators.ge(0.0))
    rate: float = attrs.field(validator=attrs.validators.ge(0.0))
    dry_run: bool = False


ProgressCallback = Callable[[Progress], None]


def load_tqdm() -> Callable[..., Any]:
    """`tqdm.auto.tqdm`, imported only when asked for; ConfigurationError if tqdm is not installed."""
    try:
        module = importlib.import_module("tqdm.auto")
    except ImportError as exc:
        raise ConfigurationError(_INSTALL_HINT) from exc
    bar_class: Callable[..., Any] = module.tqdm
    return bar_class


@attrs.define
class ProgressSink:
    """Delivers snapshots to the user's callback and/or a tqdm bar."""

    callback: ProgressCallback | None = None
    bar_class: Callable[..., Any] | None = None
    _bar: Any = None
    _shown_rows: int = 0

    def open(self, segment: str, total: int | None) -> None:
        if self.bar_class is not None:
            self._bar = self.bar_class(total=total, desc=segment, unit="row", dynamic_ncols=True)
            self._shown_rows = 0

    def emit(self, progress: Progress) -> None:
        if self._bar is not None:
            self._bar.update(progress.rows_seen - self._shown_rows)
            self._shown_rows = progress.rows_seen
            self._bar.set_postfix(exported=progress.exported, rejected=progress.rejected, refresh=False)
        if self.callback is not None:
            self.callback(progress)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
