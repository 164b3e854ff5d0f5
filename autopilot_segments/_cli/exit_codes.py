"""What the exit status means, usage errors, and how a failure maps to a status and a message."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    AutopilotError,
    ConfigurationError,
    ExportError,
    GuardrailError,
    PermissionDeniedError,
    StateError,
)
from ..sources import SourceError

if TYPE_CHECKING:
    pass

from .connect import KEY_ENV
from .console import PROG


class ExitCode(enum.IntEnum):
    """What the process exit status means (documented in `--help` and docs/cli.md)."""

    OK = 0
    REJECTED_ROWS = 1
    USAGE = 2
    GUARDRAIL = 3
    AUTH = 4
    FAILURE = 5
    INTERRUPTED = 130


_EPILOG = f"""\
exit codes:
  0  every row was exported (or was already up to date); other commands: success
  1  the export finished, but some rows were rejected (see --rejections / --report)
  2  usage or configuration error (bad flags, no API key, unreadable source, mapping or state file)
  3  a guard rail stopped the export before anything was written (re-run with --force to override)
  4  authentication or permission error (the API key was refused)
  5  other API or connection failure (Autopilot unreachable, timeouts, server errors or 429s that
     retries did not get through, rows that failed for such a reason); re-running is safe

The API key is read from the {KEY_ENV} environment variable or from --api-key-file PATH.
Run `{PROG} demo` to try everything against a local sandbox, no key needed.
"""


class _UsageError(Exception):
    """A flag combination argparse cannot check by itself; reported like an argparse error (exit 2)."""


def _describe_failure(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one line to print for an exception that ended the command."""
    if isinstance(exc, GuardrailError):
        # The library's message speaks Python ("force=True"); say it the command line's way.
        message = str(exc).replace("force=True", "--force")
        if "--force" not in message:
            message += " (nothing was written; re-run with --force to override)"
        return ExitCode.GUARDRAIL, message
    if isinstance(exc, ExportError):
        cause_code, cause_text = _describe_failure(exc.cause) if exc.cause else (ExitCode.FAILURE, "")
        return cause_code, f"{exc}" + (f": {cause_text}" if cause_text and cause_text not in str(exc) else "")
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return ExitCode.AUTH, f"the API key was refused: {exc}"
    if isinstance(exc, (APIError, APIConnectionError)):
        return ExitCode.FAILURE, str(exc)
    if isinstance(exc, (ConfigurationError, StateError, SourceError)):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return ExitCode.USAGE, f"{exc.strerror or exc}{where}"
    if isinstance(exc, AutopilotError):
        return ExitCode.FAILURE, str(exc)
    return ExitCode.FAILURE, f"unexpected {type(exc).__name__}: {exc} (re-run with --debug for details)"
