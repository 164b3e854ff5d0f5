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
import itertools
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

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
from .sources import SourceError

if TYPE_CHECKING:
    from ._client import AutopilotClient
    from ._mapping import FieldMapping
    from ._progress import Progress
    from ._report import ExportReport

__all__ = ["ExitCode", "build_parser", "main"]

PROG = "autopilot-segments"
KEY_ENV = "AUTOPILOT_API_KEY"
DEMO_SEGMENT = "VIP customers"
_REDACTED = "<redacted>"
# The demo talks to an in-process sandbox; pacing it at Autopilot's 5 r/s would only make it slow.
_DEMO_RATE = 1000.0
_DEFAULT_RATE = 5.0
# Stands in for a key in a dry run without one: plan() sends nothing, so the key is never used.
_PLACEHOLDER_KEY = "0" * 32
_CUSTOM_TYPES = ("string", "integer", "float", "date", "boolean")
# How many of a source's column names an error message lists before "...".
_SHOWN_COLUMNS = 30


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


@contextlib.contextmanager
def _debug_logging(console: _Console, enabled: bool) -> Iterator[None]:
    """DEBUG logging to stderr for the duration of the command (undone after, for in-process callers)."""
    if not enabled:
        yield
        return
    handler = logging.StreamHandler(console.stderr)
    handler.setFormatter(_RedactingFormatter(console))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)


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
        metavar="R",
        help="requests per second to stay under (default: 5, Autopilot's documented limit; "
        "unpaced with --sandbox)",
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
        "--max-removal-fraction",
        type=_fraction,
        metavar="F",
        help="guard rail: with --on-leave remove, stop (exit 3) rather than remove more than this fraction "
        "of the list's exported contacts in one run (default: 0.5)",
    )
    run.add_argument(
        "--max-profiles",
        type=_non_negative_int,
        default=100_000,
        metavar="N",
        help="refuse rows beyond the first N profiles (default: 100000; 0 means no cap)",
    )
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="requests in flight (default: enough to use the rate, 4 at 5 r/s)",
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
        "--port", type=_non_negative_int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    sub.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="accept the key in this file; if the file does not exist, write a new random key to it "
        "(default: a new random key, printed)",
    )
    sub.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="answer 429 above R requests/s, as Autopilot does at 5 (default: no limit)",
    )
    sub.add_argument(
        "--retry-after",
        type=_positive_float,
        metavar="SECONDS",
        help="send a Retry-After header with every 429 (Autopilot documents none)",
    )
    sub.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="hold every request this long (default: 0)",
    )
    sub.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        metavar="P",
        help="probability (0-1) that a request meets a random fault: 500, 502, 503, 429 or a dropped "
        "connection (default: 0)",
    )
    sub.add_argument("--fault-seed", type=int, default=0, metavar="N", help="seed of the random faults")
    behaviour = sub.add_argument_group(
        "ambiguous Autopilot behaviours (the API record is unclear; pick which one the sandbox plays)"
    )
    behaviour.add_argument(
        "--bulk-invalid",
        choices=("reject", "drop"),
        default="reject",
        help="a bulk upsert holding an invalid contact: 400 for the whole request, or drop it silently",
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
        help="creating a list whose name is taken: 409, or a second list",
    )
    behaviour.add_argument(
        "--delete-status", type=int, choices=(200, 204), default=200, help="status of a successful DELETE"
    )
    behaviour.add_argument(
        "--hook-style",
        choices=("new", "old"),
        default="new",
        help='registering a REST hook answers {"hook_id"} (new) or 201 {"id"} (old docs)',
    )
    behaviour.add_argument(
        "--error-style",
        choices=("json", "code", "empty", "html"),
        default="json",
        help="the body of error answers",
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


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
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
    handler: Callable[[argparse.Namespace, _Console], int] = args.handler
    with _debug_logging(console, args.debug):
        try:
            return int(handler(args, console))
        except _UsageError as exc:
            command_parser: argparse.ArgumentParser = args.command_parser
            command_parser.error(console.redact(str(exc)))
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


# --------------------------------------------------------------------------- key and client


def _read_api_key(api_key_file: str | None) -> str:
    """The key from `--api-key-file` or the environment; never echoes the file's content."""
    if api_key_file is not None:
        path = Path(api_key_file)
        try:
            # utf-8-sig: Windows editors save "UTF-8" with a byte-order mark, which is no part of the key.
            key = path.read_text(encoding="utf-8-sig").strip()
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
    args: argparse.Namespace,
    console: _Console,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    rate: float | None = None,
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
        requests_per_second=rate or getattr(args, "rate", None) or _DEFAULT_RATE,
        timeout=(min(5.0, args.timeout), args.timeout) if hasattr(args, "timeout") else (5.0, 30.0),
        max_retries=getattr(args, "max_retries", 5),
        **options,
    )


# --------------------------------------------------------------------------- read-only commands


def _cmd_ping(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        account = client.account()
        fingerprint = client.account_fingerprint
        base_url = client.base_url
    if console.json_mode:
        console.emit_json(
            {"ok": True, "base_url": base_url, "account_fingerprint": fingerprint, "account": account}
        )
    else:
        # A prefix of the fingerprint is enough to tell accounts apart at a glance.
        console.out(f"OK: {base_url} accepted the API key (account fingerprint {fingerprint[:12]}).")
    return ExitCode.OK


def _cmd_lists(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        records = [_record(item) for item in client.lists()]
    _print_records(console, records, ("list_id", "title"), "lists")
    return ExitCode.OK


def _cmd_segments(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        records = [_record(item) for item in client.smart_segments()]
    _print_records(console, records, ("segment_id", "title"), "smart segments")
    return ExitCode.OK


def _cmd_fields(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
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


# --------------------------------------------------------------------------- export and demo


def _cmd_export(args: argparse.Namespace, console: _Console) -> int:
    _check_export_flags(args)
    mapping = _mapping_from_args(args)
    # A dry run writes nothing, so it can meet a malformed record as it reads; a real export must not.
    total = None if args.dry_run else _read_through(args.source, args.entity)
    with contextlib.ExitStack() as stack:
        if args.sandbox:
            from .sandbox import Sandbox

            sb = stack.enter_context(Sandbox())
            client = _make_client(
                args, console, api_key=sb.api_key, base_url=sb.url, rate=args.rate or _DEMO_RATE
            )
            print(
                f"--sandbox: exporting into a local in-process sandbox at {sb.url}; nothing is sent to "
                f"Autopilot, and the sandbox is gone when this command ends.",
                file=console.stderr,
                flush=True,
            )
        elif args.dry_run and not args.state:
            # plan() makes no API call, so a dry run works without a key (but uses one when given). Not
            # with --state: the state is kept per account, and the account is known by its key.
            has_key = args.api_key_file is not None or os.environ.get(KEY_ENV, "").strip()
            client = _make_client(args, console, api_key=None if has_key else _PLACEHOLDER_KEY)
        else:
            client = _make_client(args, console)
        stack.callback(client.close)
        rows: Iterable[Mapping[str, Any]] = _with_mapped_columns(
            stack.enter_context(_open_rows(args.source, args.entity)), mapping, args.source
        )
        if mapping.keep == "last":
            # keep="last" reads the rows twice (a --mapping file may ask for it): a stream cannot be.
            rows = _Reopened(args.source, args.entity)
        report = _run_export(
            console,
            client,
            mapping,
            rows,
            segment=args.segment,
            display=_progress_mode(console, enabled=not args.no_progress),
            total=total,
            dry_run=args.dry_run,
            exporter_options=_exporter_options(args),
            export_options=_export_options(args),
            report_path=args.report,
            rejections_path=args.rejections,
        )
    _show_report(console, report)
    _write_outputs(console, report, report_path=args.report, rejections_path=args.rejections)
    return _export_exit_code(report)


def _exporter_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"max_profiles": args.max_profiles or None, "concurrency": args.concurrency}
    # Passed only when asked for, so a plain export works with any Exporter that has the core options.
    if args.state:
        options["state"] = args.state
    if args.on_leave != "keep":
        options["on_leave"] = args.on_leave
    if args.max_removal_fraction is not None:
        options["max_removal_fraction"] = args.max_removal_fraction
    return options


def _export_options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: True for name in ("full", "force") if getattr(args, name)}


def _cmd_demo(args: argparse.Namespace, console: _Console) -> int:
    from .sandbox import Sandbox
    from .sources import sample_mapping_path, sample_segment_path

    mapping = _load_mapping(sample_mapping_path())
    sample = sample_segment_path()
    if args.rejections:
        _check_output_path(args.rejections, "--rejections", rejection_file=True)
        rejections_path = args.rejections
    else:
        rejections_path = str(Path(tempfile.mkdtemp(prefix="autopilot-segments-demo-")) / "rejected.csv")
    with contextlib.ExitStack() as stack:
        sb = stack.enter_context(Sandbox(rate_limit=args.rate))
        client = _make_client(
            args, console, api_key=sb.api_key, base_url=sb.url, rate=args.rate or _DEMO_RATE
        )
        stack.callback(client.close)
        rows = stack.enter_context(_open_rows(str(sample), None))
        pacing = f", paced at {args.rate:g} requests/s" if args.rate else ""
        console.note(
            f"Started a local Autopilot sandbox at {sb.url} (no key or network needed{pacing}).\n"
            f"Exporting the bundled sample segment ({sample.name}) into the list {DEMO_SEGMENT!r}...\n"
        )
        report = _run_export(
            console,
            client,
            mapping,
            rows,
            segment=DEMO_SEGMENT,
            display=_progress_mode(console, enabled=not args.no_progress),
            total=_count_rows(sample),
        )
    _show_report(console, report)
    _write_outputs(console, report, report_path=None, rejections_path=rejections_path)
    return _export_exit_code(report)


def _check_export_flags(args: argparse.Namespace) -> None:
    if args.sandbox and args.base_url:
        raise _UsageError("--sandbox and --base-url exclude each other: --sandbox starts its own server")
    if args.sandbox and args.api_key_file:
        raise _UsageError("--sandbox needs no key: drop --api-key-file (the sandbox makes its own key)")
    if args.max_removal_fraction is not None and args.on_leave != "remove":
        raise _UsageError("--max-removal-fraction only applies with --on-leave remove")
    if args.on_leave == "remove" and not args.state:
        raise _UsageError(
            "--on-leave remove needs --state FILE: the state remembers who was exported, "
            "so leavers can be found"
        )
    if args.report:
        _check_output_path(args.report, "--report")
    if args.rejections:
        _check_output_path(args.rejections, "--rejections", rejection_file=True)


def _check_output_path(path: str, flag: str, *, rejection_file: bool = False) -> None:
    """Fail before exporting, not after, when an output file cannot be written."""
    target = Path(path)
    if rejection_file and target.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
        raise _UsageError(f"{flag} {path}: name the file *.csv or *.jsonl so its format is clear")
    if not target.parent.is_dir():
        raise _UsageError(f"{flag} {path}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise _UsageError(f"{flag} {path} is a folder; give a file name")


def _mapping_from_args(args: argparse.Namespace) -> FieldMapping:
    from ._fields import CustomField
    from ._mapping import FieldMapping

    from_flags = args.email_column is not None or args.field or args.custom
    if args.mapping and from_flags:
        raise _UsageError(
            "--mapping cannot be combined with --email-column, --field or --custom: "
            "put the whole mapping in the file, or build it from flags"
        )
    if args.mapping:
        return _load_mapping(Path(args.mapping))
    if args.email_column is None:
        raise _UsageError(
            "say how to map the rows: --email-column COL (with --field/--custom), or --mapping FILE"
        )
    fields: dict[str, str] = {}
    for spec in args.field:
        name, sep, column = (part.strip() for part in spec.partition("="))
        if not (sep and name and column):
            raise _UsageError(f"--field {spec!r}: expected FIELD=COLUMN, e.g. --field FirstName=first_name")
        if name in fields:
            raise _UsageError(f"--field {name} is given twice")
        fields[name] = column
    custom: list[CustomField] = []
    for spec in args.custom:
        name, field_type, column = _parse_custom(spec)
        custom.append(CustomField(name, field_type, source=column))  # type: ignore[arg-type]
    return FieldMapping(email=args.email_column, fields=fields, custom=custom)


def _parse_custom(spec: str) -> tuple[str, str, str | None]:
    """`"Loyalty Points:integer=points"` -> ("Loyalty Points", "integer", "points"); without `=COL` the
    column is named like the field."""
    head, sep, column = spec.partition("=")
    name, colon, field_type = head.rpartition(":")
    name, field_type, column = name.strip(), field_type.strip().lower(), column.strip()
    if not (colon and name) or (sep and not column):
        raise _UsageError(
            f"--custom {spec!r}: expected NAME:TYPE=COLUMN, e.g. --custom 'Loyalty Points:integer=points'"
        )
    if field_type not in _CUSTOM_TYPES:
        raise _UsageError(f"--custom {spec!r}: TYPE must be one of {', '.join(_CUSTOM_TYPES)}")
    return name, field_type, column or None


def _load_mapping(path: Path) -> FieldMapping:
    from ._mapping import FieldMapping

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"the mapping file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"the mapping file {path} must hold a JSON object")
    return FieldMapping.from_dict(data)


def _count_rows(csv_path: Path) -> int | None:
    """Rows in a CSV file, for the progress bar's total (None when it cannot be read quickly)."""
    import csv

    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
    except (OSError, ValueError):
        return None


def _read_through(source: str, entity: str | None) -> int:
    """Read the whole source once before anything is sent, and return its row count.

    The readers stream, so a malformed record (an unquoted separator, a line of bad JSON, a byte the
    encoding rejects) would otherwise surface mid-export, after the rows before it were written and
    with no report of them. Reading is hundreds of times faster than Autopilot accepts contacts, so
    the extra pass costs little, and its count gives the progress bar a total.
    """
    with _open_rows(source, entity) as rows:  # an unknown file or entity is raised as it is
        try:
            return sum(1 for _ in rows)
        except SourceError as exc:
            raise SourceError(f"{exc}; nothing was sent (fix the file and run the export again)") from exc


def _with_mapped_columns(
    rows: Iterator[Mapping[str, Any]], mapping: FieldMapping, source: str
) -> Iterator[Mapping[str, Any]]:
    """The rows, after checking that the first one has every column the mapping reads.

    A misspelt column is otherwise silent: a wrong --email-column rejects every row as missing_email,
    a wrong --field never sends that field. Files with a fixed set of columns (CSV, Parquet, CDM) give
    every row every column, so the first row is proof; JSON Lines objects may leave keys out, so they
    are not checked.
    """
    suffixes = [s.lower() for s in Path(source.rpartition("::")[0] or source).suffixes if s.lower() != ".gz"]
    first = next(rows, None)
    if first is None:
        return rows
    if not (suffixes and suffixes[-1] in (".jsonl", ".ndjson")):
        wanted = [mapping.email, *mapping.fields.values(), *(c.column for c in mapping.custom)]
        if mapping.unsubscribed is not None:
            wanted.append(mapping.unsubscribed)
        absent = list(dict.fromkeys(column for column in wanted if column not in first))
        if absent:
            columns = list(first)
            shown = ", ".join(columns[:_SHOWN_COLUMNS]) + (", ..." if len(columns) > _SHOWN_COLUMNS else "")
            raise ConfigurationError(
                f"{source} has no column(s) {', '.join(map(repr, absent))} named by the mapping; "
                f"the columns are {shown}"
            )
    return itertools.chain([first], rows)


@attrs.frozen
class _Reopened:
    """A source read from the start, file opened anew, each time it is iterated."""

    source: str
    entity: str | None

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        with _open_rows(self.source, self.entity) as rows:
            yield from rows


@contextlib.contextmanager
def _open_rows(source: str, entity: str | None) -> Iterator[Iterator[Mapping[str, Any]]]:
    """The source's rows, streamed, and closed (with the file) however the export ends."""
    from .sources import open_source

    rows = open_source(source, entity=entity)
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()


def _run_export(
    console: _Console,
    client: AutopilotClient,
    mapping: FieldMapping,
    rows: Iterable[Mapping[str, Any]],
    *,
    segment: str,
    display: str,
    total: int | None = None,
    dry_run: bool = False,
    exporter_options: Mapping[str, Any] | None = None,
    export_options: Mapping[str, Any] | None = None,
    report_path: str | None = None,
    rejections_path: str | None = None,
) -> ExportReport:
    from ._exporter import Exporter

    with _ProgressDisplay(display, console.stderr, segment=segment, total=total) as progress:
        exporter = Exporter(client, mapping, on_progress=progress.update, **dict(exporter_options or {}))
        try:
            if dry_run:
                return exporter.plan(rows, segment=segment)
            return exporter.export(rows, segment=segment, **dict(export_options or {}))
        except ExportError as exc:
            # The export stopped early; keep what it did so far where the user asked for it.
            progress.close()
            _write_outputs(console, exc.report, report_path=report_path, rejections_path=rejections_path)
            raise
        except APIError as exc:
            # A 401/403 aborts the export at once; the partial report says which rows Autopilot had
            # already accepted, so it is written too (exit code 4 follows).
            if exc.export_report is not None:
                progress.close()
                _write_outputs(
                    console, exc.export_report, report_path=report_path, rejections_path=rejections_path
                )
            raise


def _show_report(console: _Console, report: ExportReport) -> None:
    if console.json_mode:
        console.emit_json(report.to_dict())
    else:
        console.out(report.summary())


def _write_outputs(
    console: _Console, report: ExportReport, *, report_path: str | None, rejections_path: str | None
) -> None:
    if report_path:
        Path(report_path).write_text(
            json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        console.note(f"Report written to {report_path}")
    if rejections_path:
        report.write_rejections(rejections_path)
        console.note(f"{len(report.rejected):,} rejected rows written to {rejections_path}")


def _export_exit_code(report: ExportReport) -> ExitCode:
    if not report.ok:
        # Stopped early, or rows failed for a transient reason (server errors, timeouts): re-run it.
        return ExitCode.FAILURE
    return ExitCode.REJECTED_ROWS if report.rejected else ExitCode.OK


# --------------------------------------------------------------------------- progress display


def _progress_mode(console: _Console, *, enabled: bool) -> str:
    """ "tqdm" or "line" on a terminal; "off" otherwise (a log file or a pipe wants no progress noise)."""
    if not enabled:
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
            self._bar.set_postfix(exported=progress.exported, rejected=progress.rejected, refresh=False)
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


# --------------------------------------------------------------------------- sandbox


def _cmd_sandbox(args: argparse.Namespace, console: _Console) -> int:
    from .sandbox import Sandbox
    from .sandbox._serving import sandbox_from_arguments, serve_until_signalled

    sandbox = sandbox_from_arguments(args, api_key=_sandbox_key(args.api_key_file))

    def announce(sb: Sandbox) -> None:
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

    # Ctrl+C and SIGTERM (e.g. from a process manager) both shut the server down cleanly.
    serve_until_signalled(sandbox, announce)
    print("sandbox stopped", file=console.stderr, flush=True)
    return ExitCode.OK


def _sandbox_key(api_key_file: str | None) -> str | None:
    """The sandbox's key: from the file, or a new random one written to it (None: the sandbox picks)."""
    if api_key_file is None:
        return None
    path = Path(api_key_file)
    if path.exists():
        return _read_api_key(api_key_file)
    from .sandbox._serving import create_key_file

    try:
        return create_key_file(path)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the API key file {path}: {exc.strerror or exc}") from None
