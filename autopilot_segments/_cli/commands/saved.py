"""`run` and `check`: the saved exports of an export file (see docs/saved-exports.md)."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING, Any

import attrs

from ..._errors import AutopilotError
from ..console import _Console, redact_key_like
from ..exit_codes import ERROR_CODES, ExitCode, _describe_failure
from ..progress import _progress_mode, _ProgressDisplay
from .export import _export_exit_code, _one_line_summary

if TYPE_CHECKING:
    from ..._progress import Progress
    from ..._saved import ExportFile, SavedRun


def _add_run_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_run)
    _add_file_arguments(sub)
    sub.add_argument(
        "--dry-run",
        action="store_true",
        help="plan every segment: map and validate every row, estimate the API calls; makes no API call",
    )
    sub.add_argument("--full", action="store_true", help="with a state file, send every row again")
    sub.add_argument(
        "--force", action="store_true", help="override the guard rails (empty input, mass removal)"
    )
    sub.add_argument("--json", action="store_true", help="print the runs' reports as JSON on stdout")
    sub.add_argument(
        "--no-progress", action="store_true", help="no progress display (it is shown on a terminal only)"
    )


def _add_check_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_check)
    _add_file_arguments(sub)
    sub.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")


def _add_file_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("exports_file", metavar="EXPORTS.toml", help="the export file (TOML)")
    sub.add_argument("names", metavar="NAME", nargs="*", help="the exports to use (default: all of them)")
    sub.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL for every connection (default: $AUTOPILOT_BASE_URL, else the file's, "
        "else https://api2.autopilothq.com/v1)",
    )


def _load(args: argparse.Namespace, console: _Console) -> ExportFile:
    from ..._saved import load_exports

    exports = load_exports(args.exports_file)
    exports.select(args.names or None)  # an unknown name is a usage error before anything runs
    for export in exports.select(args.names or None):
        if export.connection.has_key:  # whatever is printed, the keys are redacted from it
            with contextlib.suppress(AutopilotError):  # reported by the run, for that export
                console.add_secret(export.connection.api_key())
    return exports


def _described(console: _Console, error: BaseException) -> tuple[ExitCode, str]:
    """The exit code and message of an error, as every command prints them (keys hidden)."""
    code, message = _describe_failure(error)
    return code, redact_key_like(console.redact(message))


def _error_json(console: _Console, error: BaseException) -> dict[str, Any]:
    """The same object as a command's `--json` error: code, message, exit code (and a partial report)."""
    code, message = _described(console, error)
    data: dict[str, Any] = {
        "code": ERROR_CODES.get(code, "failure"),
        "message": message,
        "exit_code": int(code),
    }
    report = getattr(error, "report", None) or getattr(error, "export_report", None)
    if report is not None:
        data["report"] = report.to_dict()
    return data


@attrs.define
class _SegmentProgress:
    """One progress display per segment, opened when its first snapshot arrives."""

    mode: str
    console: _Console
    _current: _ProgressDisplay | None = None

    def __enter__(self) -> _SegmentProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._current is not None:
            self._current.close()

    def update(self, progress: Progress) -> None:
        if self._current is None or self._current.segment != progress.segment:
            if self._current is not None:
                self._current.close()
            self._current = _ProgressDisplay(self.mode, self.console.stderr, segment=progress.segment)
            self._current.__enter__()
        self._current.update(progress)


def _run_code(run: SavedRun) -> ExitCode:
    codes = [ExitCode.OK]
    if run.error is not None:
        codes.append(_describe_failure(run.error)[0])
    codes.extend(_describe_failure(error)[0] for error in run.errors.values())
    codes.extend(_export_exit_code(report) for report in run.reports.values())
    return max(codes)


def _cmd_run(args: argparse.Namespace, console: _Console) -> int:
    exports = _load(args, console)
    with _SegmentProgress(_progress_mode(console, enabled=not args.no_progress), console) as progress:
        runs = exports.run(
            args.names or None,
            dry_run=args.dry_run,
            full=args.full,
            force=args.force,
            base_url=args.base_url,
            on_progress=progress.update if progress.mode != "off" else None,
        )
    codes = {name: _run_code(run) for name, run in runs.items()}
    worst = max(codes.values(), default=ExitCode.OK)
    if console.json_mode:
        console.emit_json(
            {
                "ok": worst == ExitCode.OK,
                "exit_code": int(worst),
                "dry_run": args.dry_run,
                "exports": {name: _run_json(console, run, codes[name]) for name, run in runs.items()},
            }
        )
        return worst
    for name, run in runs.items():
        _show_run(console, run, codes[name])
    return worst


def _run_json(console: _Console, run: SavedRun, code: ExitCode) -> dict[str, Any]:
    segments: dict[str, Any] = {title: {"report": r.to_dict()} for title, r in run.reports.items()}
    segments.update({title: {"error": _error_json(console, e)} for title, e in run.errors.items()})
    return {
        "exit_code": int(code),
        "error": None if run.error is None else _error_json(console, run.error),
        "segments": segments,
        "notes": list(run.notes),
    }


def _show_run(console: _Console, run: SavedRun, code: ExitCode) -> None:
    if run.error is not None:
        console.error(f"export {run.export!r} did not run: {_described(console, run.error)[1]}")
        return
    done = "planned" if run.dry_run else "exported"
    count = len(run.reports) + len(run.errors)
    console.note(
        f"== export {run.export!r}: {count} segment{'s' if count != 1 else ''} {done}, exit {int(code)}"
    )
    for report in run.reports.values():
        if console.quiet:
            console.out(_one_line_summary(report))
        else:
            console.out(report.summary())
            console.out()
    for title, error in run.errors.items():
        console.error(f"export {run.export!r}, segment {title!r}: {_described(console, error)[1]}")
    for note in run.notes:
        console.note(f"note: {note}")


def _cmd_check(args: argparse.Namespace, console: _Console) -> int:
    exports = _load(args, console)
    results = exports.check(args.names or None, base_url=args.base_url)
    ok = all(result.ok for result in results.values())
    code = ExitCode.OK if ok else ExitCode.USAGE
    if console.json_mode:
        console.emit_json(
            {
                "ok": ok,
                "exit_code": int(code),
                "exports": {name: result.to_dict() for name, result in results.items()},
            }
        )
        return code
    for name, result in results.items():
        segments = len(exports[name].segments)
        verdict = "OK" if result.ok else f"{len(result.problems)} problem(s)"
        console.out(f"export {name!r}: {verdict} ({segments} segment source(s) read, custom fields compared)")
        for problem in result.problems:
            console.out(f"  problem: {problem}")
        for note in result.notes:
            console.out(f"  note: {note}")
    return code
