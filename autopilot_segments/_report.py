"""`ExportReport`: what one export (or dry run) did, row by row and call by call."""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import ConfigurationError
from ._plural import counted
from ._rejection_log import RejectionLog
from ._rejections import Rejection
from ._spreadsheet import spreadsheet_cell

if TYPE_CHECKING:
    import pandas

__all__ = ["ExportReport"]

_REJECTION_COLUMNS = ("row", "email", "reason", "message", "field")
_HTML_REJECTION_PREVIEW = 10
_PLACEHOLDER = 0  # where `_fields_dict()` leaves room for the rejections


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
        raise ValueError("report timestamps must be timezone-aware UTC datetimes")
    return value


def _as_log(rejections: Iterable[Rejection]) -> RejectionLog:
    log = rejections if isinstance(rejections, RejectionLog) else RejectionLog(rejections)
    return log.freeze()


@attrs.frozen(kw_only=True)
class ExportReport:
    """The outcome of one export of one segment, or of a dry run (`dry_run=True`).

    Every input row has exactly one outcome: it was `exported`, left `unchanged` (incremental runs),
    or is in `rejected` with a reason code. For a dry run, `exported` counts the rows that *would*
    be exported and `planned_calls` / `planned_min_duration` give the API cost.

    `removed` counts leavers removed from the list (`on_leave="remove"`; for a dry run, the leavers
    that would be removed), `removal_failed` those whose removal failed (they are tried again next
    run). `run_id` is the run's id in the state's journal (`Exporter.history`), None without state.

    API figures (`api_calls`, `retries`, `rate_limited`) are the client's counters over the export.

    `complete` is False when the export stopped early, `stopped_by` says why; `interrupted` is True
    when that was Ctrl-C (`ExportInterrupted`, or SIGTERM in the command line).

    The `list_*` fields keep their names for compatibility; they describe the segment's *target*
    whatever the destination (an Autopilot list, ...). `target_id`, `target_note`, `target_created`
    and `membership` are destination-neutral aliases of `list_id`, `list_note`, `list_created` and
    `list_membership` (read-only; `to_dict()` keeps the `list_*` keys). `destination` names the
    platform ("Autopilot", "Ortto"; None when unknown) and `target_noun` what its target is called
    ("list", "tag"), as the summary says them.
    """

    segment: str
    list_id: str | None
    list_note: str = ""
    list_created: bool = False
    list_membership: str = "not checked"
    total_rows: int = attrs.field(validator=attrs.validators.ge(0))
    exported: int = attrs.field(validator=attrs.validators.ge(0))
    unchanged: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    removed: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    removal_failed: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    run_id: int | None = None
    rejected: RejectionLog = attrs.field(factory=RejectionLog, converter=_as_log)
    api_calls: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    retries: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    rate_limited: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    started_at: dt.datetime = attrs.field(validator=attrs.validators.instance_of(dt.datetime))
    finished_at: dt.datetime = attrs.field(validator=attrs.validators.instance_of(dt.datetime))
    duration: float = attrs.field(validator=attrs.validators.ge(0.0))
    dry_run: bool = False
    complete: bool = True
    stopped_by: str | None = None
    interrupted: bool = False
    planned_calls: int | None = None
    planned_calls_worst: int | None = None
    planned_min_duration: float | None = None
    requests_per_second: float | None = None
    destination: str | None = None
    target_noun: str = "list"

    def __attrs_post_init__(self) -> None:
        _utc(self.started_at)
        _utc(self.finished_at)
        outcomes = self.exported + self.unchanged + len(self.rejected)
        if outcomes != self.total_rows:
            # Every row must end in exactly one outcome; anything else is a bug in the exporter.
            raise ValueError(
                f"internal accounting error (a bug, please report it): {self.total_rows} rows but "
                f"{self.exported} exported + {self.unchanged} unchanged + {len(self.rejected)} rejected"
            )

    @property
    def _target_name(self) -> str:
        return f"{self.destination} {self.target_noun}" if self.destination else self.target_noun

    @property
    def target_id(self) -> str | None:
        """The id of the segment's target in the destination (alias of `list_id`)."""
        return self.list_id

    @property
    def target_note(self) -> str:
        """Why this target was chosen, when that is not obvious (alias of `list_note`)."""
        return self.list_note

    @property
    def target_created(self) -> bool:
        """Whether this run created the target (alias of `list_created`)."""
        return self.list_created

    @property
    def membership(self) -> str:
        """How membership of the target was ensured (alias of `list_membership`)."""
        return self.list_membership

    @property
    def counts(self) -> dict[str, int]:
        """Rows per outcome: `exported`, `unchanged` and every rejection reason code (zeros included)."""
        counts = {"exported": self.exported, "unchanged": self.unchanged}
        counts.update(self.rejected.reason_counts())
        return counts

    @property
    def throughput(self) -> float:
        """Rows per second over the whole run (0.0 for an instant run)."""
        return self.total_rows / self.duration if self.duration > 0 else 0.0

    @property
    def ok(self) -> bool:
        """True when the run completed and no row (nor removal) failed for a transient reason."""
        return self.complete and not self.rejected.reason_counts()["failed"] and not self.removal_failed

    def summary(self) -> str:
        """A short human-readable account of the run."""
        verb = "would export" if self.dry_run else "exported"
        head = f"Segment {self.segment!r}"
        if self.list_id is not None:
            where = self.target_noun if self.destination in (None, "Autopilot") else self._target_name
            head += f" -> {where} {self.list_id}" + (" (created)" if self.list_created else "")
        if self.dry_run:
            head += " [dry run: nothing was written]"
        lines = [head]
        reasons = ", ".join(
            f"{reason} {n:,}"
            for reason, n in self.counts.items()
            if n and reason not in ("exported", "unchanged")
        )
        rows = f"{counted(self.total_rows, 'row')}: {self.exported:,} {verb}, {self.unchanged:,} unchanged, "
        rows += f"{len(self.rejected):,} rejected" + (f" ({reasons})" if reasons else "")
        lines.append(rows)
        over_limit = self.counts.get("over_limit", 0)
        if over_limit:
            lines.append(
                f"{counted(over_limit, 'row was', 'rows were')} over the profile cap and not exported: "
                "raise the cap with Exporter(max_profiles=N) or --max-profiles N (None or 0: no cap)"
            )
        if self.removed or self.removal_failed:
            verb_removed = "would be removed" if self.dry_run else "removed"
            line = f"{counted(self.removed, 'leaver')} {verb_removed} from the {self.target_noun}"
            if self.removal_failed:
                line += f"; {counted(self.removal_failed, 'removal')} failed (tried again next run)"
            lines.append(line)
        if self.dry_run and self.planned_calls is not None:
            rate = f" at {self.requests_per_second:g} r/s" if self.requests_per_second else ""
            if self.destination in (None, "Autopilot"):
                condition = "if Autopilot honours _autopilot_list in bulk "
                worst = f"(up to {self.planned_calls_worst or self.planned_calls:,} if not), "
            else:
                condition = ""
                worst = (
                    f"(up to {self.planned_calls_worst:,}), "
                    if self.planned_calls_worst and self.planned_calls_worst != self.planned_calls
                    else ""
                )
            lines.append(
                f"planned: {counted(self.planned_calls, 'API call')} {condition}{worst}"
                f">= {self.planned_min_duration or 0.0:.1f} s{rate}"
            )
        else:
            lines.append(
                f"{counted(self.api_calls, 'API call')} ({counted(self.retries, 'retry')}, "
                f"{self.rate_limited:,} rate-limited) in {self.duration:.1f} s, {self.throughput:,.1f} rows/s"
            )
        if self.list_note:
            lines.append(self.list_note)
        if not self.dry_run and self.exported:
            lines.append(f"{self.target_noun} membership: {self.list_membership}")
        if not self.complete:
            lines.append(f"INCOMPLETE: {self.stopped_by or 'the export stopped early'}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole report, rejections included."""
        data = self._fields_dict()
        data["rejected"] = [r.to_dict() for r in self.rejected]
        return data

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write `to_dict()` to `path` as indented JSON, streaming the rejections one at a time.

        The document is the same as `json.dumps(report.to_dict(), indent=2, ensure_ascii=False)`, but a
        report of millions of rejections (most of them on disk, see `RejectionLog`) is never held in
        memory as a list of dicts.
        """
        target = Path(path)
        head = json.dumps(self._fields_dict(), indent=2, ensure_ascii=False)
        # The placeholder is the top-level key's own line: a string value holding the same text is
        # escaped (\"rejected\"), so it cannot match.
        before, after = head.split(f'\n  "rejected": {_PLACEHOLDER},\n', 1)
        with target.open("w", encoding="utf-8") as fh:
            fh.write(before + '\n  "rejected": [')
            for index, rejection in enumerate(self.rejected):
                item = json.dumps(rejection.to_dict(), indent=2, ensure_ascii=False)
                fh.write(("," if index else "") + "\n    " + item.replace("\n", "\n    "))
            fh.write(("\n  ]" if self.rejected else "]") + ",\n" + after + "\n")
        return target

    def _fields_dict(self) -> dict[str, Any]:
        """`to_dict()` with a placeholder where the rejections go."""
        return {
            "segment": self.segment,
            "list_id": self.list_id,
            "list_note": self.list_note,
            "list_created": self.list_created,
            "list_membership": self.list_membership,
            "destination": self.destination,
            "target_noun": self.target_noun,
            "total_rows": self.total_rows,
            "exported": self.exported,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "removal_failed": self.removal_failed,
            "run_id": self.run_id,
            "counts": self.counts,
            "rejected": _PLACEHOLDER,
            "api_calls": self.api_calls,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "duration": self.duration,
            "throughput": self.throughput,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "stopped_by": self.stopped_by,
            "interrupted": self.interrupted,
            "planned_calls": self.planned_calls,
            "planned_calls_worst": self.planned_calls_worst,
            "planned_min_duration": self.planned_min_duration,
            "requests_per_second": self.requests_per_second,
        }

    def write_rejections(self, path: str | os.PathLike[str]) -> Path:
        """Write the rejected rows to `path`: CSV for `.csv`, JSON Lines for `.jsonl`/`.ndjson`.

        In the CSV, a cell that a spreadsheet would evaluate as a formula (text starting with `=`, `+`,
        `-`, `@`, a tab or a carriage return, also after leading blanks) starts with a single quote
        (the OWASP rule against CSV injection). JSON Lines hold every value exactly.
        """
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".csv":
            with target.open("w", newline="", encoding="utf-8") as fh:
                # Opened in spreadsheets: no cell, the header included, may be evaluated as a formula.
                writer = csv.writer(fh)
                writer.writerow([spreadsheet_cell(name) for name in _REJECTION_COLUMNS])
                writer.writerows(
                    [spreadsheet_cell(value) for value in r.to_dict().values()] for r in self.rejected
                )
        elif suffix in (".jsonl", ".ndjson"):
            with target.open("w", encoding="utf-8") as fh:
                for rejection in self.rejected:
                    fh.write(json.dumps(rejection.to_dict(), ensure_ascii=False) + "\n")
        else:
            raise ConfigurationError(
                f"cannot tell the format of {target.name!r}: name the file *.csv or *.jsonl (or *.ndjson)"
            )
        return target

    def rejections_frame(self) -> pandas.DataFrame:
        """The rejected rows as a pandas DataFrame (needs the `pandas` extra)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ConfigurationError(
                "rejections_frame() needs pandas: pip install 'autopilot-segments[pandas]'"
            ) from exc
        return pd.DataFrame([r.to_dict() for r in self.rejected], columns=list(_REJECTION_COLUMNS))

    def _repr_html_(self) -> str:
        esc = html.escape
        rows: list[tuple[str, str]] = [
            ("segment", self.segment),
            ("list", f"{self.list_id or '-'}{' (created)' if self.list_created else ''}"),
            ("dry run", "yes" if self.dry_run else "no"),
            ("rows", f"{self.total_rows:,}"),
        ]
        rows += [(name, f"{n:,}") for name, n in self.counts.items() if n or name == "exported"]
        if self.removed or self.removal_failed:
            rows.append(("removed", f"{self.removed:,} ({self.removal_failed:,} failed)"))
        if self.dry_run and self.planned_calls is not None:
            rows.append(("planned calls", f"{self.planned_calls:,}"))
            rows.append(("min duration", f"{self.planned_min_duration or 0.0:.1f} s"))
        else:
            rows.append(("API calls", f"{self.api_calls:,} ({counted(self.retries, 'retry')})"))
            rows.append(("duration", f"{self.duration:.1f} s ({self.throughput:,.1f} rows/s)"))
        if self.list_note:
            rows.append(("note", self.list_note))
        if not self.complete:
            rows.append(("INCOMPLETE", self.stopped_by or "stopped early"))
        body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
        parts = [f"<table><caption>ExportReport</caption>{body}</table>"]
        if self.rejected:
            head = "".join(f"<th>{esc(c)}</th>" for c in _REJECTION_COLUMNS)
            preview = "".join(
                "<tr>"
                + "".join(f"<td>{esc('' if v is None else str(v))}</td>" for v in r.to_dict().values())
                + "</tr>"
                for r in self.rejected[:_HTML_REJECTION_PREVIEW]
            )
            more = len(self.rejected) - _HTML_REJECTION_PREVIEW
            tail = f"<p>... and {counted(more, 'more rejected row')}</p>" if more > 0 else ""
            parts.append(f"<table><tr>{head}</tr>{preview}</table>{tail}")
        return "".join(parts)
