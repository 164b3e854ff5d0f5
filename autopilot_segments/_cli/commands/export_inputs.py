"""What `export` reads: the mapping from flags or a file, and the source's rows."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..._errors import (
    ConfigurationError,
)
from ...sources import SourceError

if TYPE_CHECKING:
    from ..._mapping.mapping import FieldMapping

from ..exit_codes import _UsageError
from .export_sql import _SqlSource

_CUSTOM_TYPES = ("string", "integer", "float", "date", "boolean")


# How many of a source's column names an error message lists before "...".
_SHOWN_COLUMNS = 30


def _mapping_from_args(args: argparse.Namespace) -> FieldMapping:
    from ..._mapping.fields import CustomField
    from ..._mapping.mapping import FieldMapping

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
        name, field_type, column, formats = _parse_custom(spec)
        custom.append(CustomField(name, field_type, source=column, formats=formats))  # type: ignore[arg-type]
    return FieldMapping(email=args.email_column, fields=fields, custom=custom)


_CUSTOM_SPEC = re.compile(
    r"(?P<name>.+?):(?P<type>[A-Za-z]+)\s*(?:\((?P<formats>[^()]*)\))?\s*(?:=(?P<column>.*))?", re.S
)


def _parse_custom(spec: str) -> tuple[str, str, str | None, tuple[str, ...]]:
    """`"Loyalty Points:integer=points"` -> ("Loyalty Points", "integer", "points", ()); without `=COL` the
    column is named like the field. A date field may list its formats in parentheses, separated by `|`:
    `"Joined:date(%m/%d/%Y %I:%M:%S %p|dataverse)=joined"`."""
    match = _CUSTOM_SPEC.fullmatch(spec)
    name = match["name"].strip() if match else ""
    column = match["column"] if match else None
    if match is None or not name or (column is not None and not column.strip()):
        raise _UsageError(
            f"--custom {spec!r}: expected NAME:TYPE=COLUMN, e.g. --custom 'Loyalty Points:integer=points' "
            "or 'Joined:date(day-first)=joined'"
        )
    field_type = match["type"].lower()
    if field_type not in _CUSTOM_TYPES:
        raise _UsageError(f"--custom {spec!r}: TYPE must be one of {', '.join(_CUSTOM_TYPES)}")
    formats = tuple(f.strip() for f in (match["formats"] or "").split("|") if f.strip())
    if match["formats"] is not None and not formats:
        raise _UsageError(f"--custom {spec!r}: the parentheses name no format, e.g. date(day-first)")
    return name, field_type, column.strip() if column else None, formats


def _load_mapping(path: Path) -> FieldMapping:
    """A `--mapping` file: TOML for `*.toml`, JSON otherwise (both hold the `FieldMapping.from_dict` form)."""
    from ..._mapping.mapping import FieldMapping
    from ..._toml import read_toml

    if path.suffix.lower() == ".toml":
        data: Any = read_toml(path, what="mapping file")
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            hint = " (a TOML mapping file must be named *.toml)" if path.suffix.lower() != ".json" else ""
            raise ConfigurationError(f"the mapping file {path} is not valid JSON{hint}: {exc}") from None
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


def _reader_options(args: argparse.Namespace) -> dict[str, Any]:
    """--encoding, --delimiter, --format and --sheet, as `open_source` keywords (only those given)."""
    options = {name: getattr(args, name) for name in _READER_FLAGS if getattr(args, name, None) is not None}
    if "encoding" in options:
        try:
            codecs.lookup(options["encoding"])
        except LookupError:
            raise _UsageError(
                f"--encoding {options['encoding']!r}: unknown encoding (e.g. utf-8, cp1252, latin-1)"
            ) from None
    if "delimiter" in options:
        delimiter = _DELIMITER_NAMES.get(options["delimiter"].lower(), options["delimiter"])
        if len(delimiter) != 1:
            raise _UsageError(
                f"--delimiter {options['delimiter']!r}: give one character, or tab, comma, semicolon, pipe"
            )
        options["delimiter"] = delimiter
    return options


_READER_FLAGS = ("encoding", "delimiter", "format", "sheet")
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def _source_path(args: argparse.Namespace) -> str:
    """SOURCE, or for `-` a private temporary copy of standard input (deleted when the command ends).

    The export reads its source more than once (a read-through before anything is sent, then the
    export), which a pipe cannot do, so standard input is spooled to disk first.
    """
    if args.source != "-":
        return str(args.source)
    if args.format is None:
        raise _UsageError(
            "SOURCE - reads standard input: say what it holds with --format csv or --format jsonl"
        )
    stdin = getattr(sys.stdin, "buffer", None)
    if stdin is None:
        raise _UsageError("SOURCE - reads standard input, but there is none")
    spool = tempfile.NamedTemporaryFile(prefix="autopilot-segments-stdin-")  # noqa: SIM115  kept open
    shutil.copyfileobj(stdin, spool)
    spool.flush()
    args.stdin_spool = spool  # lives as long as the command: closing it deletes the file
    return spool.name


def _read_through(source: str | _SqlSource, entity: str | None, **reader: Any) -> int:
    """Read the whole source once before anything is sent, and return its row count.

    The readers stream, so a malformed record (an unquoted separator, a line of bad JSON, a byte the
    encoding rejects) would otherwise surface mid-export, after the rows before it were written and
    with no report of them. Reading is hundreds of times faster than Autopilot accepts contacts, so
    the extra pass costs little, and its count gives the progress bar a total.
    """
    with _open_rows(source, entity, **reader) as rows:  # an unknown file or entity is raised as it is
        try:
            return sum(1 for _ in rows)
        except SourceError as exc:
            what = "the query" if isinstance(source, _SqlSource) else "the file"
            raise SourceError(f"{exc}; nothing was sent (fix {what} and run the export again)") from exc


@attrs.frozen
class _Reopened:
    """A source read from the start, file opened anew, each time it is iterated."""

    source: str | _SqlSource
    entity: str | None
    reader: Mapping[str, Any] = attrs.field(factory=dict)

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        with _open_rows(self.source, self.entity, **self.reader) as rows:
            yield from rows


@contextlib.contextmanager
def _open_rows(
    source: str | _SqlSource, entity: str | None, **reader: Any
) -> Iterator[Iterator[Mapping[str, Any]]]:
    """The source's rows, streamed, and closed (with the file) however the export ends.

    `reader`: `open_source`'s encoding, delimiter, format and sheet options.
    """
    from ...sources import open_source

    rows = source.rows() if isinstance(source, _SqlSource) else open_source(source, entity=entity, **reader)
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()
