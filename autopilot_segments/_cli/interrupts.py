"""Ctrl-C and SIGTERM: both stop a command the same way, and an interrupted export says what it did.

Python turns SIGINT into `KeyboardInterrupt` in the main thread; SIGTERM (what `kill`, systemd, Docker
and CI runners send) would end the process on the spot, losing the record of an export. While a command
runs, SIGTERM raises `_Terminated`, a `KeyboardInterrupt`, so the exporter settles the batches in flight
and hands back its report (`ExportInterrupted`) exactly as for Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .._errors import ExportInterrupted
from .._plural import counted
from .exit_codes import ExitCode


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread the way Ctrl-C raises `KeyboardInterrupt`."""


def _raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise _Terminated("SIGTERM")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `_Terminated` while the block runs (only the main thread may set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _describe_interrupt(exc: KeyboardInterrupt, *, state: str | None) -> tuple[ExitCode, str]:
    """The exit status (130 for Ctrl-C, 143 for SIGTERM) and the one line to print."""
    terminated = isinstance(exc, _Terminated) or isinstance(exc.__cause__, _Terminated)
    code = ExitCode.TERMINATED if terminated else ExitCode.INTERRUPTED
    by = "SIGTERM" if terminated else "Ctrl-C"
    if not isinstance(exc, ExportInterrupted):
        return code, f"interrupted by {by}"
    report = exc.export_report
    done = (
        f"interrupted by {by}: {counted(report.exported, 'row')} exported "
        f"(acknowledged by {report.destination or 'Autopilot'}) of {counted(report.total_rows, 'row')} read"
    )
    if state:
        again = f"re-running the same command with --state {state} is safe and completes the export"
    else:
        again = "re-running the same command is safe (contacts are updated, not duplicated)"
    return code, f"{done}; {again}"
