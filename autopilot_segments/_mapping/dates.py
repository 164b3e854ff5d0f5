"""Dates the way platforms write them: explicit formats, and placeholder minimum dates as empty.

A `date` custom field reads ISO-8601 unless it is given `formats`: strftime patterns
(`"%m/%d/%Y %I:%M:%S %p"`) and the named formats below. Day-first and month-first are never guessed:
only the formats given are tried, and a value that two of them read as different dates is refused.

Placeholder minimum dates count as empty (the field is left out, or its default is sent): .NET's
`DateTime.MinValue` (`0001-01-01T00:00:00`, what Dataverse and .NET exports write for "no date") and
SQL Server's `datetime` minimum (`1753-01-01T00:00:00`), at midnight, with any fraction of zeros and any
offset, as text or as a `datetime`/`date`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from .coerce import OMIT, Converter, ValueProblem, _iso_utc, _parse_iso, _unwrap, short

__all__ = ["NAMED_DATE_FORMATS", "PLACEHOLDER_DATES", "date_converter", "date_format_problems"]

_US: Final = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y")
_DAY_FIRST: Final = tuple(f"%d{sep}%m{sep}%Y{time}" for sep in "/-." for time in (" %H:%M:%S", " %H:%M", ""))

NAMED_DATE_FORMATS: Final[dict[str, tuple[str, ...]]] = {
    "iso": ("iso",),  # ISO-8601, as without formats
    # Dataverse / Synapse Link: ISO-8601 in data columns, en-US "6/15/2023 12:03:02 PM" in
    # SinkCreatedOn / SinkModifiedOn.
    "dataverse": ("iso", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y"),
    "month-first": _US,  # 6/15/2023, 6/15/2023 12:03:02 PM, 6/15/2023 13:03
    "day-first": _DAY_FIRST,  # 15/06/2023, 20-12-2023, 15.06.2023 13:03:02
    "unix-seconds": ("unix-seconds",),
    "unix-milliseconds": ("unix-milliseconds",),
}
"""The named formats and the patterns each one tries (`"iso"` is ISO-8601 as the default reads it)."""

PLACEHOLDER_DATES: Final = (date(1, 1, 1), date(1753, 1, 1))
"""Dates that, at midnight, mean "no date": .NET's DateTime.MinValue and SQL Server's datetime minimum."""

_PLACEHOLDER_TEXT: Final = re.compile(
    r"(?:0001-01-01|1753-01-01)(?:[Tt ]00:00(?::00(?:[.,]0+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
    r"|(?:1/1/0001|01/01/0001|1/1/1753|01/01/1753)(?: 12:00(?::00)? AM| 00:00(?::00)?)?"
)
_PLACEHOLDER_DAYS: Final = frozenset(d.isoformat() for d in PLACEHOLDER_DATES)
_PLACEHOLDER_YEARS: Final = frozenset(day[:4] for day in _PLACEHOLDER_DAYS)
_YEAR: Final = re.compile(r"%Y")
_TWO_DIGIT_YEAR: Final = re.compile(r"%y")
_DIRECTIVE: Final = re.compile(r"%.")
_SAMPLE: Final = datetime(2001, 2, 3, 16, 5, 6, 789000, tzinfo=timezone.utc)
_MIN_MILLISECONDS: Final = -62135596800000  # 0001-01-01T00:00:00Z
_MAX_MILLISECONDS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z


def _problem(value: Any, formats: Sequence[str]) -> ValueProblem:
    shown = ", ".join(formats) if formats else "ISO-8601, like 2016-11-22 or 2016-11-22T10:30:00Z"
    return ValueProblem(f"{short(value)} is not a date in the expected format ({shown})")


def date_format_problems(formats: object) -> list[str]:
    """What is wrong with a `formats` declaration, for a `ConfigurationError` (empty when fine)."""
    if not isinstance(formats, tuple) or not all(isinstance(f, str) for f in formats):
        return ["formats must be a list of strftime patterns or named formats"]
    problems = []
    for spec in formats:
        if spec in NAMED_DATE_FORMATS:
            continue
        if "%" not in spec:
            names = ", ".join(NAMED_DATE_FORMATS)
            problems.append(
                f"format {spec!r} is neither a strftime pattern (like %d/%m/%Y) nor one of {names}"
            )
        elif _TWO_DIGIT_YEAR.search(spec):
            problems.append(f"format {spec!r} has a two-digit year (%y), whose century is a guess; use %Y")
        elif not _complete(spec):
            problems.append(
                f"format {spec!r} must give the year (%Y), the month (%m, %b or %B) and the day (%d)"
            )
        else:
            try:
                datetime.strptime(_SAMPLE.strftime(spec), spec)
            except ValueError as exc:
                problems.append(f"format {spec!r} cannot be used: {exc}")
    return problems


def _complete(spec: str) -> bool:
    directives = set(_DIRECTIVE.findall(spec))
    has_day = "%d" in directives and bool(directives & {"%m", "%b", "%B"})
    return bool(_YEAR.search(spec)) and (has_day or "%j" in directives)


def _patterns(formats: Sequence[str]) -> tuple[str, ...]:
    expanded: list[str] = []
    for spec in formats:
        expanded.extend(NAMED_DATE_FORMATS.get(spec, (spec,)))
    return tuple(dict.fromkeys(expanded))


def _is_placeholder_moment(moment: datetime) -> bool:
    return (
        moment.date() in PLACEHOLDER_DATES
        and moment.hour == moment.minute == moment.second == moment.microsecond == 0
    )


def _read(pattern: str, text: str) -> str | None:
    """The ISO-8601 UTC text of `text` read with one pattern, or None if it does not fit."""
    if pattern == "iso":
        try:
            result = _parse_iso(text)
        except ValueProblem:
            return None
        return None if result is OMIT else str(result)
    if pattern in ("unix-seconds", "unix-milliseconds"):
        if not re.fullmatch(r"[+-]?[0-9]+(?:\.[0-9]+)?", text):
            return None
        number = float(text) * (1000 if pattern == "unix-seconds" else 1)  # milliseconds
        if not _MIN_MILLISECONDS <= number <= _MAX_MILLISECONDS:
            return None
        return _iso_utc(datetime.fromtimestamp(0, timezone.utc) + timedelta(milliseconds=number))
    try:
        moment = datetime.strptime(text, pattern)
    except ValueError:
        return None
    if _is_placeholder_moment(moment):
        return ""
    return _iso_utc(moment)


def date_converter(formats: Sequence[str] = ()) -> Converter:
    """ISO-8601 UTC text (`2016-11-22T00:00:00.000Z`) from datetimes, dates and text in `formats`.

    Without formats, text must be ISO-8601. Naive values are taken as UTC. Placeholder minimum dates
    are empty (OMIT). Text that two formats read as different moments is a problem, never a guess.
    """
    patterns = _patterns(formats) or ("iso",)
    only_iso = patterns == ("iso",)

    def from_text(value: str) -> Any:
        text = value.strip()
        if not text:
            return OMIT
        if (
            text[:4] in _PLACEHOLDER_YEARS or "/0001" in text or "/1753" in text
        ) and _PLACEHOLDER_TEXT.fullmatch(text):
            return OMIT
        if only_iso:
            result = _parse_iso(text)
            if result is OMIT:
                return OMIT
            if (
                isinstance(result, str)
                and result[10:] == "T00:00:00.000Z"
                and result[:10] in _PLACEHOLDER_DAYS
            ):
                return OMIT
            return result
        readings = {r for r in (_read(p, text) for p in patterns) if r is not None}
        if "" in readings:
            return OMIT
        if len(readings) == 1:
            return readings.pop()
        if readings:
            raise ValueProblem(
                f"{short(value)} reads as {len(readings)} different dates with the formats "
                f"{', '.join(formats)} ({', '.join(sorted(readings))}); keep only the format the data uses"
            )
        raise _problem(value, formats)

    def convert(value: Any) -> Any:
        if type(value) is str:
            return from_text(value)
        value = _unwrap(value)
        if value is OMIT:
            return OMIT
        if isinstance(value, str):
            return from_text(value)
        if isinstance(value, datetime):
            if _is_placeholder_moment(value):
                return OMIT
            return _iso_utc(value)
        if isinstance(value, date):
            if value in PLACEHOLDER_DATES:
                return OMIT
            return value.isoformat() + "T00:00:00.000Z"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            unix = [p for p in patterns if p.startswith("unix-")]
            if unix:
                return from_text(repr(value) if isinstance(value, float) else str(value))
        raise _problem(value, formats)

    return convert
