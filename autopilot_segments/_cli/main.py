"""The entry point: parse, refuse a key on the command line, run the command, map failures to exit codes."""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from .connect import KEY_ENV
from .console import _Console, _debug_logging, redact_key_like
from .exit_codes import _describe_failure, _report_error, _report_usage_error, _UsageError
from .interrupts import _describe_interrupt, _sigterm_as_interrupt
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (see `ExitCode`)."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    # Before parsing succeeds, --json anywhere among the arguments asks for a JSON error object.
    console = _Console(sys.stdout, sys.stderr, json_mode=_asks_for_json(arguments))
    try:
        _refuse_key_on_command_line(parser, arguments)
        args = parser.parse_args(arguments)
    except _UsageError as exc:
        return _report_usage_error(console, exc)
    console.json_mode = bool(getattr(args, "json", False))
    console.quiet = bool(getattr(args, "quiet", False))
    handler: Callable[[argparse.Namespace, _Console], int] = args.handler
    verbose = bool(getattr(args, "verbose", False))
    with _debug_logging(console, args.debug, verbose=verbose), _sigterm_as_interrupt():
        try:
            return int(handler(args, console))
        except _UsageError as exc:
            command_parser: argparse.ArgumentParser = args.command_parser
            return _report_usage_error(
                console, _UsageError(exc.message, prog=exc.prog or command_parser.prog)
            )
        except KeyboardInterrupt as exc:
            # Ctrl-C or SIGTERM; an interrupted export has written its report and says what it did.
            code, message = _describe_interrupt(exc, state=getattr(args, "state", None))
            return _report_error(console, code, message)
        except Exception as exc:
            code, message = _describe_failure(exc)
            if args.debug:
                console.stderr.write(redact_key_like(console.redact(traceback.format_exc())))
            return _report_error(console, code, message)


def _asks_for_json(arguments: Sequence[str]) -> bool:
    for argument in arguments:
        if argument == "--":
            return False
        if argument == "--json":
            return True
    return False


def _refuse_key_on_command_line(parser: argparse.ArgumentParser, arguments: Sequence[str]) -> None:
    """Reject `--api-key` before argparse can echo its value back in an "unrecognized arguments" error."""
    for argument in arguments:
        if argument == "--":
            return
        if argument == "--api-key" or argument.startswith("--api-key="):
            parser.error(
                f"there is no --api-key option, so the key never lands in shell history: "
                f"set {KEY_ENV} or pass --api-key-file PATH"
            )
