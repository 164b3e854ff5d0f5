"""`export`: a segment file into an Autopilot list or an Ortto tag, with report and rejection files."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..._errors import (
    APIError,
    ExportError,
    ExportInterrupted,
)

if TYPE_CHECKING:
    from ..._mapping.mapping import FieldMapping
    from ..._report import ExportReport

from ..._destinations.ortto.client import OrttoClient
from ..._destinations.ortto.destination import OrttoDestination
from ..._plural import counted
from ..connect import _DEMO_RATE, _ORTTO_PLACEHOLDER_KEY, _PLACEHOLDER_KEY, _make_client, key_env_for
from ..console import _Console
from ..exit_codes import ExitCode, _UsageError
from ..options import _fraction, _non_negative_int, _positive_int
from ..progress import _progress_mode, _ProgressDisplay
from .export_inputs import (
    _CUSTOM_TYPES,
    _mapping_from_args,
    _open_rows,
    _read_through,
    _reader_options,
    _Reopened,
    _source_path,
)
from .export_sql import _add_sql_arguments, _sql_source, _SqlSource


def _add_export_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_export)
    sub.add_argument(
        "source",
        metavar="SOURCE",
        nargs="?",
        help="a .csv, .tsv, .jsonl, .parquet or .xlsx file (gzip read by content), a CDM folder "
        "(with --entity), or - for standard input (with --format); or no SOURCE but --sql with --db",
    )
    sub.add_argument(
        "--segment",
        required=True,
        metavar="NAME",
        help="the Autopilot list to export into (Ortto: the tag's name, unless --tag)",
    )
    sub.add_argument("--entity", metavar="NAME", help="the entity to read when SOURCE is a CDM folder")
    _add_reader_arguments(sub.add_argument_group("reading SOURCE"))
    _add_sql_arguments(sub.add_argument_group("a database query instead of SOURCE"))

    mapping = sub.add_argument_group("mapping (either --mapping, or --email-column with --field/--custom)")
    mapping.add_argument(
        "--mapping",
        metavar="FILE",
        help="a field mapping file: TOML if named *.toml, else JSON (see docs/cli.md)",
    )
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
        f"{', '.join(_CUSTOM_TYPES)}; a date may list its formats, "
        "'Joined:date(day-first|%%d.%%m.%%Y)=joined' (repeatable)",
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

    ortto = sub.add_argument_group("Ortto (with --destination ortto; docs/ortto.md)")
    ortto.add_argument(
        "--tag",
        metavar="TAG",
        help="the tag the segment's people get (default: the segment's name; {segment} is replaced by it)",
    )
    ortto.add_argument(
        "--create-fields",
        action="store_true",
        help="create the mapping's custom fields the Ortto account lacks (default: stop, naming them)",
    )
    ortto.add_argument(
        "--preserve-tags",
        action="store_true",
        help="read each batch's tags first and send them back (for an account where tags on a merge "
        "replace a person's tags; one more call per batch)",
    )
    ortto.add_argument(
        "--send-email-permission",
        action="store_true",
        help="send the mapping's unsubscribed column as Ortto's email permission (bol::p), overwriting "
        "each person's own choice (default: never sent)",
    )

    output = sub.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print the report as JSON instead of a summary")
    output.add_argument("--report", metavar="FILE", help="also write the report as JSON to FILE")
    output.add_argument("--rejections", metavar="FILE", help="write the rejected rows as CSV to FILE")
    output.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the default when stderr is not a TTY)"
    )


def _add_reader_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--format",
        choices=("csv", "tsv", "jsonl", "parquet", "excel"),
        help="what SOURCE holds, when its name does not say (required for -, standard input)",
    )
    group.add_argument(
        "--encoding",
        metavar="NAME",
        help="the text encoding of a CSV/JSON Lines SOURCE, e.g. cp1252 "
        "(default: UTF-8, with or without a byte-order mark)",
    )
    group.add_argument(
        "--delimiter",
        metavar="CHAR",
        help="the CSV separator: one character, or tab, comma, semicolon, pipe (default: sniffed)",
    )
    group.add_argument(
        "--sheet", metavar="NAME", help="the worksheet of an .xlsx SOURCE (default: the first)"
    )


def _cmd_export(args: argparse.Namespace, console: _Console) -> int:
    _check_export_flags(args)
    mapping = _mapping_from_args(args)
    reader = _reader_options(args)
    sql = _sql_source(args, console)  # checks SOURCE against --sql first
    source: str | _SqlSource = sql if sql is not None else _source_path(args)
    # A dry run writes nothing, so it can meet a malformed record as it reads; a real export must not.
    total = None if args.dry_run else _read_through(source, args.entity, **reader)
    ortto = args.destination == "ortto"
    with contextlib.ExitStack() as stack:
        if args.sandbox:
            from ...sandbox import OrttoSandbox, Sandbox

            sb: Sandbox | OrttoSandbox = (
                stack.enter_context(OrttoSandbox()) if ortto else stack.enter_context(Sandbox())
            )
            client = _make_client(
                args, console, api_key=sb.api_key, base_url=sb.url, rate=args.rate or _DEMO_RATE
            )
            if not console.quiet:
                platform = "Ortto" if ortto else "Autopilot"
                created = " (its custom fields are created as the mapping needs them)" if ortto else ""
                print(
                    f"--sandbox: exporting into a local in-process sandbox at {sb.url}{created}; nothing is "
                    f"sent to {platform}, and the sandbox is gone when this command ends.",
                    file=console.stderr,
                    flush=True,
                )
        elif args.dry_run and not args.state:
            # plan() makes no API call, so a dry run works without a key (but uses one when given). Not
            # with --state: the state is kept per account, and the account is known by its key.
            env = key_env_for(args.destination)
            has_key = args.api_key_file is not None or os.environ.get(env, "").strip()
            placeholder = _ORTTO_PLACEHOLDER_KEY if ortto else _PLACEHOLDER_KEY
            client = _make_client(args, console, api_key=None if has_key else placeholder)
        else:
            client = _make_client(args, console)
        stack.callback(client.close)
        destination: object = client
        if isinstance(client, OrttoClient):
            destination = OrttoDestination(
                client,
                tag=args.tag,
                create_fields=args.create_fields or args.sandbox,
                send_email_permission=args.send_email_permission,
                preserve_tags=args.preserve_tags,
            )
        # The exporter checks the first row against the mapping before any API call (exit 2).
        rows: Iterable[Mapping[str, Any]] = stack.enter_context(_open_rows(source, args.entity, **reader))
        if mapping.keep == "last":
            # keep="last" reads the rows twice (a --mapping file may ask for it): a stream cannot be.
            rows = _Reopened(source, args.entity, reader)
        report = _run_export(
            console,
            destination,
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


def _check_export_flags(args: argparse.Namespace) -> None:
    if args.destination != "ortto":
        for flag, given in (
            ("--tag", args.tag is not None),
            ("--create-fields", args.create_fields),
            ("--send-email-permission", args.send_email_permission),
            ("--preserve-tags", args.preserve_tags),
            ("--region", args.region is not None),
        ):
            if given:
                raise _UsageError(f"{flag} is for Ortto: add --destination ortto")
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


def _run_export(
    console: _Console,
    client: object,
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
    from ..._export import Exporter

    with _ProgressDisplay(display, console.stderr, segment=segment, total=total) as progress:
        exporter = Exporter(
            cast(Any, client), mapping, on_progress=progress.update, **dict(exporter_options or {})
        )
        try:
            if dry_run:
                return exporter.plan(rows, segment=segment)
            return exporter.export(rows, segment=segment, **dict(export_options or {}))
        except ExportInterrupted as exc:
            # Ctrl-C or SIGTERM: the batches in flight have settled; keep the record of what was done.
            progress.close()
            _write_outputs(
                console, exc.export_report, report_path=report_path, rejections_path=rejections_path
            )
            raise
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
    elif console.quiet:
        console.out(_one_line_summary(report))
    else:
        console.out(report.summary())


def _one_line_summary(report: ExportReport) -> str:
    """The `--quiet` result: the segment and its counts, and INCOMPLETE when it stopped early."""
    verb = "would export" if report.dry_run else "exported"
    line = (
        f"{report.segment}: {counted(report.total_rows, 'row')}, {report.exported:,} {verb}, "
        f"{report.unchanged:,} unchanged, {len(report.rejected):,} rejected"
    )
    if report.removed:
        line += f", {report.removed:,} removed"
    return line + ("" if report.complete else " (INCOMPLETE)")


def _write_outputs(
    console: _Console, report: ExportReport, *, report_path: str | None, rejections_path: str | None
) -> None:
    if report_path:
        report.write_json(report_path)  # streamed: millions of rejections are never all in memory
        console.note(f"Report written to {report_path}")
    if rejections_path:
        report.write_rejections(rejections_path)
        console.note(f"{counted(len(report.rejected), 'rejected row')} written to {rejections_path}")


def _export_exit_code(report: ExportReport) -> ExitCode:
    if not report.ok:
        # Stopped early, or rows failed for a transient reason (server errors, timeouts): re-run it.
        return ExitCode.FAILURE
    return ExitCode.REJECTED_ROWS if report.rejected else ExitCode.OK
