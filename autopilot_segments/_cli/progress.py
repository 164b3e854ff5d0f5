"""The progress display of an export: a tqdm bar or plain lines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

import attrs

if TYPE_CHECKING:
    from .._progress import Progress

from .console import _Console


def _progress_mode(console: _Console, *, enabled: bool) -> str:
    """ "tqdm" or "line" on a terminal; "off" otherwise (a log file or a pipe wants no progress noise)."""
    if not enabled or console.quiet:
        return "off"
    if console.stderr.isatty():
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return "line"
        return "tqdm"
    return "off"


@attrs.define
class _ProgressDisplay:
    """Shows the exporter's `Progress` snapshots on stderr: a tqdm bar, or a rewritten line."""

    mode: str
    stream: TextIO
    segment: str
    total: int | None = None
    _bar: Any = None
    _shown: int = 0
    _last: Progress | None = None
    _closed: bool = False

    def __enter__(self) -> _ProgressDisplay:
        if self.mode == "tqdm":
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total, desc=self.segment, unit="row", file=self.stream, dynamic_ncols=True
            )
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def update(self, progress: Progress) -> None:
        self._last = progress
        if self.mode == "tqdm":
            self._bar.update(progress.rows_seen - self._shown)
            self._shown = progress.rows_seen
            # Strings, as in the plain line: tqdm would show the numbers as `1e+5`.
            self._bar.set_postfix(
                exported=f"{progress.exported:,}", rejected=f"{progress.rejected:,}", refresh=False
            )
        elif self.mode == "line":
            self.stream.write("\r" + self._describe(progress))
            self.stream.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "line" and self._last is not None:
            self.stream.write("\n")

    def _describe(self, progress: Progress) -> str:
        of_total = f"/{self.total:,}" if self.total else ""
        return (
            f"{self.segment}: {progress.rows_seen:,}{of_total} rows read, {progress.exported:,} exported, "
            f"{progress.rejected:,} rejected ({progress.rate:,.0f} rows/s)"
        )
