"""The `autopilot-segments` command (also `python -m autopilot_segments`).

Commands: `ping`, `lists`, `segments`, `fields` (read the account), `export` (a segment file into a list),
`demo` (the bundled sample into a local sandbox) and `sandbox` (serve the local sandbox).

The API key comes from the `AUTOPILOT_API_KEY` environment variable or from `--api-key-file PATH`; there is
deliberately no flag that takes the key itself (it would land in shell history and `ps` output). Every line
this module writes, logs included, passes through a redactor that knows the key.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import attrs

from ._errors import (
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
from ._version import __version__

if TYPE_CHECKING:
    from ._client import AutopilotClient

__all__ = ["ExitCode", "build_parser", "main"]

PROG = "autopilot-segments"
KEY_ENV = "AUTOPILOT_API_KEY"
DEMO_SEGMENT = "VIP customers"
_REDACTED = "<redacted>"
# The demo talks to an in-process sandbox; pacing it at Autopilot's 5 r/s would only make it slow.
_DEMO_RATE = 1000.0
_CUSTOM_TYPES = ("string", "integer", "float", "date", "boolean")


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
  5  other API or connection failure (Autopilot unreachable, server errors, rate limit not recovered)

The API key is read from the {KEY_ENV} environment variable or from --api-key-file PATH.
Run `{PROG} demo` to try everything against a local sandbox, no key needed.
"""


class _UsageError(Exception):
    """A flag combination argparse cannot check by itself; reported like an argparse error (exit 2)."""


# --------------------------------------------------------------------------- console and redaction


@attrs.define
class _Console:
    """Where the command writes: results to stdout, diagnostics to stderr, the API key nowhere."""

    stdout: TextIO
    stderr: TextIO
    json_mode: bool = False
    secrets: list[str] = attrs.field(factory=list)

    def add_secret(self, value: str) -> None:
        if value and value not in self.secrets:
            self.secrets.append(value)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def out(self, text: str = "") -> None:
        """A result line (stdout)."""
        print(self.redact(text), file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Context for a human: stdout normally, stderr under `--json` so stdout stays parseable."""
        print(self.redact(text), file=self.stderr if self.json_mode else self.stdout, flush=True)

    def warn(self, text: str) -> None:
        print(self.redact(f"{PROG}: warning: {text}"), file=self.stderr, flush=True)

    def error(self, text: str) -> None:
        print(self.redact(f"{PROG}: error: {text}"), file=self.stderr, flush=True)

    def emit_json(self, value: Any) -> None:
        self.out(json.dumps(value, indent=2, default=str, ensure_ascii=False))


class _RedactingFormatter(logging.Formatter):
    """Belt and braces: whatever a library logs, the key is replaced before it reaches the stream."""

    def __init__(self, console: _Console) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._console = console

    def format(self, record: logging.LogRecord) -> str:
        return self._console.redact(super().format(record))


def _enable_debug_logging(console: _Console) -> None:
    handler = logging.StreamHandler(console.stderr)
    handler.setFormatter(_RedactingFormatter(console))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)


# --------------------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (public so the docs and tests can introspect it)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Export customer segments to Autopilot, and inspect an Autopilot account.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        help="log every request at DEBUG level to stderr and show tracebacks (the key stays hidden)",
    )

    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--api-key-file",
        metavar="PATH",
        help=f"read the API key from this file instead of the {KEY_ENV} environment variable",
    )
    group.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: https://api2.autopilothq.com/v1)"
    )
    group.add_argument(
        "--rate",
        type=_positive_float,
        default=5.0,
        metavar="R",
        help="requests per second to stay under (default: 5, Autopilot's documented limit)",
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

    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def add(name: str, help_text: str, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
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
    _add_demo_arguments(add("demo", "export the bundled sample segment into a local sandbox", [common]))
    _add_sandbox_arguments(
        add("sandbox", "serve a local Autopilot-compatible sandbox until Ctrl+C", [common])
    )
    return parser


def _add_export_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_export)
    sub.add_argument(
        "source", metavar="SOURCE", help="a .csv, .jsonl or .parquet file, or a CDM folder (with --entity)"
    )
    sub.add_argument("--segment", required=True, metavar="NAME", help="the Autopilot list to export into")
    sub.add_argument("--entity", metavar="NAME", help="the entity to read when SOURCE is a CDM folder")

    mapping = sub.add_argument_group("mapping (either --mapping, or --email-column with --field/--custom)")
    mapping.add_argument("--mapping", metavar="FILE", help="a JSON field mapping (see docs/cli.md)")
    mapping.add_argument("--email-column", metavar="COL", help="the source column holding the email")
    mapping.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="FIELD=COL",
        help="map a standard Autopilot field to a column, e.g. FirstName=first_name (repeatable)",
    )
    mapping.add_argument(
        "--custom",
        action="append",
        default=[],
        metavar="NAME:TYPE=COL",
        help=f"map a custom field, e.g. 'Loyalty Points:integer=points'; TYPE is one of "
        f"{', '.join(_CUSTOM_TYPES)} (repeatable)",
    )

    run = sub.add_argument_group("run")
    run.add_argument("--dry-run", action="store_true", help="plan the export and report it; write nothing")
    run.add_argument(
        "--state",
        metavar="FILE",
        help="an SQLite state file: re-runs send only what changed, and leavers can be removed",
    )
    run.add_argument(
        "--on-leave",
        choices=("keep", "remove"),
        default="keep",
        help="what to do with list members no longer in the segment (needs --state; default: keep)",
    )
    run.add_argument(
        "--max-profiles",
        type=_non_negative_int,
        default=100_000,
        metavar="N",
        help="refuse rows beyond the first N profiles (default: 100000; 0 means no cap)",
    )
    run.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="N", help="requests in flight (default: 4)"
    )
    run.add_argument("--full", action="store_true", help="send every row, ignoring what --state says is sent")
    run.add_argument(
        "--force", action="store_true", help="override the guard rails (empty input, mass removal)"
    )
    run.add_argument(
        "--sandbox",
        action="store_true",
        help="export into a local in-process sandbox instead of Autopilot (try a mapping safely)",
    )

    output = sub.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    output.add_argument("--report", metavar="FILE", help="also write the report as JSON to FILE")
    output.add_argument("--rejections", metavar="FILE", help="write the rejected rows as CSV to FILE")
    output.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the default when stderr is not a TTY)"
    )


def _add_demo_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_demo)
    sub.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="pace the sandbox and the client at R requests/s, as Autopilot would (default: unpaced)",
    )
    sub.add_argument(
        "--rejections",
        metavar="FILE",
        help="where to write the rejected rows as CSV (default: a new temporary directory)",
    )
    sub.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    sub.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_sandbox_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_sandbox)
    sub.add_argument(
        "--port", type=_non_negative_int, default=0, help="port to listen on (default: any free)"
    )
    sub.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="answer 429 above R requests/s, as Autopilot does at 5 (default: no limit)",
    )
    sub.add_argument(
        "--latency", type=_non_negative_float, default=0.0, metavar="SECONDS", help="delay every answer"
    )
    sub.add_argument(
        "--api-key-file", metavar="PATH", help="accept the key in this file (default: a fresh random key)"
    )
    behaviour = sub.add_argument_group(
        "ambiguous Autopilot behaviours (the API record is unclear; pick which one to play)"
    )
    behaviour.add_argument(
        "--bulk-invalid",
        choices=("reject", "drop"),
        default="reject",
        help="a bulk upsert with an invalid contact: 400 for the whole request, or drop it silently",
    )
    behaviour.add_argument(
        "--bulk-list",
        choices=("honoured", "ignored"),
        default="honoured",
        help="whether _autopilot_list in a bulk upsert adds the contacts to the list",
    )
    behaviour.add_argument(
        "--duplicate-list",
        choices=("conflict", "create"),
        default="conflict",
        help="creating a list whose name exists: 409, or a second list",
    )
    behaviour.add_argument(
        "--delete-status", type=int, choices=(200, 204), default=200, help="status of a successful DELETE"
    )
    sub.add_argument(
        "--json", action="store_true", help="print the URL and key as one JSON object, then serve"
    )


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


# --------------------------------------------------------------------------- main and error mapping


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code (see `ExitCode`)."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    _refuse_key_on_command_line(parser, arguments)
    args = parser.parse_args(arguments)
    console = _Console(sys.stdout, sys.stderr, json_mode=bool(getattr(args, "json", False)))
    if args.debug:
        _enable_debug_logging(console)
    handler: Callable[[argparse.Namespace, _Console], int] = args.handler
    try:
        return int(handler(args, console))
    except _UsageError as exc:
        command_parser: argparse.ArgumentParser = args.command_parser
        _parser_error(command_parser, console.redact(str(exc)))
    except KeyboardInterrupt:
        console.error("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code, message = _describe_failure(exc)
        if args.debug:
            console.stderr.write(console.redact(traceback.format_exc()))
        console.error(message)
        return code


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


def _parser_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def _describe_failure(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and the one line to print for an exception that ended the command."""
    if isinstance(exc, GuardrailError):
        return ExitCode.GUARDRAIL, f"{exc} (nothing was written; re-run with --force to override)"
    if isinstance(exc, ExportError):
        cause_code, cause_text = _describe_failure(exc.cause) if exc.cause else (ExitCode.FAILURE, "")
        return cause_code, f"{exc}" + (f": {cause_text}" if cause_text and cause_text not in str(exc) else "")
    if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
        return ExitCode.AUTH, f"the API key was refused: {exc}"
    if isinstance(exc, (APIError, APIConnectionError)):
        return ExitCode.FAILURE, str(exc)
    if isinstance(exc, (ConfigurationError, StateError)):
        return ExitCode.USAGE, str(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return ExitCode.USAGE, f"{exc.strerror or exc}{where}"
    if isinstance(exc, AutopilotError):
        return ExitCode.FAILURE, str(exc)
    return ExitCode.FAILURE, f"unexpected {type(exc).__name__}: {exc} (re-run with --debug for details)"


# --------------------------------------------------------------------------- key and client


def _read_api_key(api_key_file: str | None) -> str:
    """The key from `--api-key-file` or the environment; never echoes the file's content."""
    if api_key_file is not None:
        path = Path(api_key_file)
        try:
            key = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"the API key file {path} is not a text file") from None
        if not key:
            raise ConfigurationError(f"the API key file {path} is empty")
        if any(ch.isspace() for ch in key):
            raise ConfigurationError(f"the API key file {path} must hold only the key, on one line")
        return key
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ConfigurationError(
            f"no API key: set the {KEY_ENV} environment variable or pass --api-key-file PATH "
            f"(or try `{PROG} demo`, which needs none)"
        )
    return key


def _make_client(
    args: argparse.Namespace, console: _Console, *, api_key: str | None = None, base_url: str | None = None
) -> AutopilotClient:
    from ._client import AutopilotClient

    key = api_key if api_key is not None else _read_api_key(args.api_key_file)
    console.add_secret(key)
    url = base_url or args.base_url
    options: dict[str, Any] = {}
    if url:
        options["base_url"] = url
    return AutopilotClient(
        key,
        requests_per_second=args.rate,
        timeout=(min(5.0, args.timeout), args.timeout),
        max_retries=args.max_retries,
        **options,
    )


# --------------------------------------------------------------------------- read-only commands


def _cmd_ping(args: argparse.Namespace, console: _Console) -> int:
    client = _make_client(args, console)
    account = client.account()
    if console.json_mode:
        console.emit_json({"ok": True, "account_fingerprint": client.account_fingerprint, "account": account})
    else:
        console.out(f"OK: the API key was accepted (account fingerprint {client.account_fingerprint}).")
    return ExitCode.OK


def _cmd_lists(args: argparse.Namespace, console: _Console) -> int:
    client = _make_client(args, console)
    _print_records(console, [_record(item) for item in client.lists()], ("list_id", "title"), "lists")
    return ExitCode.OK


def _cmd_segments(args: argparse.Namespace, console: _Console) -> int:
    client = _make_client(args, console)
    records = [_record(item) for item in client.smart_segments()]
    _print_records(console, records, ("segment_id", "title"), "smart segments")
    return ExitCode.OK


def _cmd_fields(args: argparse.Namespace, console: _Console) -> int:
    client = _make_client(args, console)
    records = [_record(item) for item in client.custom_fields()]
    _print_records(console, records, ("name", "field_type"), "custom fields")
    return ExitCode.OK


def _record(item: Any) -> dict[str, Any]:
    """A model as a plain dict (attrs models, or mappings for anything looser)."""
    if attrs.has(type(item)):
        return attrs.asdict(item, recurse=True)
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"cannot show a {type(item).__name__}")


def _print_records(
    console: _Console, records: Sequence[Mapping[str, Any]], columns: Sequence[str], what: str
) -> None:
    if console.json_mode:
        console.emit_json(list(records))
        return
    if not records:
        console.out(f"(no {what})")
        return
    console.out(_table(columns, [[_cell(r.get(c)) for c in columns] for r in records]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)


# --------------------------------------------------------------------------- export


def _cmd_export(args: argparse.Namespace, console: _Console) -> int:
    raise _UsageError("export is not implemented yet")


def _cmd_demo(args: argparse.Namespace, console: _Console) -> int:
    raise _UsageError("demo is not implemented yet")


# --------------------------------------------------------------------------- sandbox


def _cmd_sandbox(args: argparse.Namespace, console: _Console) -> int:
    from .sandbox import Sandbox

    api_key = _read_api_key(args.api_key_file) if args.api_key_file else None
    sandbox = Sandbox(
        rate_limit=args.rate,
        latency=args.latency,
        bulk_invalid=args.bulk_invalid,
        bulk_list=args.bulk_list,
        duplicate_list=args.duplicate_list,
        delete_status=args.delete_status,
        api_key=api_key,
        port=args.port,
    )
    # SIGTERM (e.g. from a process manager) should shut the server down as cleanly as Ctrl+C does.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        with sandbox as sb:
            # The one place the key is printed: the user needs it to talk to the sandbox.
            if console.json_mode:
                print(json.dumps({"url": sb.url, "api_key": sb.api_key}), file=console.stdout, flush=True)
            else:
                print(
                    f"Autopilot sandbox listening at {sb.url}\n"
                    f"API key: {sb.api_key}\n\n"
                    f"Try it:\n"
                    f"  export {KEY_ENV}={sb.api_key}\n"
                    f"  {PROG} ping --base-url {sb.url}\n\n"
                    f"Press Ctrl+C to stop.",
                    file=console.stdout,
                    flush=True,
                )
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    finally:
        signal.signal(signal.SIGTERM, previous)
    print("sandbox stopped", file=console.stderr, flush=True)
    return ExitCode.OK


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# Names used by the export/demo implementations below (kept for the type checker until they land).
_unused = (Iterable, Iterator, tempfile)
