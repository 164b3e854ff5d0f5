"""One run of a saved export at a time: an advisory lock held on an open file for the whole run.

The lock is `flock` (Unix) or `msvcrt.locking` (Windows) on an open file descriptor, so it dies with the
process that holds it: a run killed with SIGKILL or a machine that rebooted never leaves a lock behind
that blocks the next run. The file itself stays (removing it would let two runs lock two different
files); it holds the pid of the last run that took it, for the message.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .._errors import StateError

__all__ = ["lock_path_for", "run_lock"]


def lock_path_for(export_file: Path, export_name: str, state: Path | None) -> Path:
    """Next to the state file when there is one (it is writable, and shared by whoever shares the
    state), else in the temporary folder, keyed by the export file's full path and the export's name."""
    if state is not None:
        return state.with_name(state.name + ".lock")
    digest = hashlib.sha256(f"{export_file.resolve()}\0{export_name}".encode()).hexdigest()[:24]
    return Path(tempfile.gettempdir()) / "autopilot-segments-locks" / f"{digest}.lock"


@contextlib.contextmanager
def run_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock at `path` while the block runs; `StateError` at once if another process holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StateError(f"cannot create the lock file {path} for {what}: {exc.strerror or exc}") from None
    try:
        if not _try_lock(fd):
            holder = _read_holder(fd)
            raise StateError(
                f"{what} is already running{holder} (lock file {path}); a second run at the same time is "
                "refused: wait for the first one to finish"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
