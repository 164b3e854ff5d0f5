"""The full argument parser: the shared option groups and one sub-parser per command."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from .._version import __version__

if TYPE_CHECKING:
    pass

from .commands.account import _cmd_fields, _cmd_lists, _cmd_ping, _cmd_segments
from .commands.completion import _add_completion_arguments
from .commands.demo import _add_demo_arguments
from .commands.export import _add_export_arguments
from .commands.sandbox import _add_sandbox_arguments
from .commands.saved import _add_check_arguments, _add_run_arguments
from .connect import DESTINATIONS, KEY_ENV, ORTTO_KEY_ENV
from .console import PROG
from .exit_codes import _EPILOG, _UsageError
from .options import _non_negative_int, _positive_float

_REQUIRED = re.compile(r"^the following arguments are required: (?P<names>.+)$")
_INVALID_CHOICE = re.compile(
    r"^argument (?P<arg>\S+): invalid choice: '(?P<value>[^']*)' \(choose from (?P<choices>.+)\)$"
)


_ARGUMENT = re.compile(r"^argument (?P<arg>[^:]+): (?P<rest>.+)$", re.DOTALL)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not the 14-line usage block argparse prints.

    `error()` raises `_UsageError` (never exits): `main()` prints it in one place, as one line with the fix
    and a pointer to `--help` (or as a JSON error object under `--json`), and exits 2.
    """

    def error(self, message: str) -> NoReturn:
        raise _UsageError(self._explain(message), prog=self.prog)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # Said by the command's own parser, so the `--help` pointer names the command.
            command_parser = getattr(parsed, "command_parser", self)
            command_parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _explain(self, message: str) -> str:
        required = _REQUIRED.match(message)
        if required:
            names = required["names"].split(", ")
            if names == ["COMMAND"]:
                return f"a command is required: {', '.join(self._commands())}"
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
            return f"{listed} {'is' if len(names) == 1 else 'are'} required"
        invalid = _INVALID_CHOICE.match(message)
        if invalid:
            # Quoted up to Python 3.11 ('keep', 'remove'), bare from 3.12 on (keep, remove).
            choices = [choice.strip().strip("'") for choice in invalid["choices"].split(",")]
            what = "command" if invalid["arg"] == "COMMAND" else invalid["arg"]
            close = difflib.get_close_matches(invalid["value"], choices, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            return f"unknown {what} {invalid['value']!r}: {hint}choose from {', '.join(choices)}"
        argument = _ARGUMENT.match(message)
        if argument:
            return f"{argument['arg']}: {argument['rest']}"
        return message

    def _commands(self) -> list[str]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return list(action.choices)
        return []


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (public so the docs and tests can introspect it)."""
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="Export customer segments to Autopilot, and inspect an Autopilot account.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = _Parser(add_help=False)
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only errors and the result: no progress, no notes; an export's summary is one line",
    )
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also log what the library does at INFO level to stderr (no personal data)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        help="log every request at DEBUG level to stderr and show tracebacks (the key stays hidden)",
    )

    connection = _Parser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--destination",
        choices=DESTINATIONS,
        default="autopilot",
        help="the platform to talk to (default: autopilot; ortto: Autopilot's successor, docs/ortto.md)",
    )
    group.add_argument(
        "--api-key-file",
        metavar="PATH",
        help=f"read the API key from this file instead of the {KEY_ENV} environment variable "
        f"({ORTTO_KEY_ENV} with --destination ortto)",
    )
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL (default: $AUTOPILOT_BASE_URL, else https://api2.autopilothq.com/v1; "
        "Ortto: $ORTTO_BASE_URL, else the --region's host)",
    )
    group.add_argument(
        "--region",
        choices=("default", "au", "eu"),
        help="Ortto's region: the account's host (default: $ORTTO_REGION, else default); "
        "only with --destination ortto",
    )
    group.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="requests per second to stay under (default: 5, Autopilot's documented limit; Ortto: 10, "
        "its Professional plan's; unpaced with --sandbox)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="seconds to wait for each answer (default: 30)",
    )
    group.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="retries on connection errors, 429 and 5xx answers (default: 5)",
    )

    json_flag = _Parser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def add(name: str, help_text: str, parents: list[_Parser]) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            allow_abbrev=False,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            parents=parents,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(command_parser=sub)
        return sub

    read_parents = [common, connection, json_flag]
    add("ping", "check the API key and the connection (GET /account)", read_parents).set_defaults(
        handler=_cmd_ping
    )
    add("lists", "show the account's contact lists", read_parents).set_defaults(handler=_cmd_lists)
    add("segments", "show the account's smart segments", read_parents).set_defaults(handler=_cmd_segments)
    add("fields", "show the account's custom field definitions", read_parents).set_defaults(
        handler=_cmd_fields
    )
    _add_export_arguments(add("export", "export a segment file into an Autopilot list", [common, connection]))
    _add_run_arguments(
        add("run", "run the saved exports of an export file (all, or the ones named)", [common])
    )
    _add_check_arguments(
        add(
            "check",
            "check an export file: its mapping against the account's custom fields, its sources' columns",
            [common],
        )
    )
    _add_demo_arguments(add("demo", "export the bundled sample segment into a local sandbox", [common]))
    _add_sandbox_arguments(
        add("sandbox", "serve a local Autopilot-compatible sandbox until Ctrl+C", [common])
    )
    _add_completion_arguments(
        add("completion", "print a shell completion script (bash, zsh or fish)", [common])
    )
    return parser
