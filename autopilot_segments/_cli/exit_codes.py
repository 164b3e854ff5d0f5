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
from .console import PROG, _Console, redact_key_like


class ExitCode(enum.IntEnum):
    """What the process exit status means (documented in `--help` and docs/cli.md)."""

    OK = 0
    REJECTED_ROWS = 1
    USAGE = 2
    GUARDRAIL = 3
    AUTH = 4
    FAILURE = 5
    INTERRUPTED = 130
    TERMINATED = 143


_EPILOG = f"""\
exit codes:
  0  every row was exported (or was already up to date); demo: it ran as intended; others: success
  1  export: the export finished, but some rows were rejected (see --rejections / --report)
  2  usage or configuration error (bad flags, no API key, unreadable source, mapping or state file)
  3  a guard rail stopped the export before anything was written (re-run with --force to override)
  4  authentication or permission error (the API key was refused)
  5  other API or connection failure (Autopilot unreachable, timeouts, server errors or 429s that
     retries did not get through, rows that failed for such a reason); re-running is safe
  130  interrupted by Ctrl-C; 143: stopped by SIGTERM. An export first waits for the batches in
     flight, writes --report and --rejections with what Autopilot acknowledged, and says how many
     rows were exported; re-running (with the same --state) is safe and completes it
`run` exits with the highest code of its exports' segments; `check` with 0, or 2 when it found a problem.

The API key is read from the {KEY_ENV} environment variable or from --api-key-file PATH.
Run `{PROG} demo` to try everything against a local sandbox, no key needed.
"""


# The stable `code` of a `--json` error object, by exit status (documented in docs/cli.md). Exit status 2
# has two: "usage" for the command line itself, "configuration" for what it names (files, mapping, key).
ERROR_CODES: dict[ExitCode, str] = {
    ExitCode.REJECTED_ROWS: "rejected_rows",
    ExitCode.USAGE: "configuration",
    ExitCode.GUARDRAIL: "guardrail",
    ExitCode.AUTH: "auth",
    ExitCode.FAILURE: "failure",
    ExitCode.INTERRUPTED: "interrupted",
    ExitCode.TERMINATED: "terminated",
}


class _UsageError(Exception):
    """A mistake on the command line (argparse's, or a flag combination it cannot check): exit 2.

    `prog` is the command it concerns (`autopilot-segments export`), for the `--help` pointer.
    """

    def __init__(self, message: str, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.prog = prog


def _report_usage_error(console: _Console, exc: _UsageError) -> ExitCode:
    """The one place a usage error is printed: one line with the fix and a pointer to `--help`."""
    prog = exc.prog or PROG
    message = f"{exc.message} (see {prog} --help)"
    return _report_error(console, ExitCode.USAGE, message, code="usage", prog=prog)


def _report_error(
    console: _Console, exit_code: ExitCode, message: str, *, code: str | None = None, prog: str = PROG
) -> ExitCode:
    """The one place an error that ends a command is printed; returns the exit status to end with.

    Always one line on stderr, `PROG: error: message`. Under `--json` also, on stdout, the object
    `{"error": {"code": ..., "message": ..., "exit_code": N}}` (what scripts parse).
    """
    # A key typed after a mistaken flag (`--apikey KEY`) or as a path (`--api-key-file KEY`) would be
    # repeated by the message that names the mistake: anything key-like is hidden here, for every error.
    message = redact_key_like(console.redact(message))
    if console.json_mode:
        error = {"code": code or ERROR_CODES.get(exit_code, "failure"), "message": message}
        console.emit_json({"error": {**error, "exit_code": int(exit_code)}})
    print(console.redact(f"{prog}: error: {message}"), file=console.stderr, flush=True)
    return exit_code


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
        # The message usually says the cause already (a source's error, a batch's): say it once.
        said = not cause_text or cause_text in str(exc) or str(exc.cause) in str(exc)
        return cause_code, f"{exc}" + ("" if said else f": {cause_text}")
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
