"""`SavedRun`: what one run of a saved export did, segment by segment; `CheckResult` for `check`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._errors import APIError, ExportError
from .._report import ExportReport

__all__ = ["CheckResult", "SavedRun", "describe_error"]


def _frozen_dict(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def describe_error(error: BaseException) -> dict[str, Any]:
    """An error as plain data: its type and message, and the partial report when it carries one."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    report = error.report if isinstance(error, ExportError) else getattr(error, "export_report", None)
    if isinstance(error, (ExportError, APIError)) and report is not None:
        data["report"] = report.to_dict()
    return data


@attrs.frozen(kw_only=True)
class SavedRun:
    """One run of a saved export.

    `reports` holds each segment's `ExportReport` (a plan with `dry_run=True`), keyed by the list's
    title, in order; `errors` each segment that raised instead (a guard rail, a source that cannot be
    read, a 401...). `error` is set when the export could not start at all (another run holds its lock,
    no API key): then no segment ran. `notes` say what else an operator should know (rows a filter
    column left without a segment).
    """

    export: str
    dry_run: bool = False
    reports: Mapping[str, ExportReport] = attrs.field(factory=dict, converter=_frozen_dict)
    errors: Mapping[str, BaseException] = attrs.field(factory=dict, converter=_frozen_dict)
    error: BaseException | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No error, and every report complete with no row failed for a transient reason."""
        return self.error is None and not self.errors and all(r.ok for r in self.reports.values())

    def raise_for_errors(self) -> None:
        """Raise the run's error, else the first segment's error, if any (e.g. to fail an Airflow task).

        Rejected rows are not errors (as in `Exporter.export`): look at the reports for those.
        """
        if self.error is not None:
            raise self.error
        for error in self.errors.values():
            raise error

    def summary(self) -> str:
        """A few lines for a person: each segment's outcome."""
        verb = "planned" if self.dry_run else "ran"
        if self.error is not None:
            return f"export {self.export!r}: did not run: {self.error}"
        lines = [f"export {self.export!r}: {verb} {len(self.reports) + len(self.errors)} segment(s)"]
        for title, report in self.reports.items():
            body = report.summary().replace("\n", "\n    ")
            lines.append(f"  segment {title!r}:\n    {body}")
        for title, error in self.errors.items():
            lines.append(f"  segment {title!r}: FAILED: {type(error).__name__}: {error}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for `--json`): the reports' `to_dict()`, the errors' type and message."""
        return {
            "export": self.export,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "error": None if self.error is None else describe_error(self.error),
            "segments": {
                **{title: {"report": report.to_dict()} for title, report in self.reports.items()},
                **{title: {"error": describe_error(error)} for title, error in self.errors.items()},
            },
            "notes": list(self.notes),
        }


@attrs.frozen(kw_only=True)
class CheckResult:
    """What `check` found for one saved export, without writing anything.

    `problems` would make a run fail or reject rows (a missing column, a custom field whose type differs
    from the account's); `notes` are worth knowing (a custom field the first export will create).
    """

    export: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "export": self.export,
            "ok": self.ok,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }
