"""What both sandbox command lines share: a key file made safely, and serving until a signal."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from ._autopilot.sandbox import Sandbox
from ._faults import FaultPlan
from ._ortto.sandbox import OrttoSandbox

__all__ = [
    "create_key_file",
    "ortto_sandbox_from_arguments",
    "sandbox_from_arguments",
    "serve_until_signalled",
]

_Served = TypeVar("_Served", Sandbox, OrttoSandbox)


def sandbox_from_arguments(args: argparse.Namespace, *, api_key: str | None, **overrides: Any) -> Sandbox:
    """The sandbox that the behaviour switches both command lines share describe (not started).

    Raises `ValueError` for a switch value the sandbox refuses.
    """
    faults = FaultPlan(rate=args.fault_rate, seed=args.fault_seed) if args.fault_rate else None
    return Sandbox(
        api_key=api_key,
        port=args.port,
        rate_limit=args.rate,
        retry_after=args.retry_after,
        latency=args.latency,
        bulk_invalid=args.bulk_invalid,
        bulk_list=args.bulk_list,
        bulk_answer=args.bulk_answer,
        duplicate_list=args.duplicate_list,
        delete_status=args.delete_status,
        hook_style=args.hook_style,
        error_style=args.error_style,
        faults=faults,
        **overrides,
    )


def ortto_sandbox_from_arguments(
    args: argparse.Namespace, *, api_key: str | None, **overrides: Any
) -> OrttoSandbox:
    """The Ortto sandbox that the command line's switches describe (not started).

    Raises `ValueError` for a switch value the sandbox refuses.
    """
    faults = FaultPlan(rate=args.fault_rate, seed=args.fault_seed) if args.fault_rate else None
    return OrttoSandbox(
        api_key=api_key,
        port=args.port,
        rate_limit=args.rate,
        try_in_seconds=args.try_in_seconds,
        latency=args.latency,
        invalid_person=args.invalid_person,
        skipped_status=args.skipped_status,
        merge_tags=args.merge_tags,
        async_answer=args.async_answer,
        bad_request_ban=args.bad_request_ban,
        faults=faults,
        **overrides,
    )


def create_key_file(path: Path) -> str:
    """Write a new random key to `path`, readable by its owner only, and return it.

    Raises `OSError` (`FileExistsError` included) rather than overwrite anything.
    """
    key = secrets.token_hex(16)
    # O_EXCL: never clobber a file that appeared meanwhile; 0600 from the start, not chmod'ed later.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def serve_until_signalled(sandbox: _Served, announce: Callable[[_Served], None]) -> None:
    """Start `sandbox`, call `announce` with it, and serve until SIGINT or SIGTERM.

    The previous signal handlers are restored afterwards, so callers embedding this keep theirs.
    """
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with sandbox:
            announce(sandbox)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
