"""CSV and JSON Lines readers: streaming, lazily opened, gzip-aware."""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ._common import _SNIFF_BYTES, _SNIFF_DELIMITERS, Columns, Row, SourceError

# --------------------------------------------------------------------------------------------- CSV


def read_csv(
    path: str | os.PathLike[str],
    *,
    encoding: str = "utf-8-sig",
    delimiter: str | None = None,
    columns: Columns = None,
    fieldnames: Sequence[str] | None = None,
) -> Iterator[Row]:
    """Stream the rows of a delimited text file as dicts keyed by the header.

    - `encoding`: `utf-8-sig` reads UTF-8 with or without a byte-order mark. A gzip-compressed file is
      decompressed, whatever its name (it is told by its content).
    - `delimiter`: one character; by default sniffed from the first 16 KiB among `,` `;` tab `|`,
      falling back to `,`.
    - `columns`: a sequence selects those columns (in that order); a mapping `{header: new_name}` selects
      and renames. A name absent from the header is a `SourceError`.
    - `fieldnames`: the file has no header row; these are its column names.

    Standard CSV quoting applies (`"a ""quoted"" value"`, separators and newlines inside quotes).
    Empty cells become None; blank lines are skipped. A row with fewer cells than the header gets None
    for the missing columns; a row with more cells is a `SourceError` naming its line, unless the extra
    cells are all empty (a trailing separator). Header names are stripped of surrounding spaces and must
    be non-empty and unique. An empty file, or one with only a header, yields no rows.
    """
    if delimiter is not None and len(delimiter) != 1:
        raise SourceError(f"delimiter must be a single character, got {delimiter!r}")
    file = _existing_file(path)
    header = _check_header(list(fieldnames), str(file)) if fieldnames is not None else None
    return _csv_rows(
        lambda: _open_text(file, encoding),
        label=str(file),
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        columns=columns,
    )


def _existing_file(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    if not file.exists():
        raise SourceError(f"no such file: {file}")
    if file.is_dir():
        raise SourceError(f"{file} is a folder, not a file")
    return file


GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(file: Path) -> bool:
    """Whether `file` is gzip-compressed, told by its first two bytes (not its name)."""
    with open(file, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _open_text(file: Path, encoding: str) -> IO[str]:
    if is_gzip(file):  # by content: `export.csv` may well be gzipped, `export.gz` may not be
        return gzip.open(file, "rt", encoding=encoding, newline="")
    return open(file, encoding=encoding, newline="")


def _check_header(names: list[str], label: str) -> list[str]:
    names = [name.strip() for name in names]
    problems = [f"column {i} has no name" for i, name in enumerate(names, 1) if not name]
    first_seen: dict[str, int] = {}
    for i, name in enumerate(names, 1):
        if name and name in first_seen:
            problems.append(f"column {name!r} appears twice (columns {first_seen[name]} and {i})")
        first_seen.setdefault(name, i)
    if problems:
        raise SourceError(f"{label}: bad header: " + "; ".join(problems))
    return names


def _selection(header: list[str], columns: Columns, label: str) -> list[tuple[int, str]] | None:
    """(cell index, output key) pairs for the selected columns, or None for "every column as is"."""
    if columns is None:
        return None
    wanted = dict(columns) if isinstance(columns, Mapping) else {name: name for name in columns}
    index = {name: i for i, name in enumerate(header)}
    absent = [name for name in wanted if name not in index]
    if absent:
        raise SourceError(
            f"{label}: no column(s) {', '.join(map(repr, absent))}; the columns are {', '.join(header)}"
        )
    return [(index[name], key) for name, key in wanted.items()]


def _sniff_delimiter(sample: str) -> str:
    # Cut at the last line break so the sniffer never sees half a record.
    cut = max(sample.rfind("\n"), sample.rfind("\r"))
    if cut > 0:
        sample = sample[:cut]
    try:
        return csv.Sniffer().sniff(sample, delimiters=_SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _csv_rows(
    open_text: Callable[[], IO[str]],
    *,
    label: str,
    encoding: str,
    delimiter: str | None,
    header: list[str] | None,
    columns: Columns,
    skip_first_line: bool = False,
    convert: Sequence[Callable[[str], Any]] | None = None,
) -> Iterator[Row]:
    with open_text() as fh:
        reader: Any = None
        try:
            if delimiter is None:
                sample = fh.read(_SNIFF_BYTES)
                if not sample:
                    return
                delimiter = _sniff_delimiter(sample)
                fh.seek(0)
            reader = csv.reader(fh, delimiter=delimiter)
            if skip_first_line:
                next(reader, None)
            if header is None:
                first = next((cells for cells in reader if cells), None)  # blank lines may precede it
                if first is None:
                    return
                first[0] = first[0].lstrip("\ufeff")  # a BOM read with encoding="utf-8"
                header = _check_header(first, label)
            yield from _rows(reader, header, _selection(header, columns, label), label, convert)
        except UnicodeDecodeError as exc:
            line = reader.line_num + 1 if reader is not None else 1
            raise SourceError(
                f"{label}: not valid {encoding} text near line {line}; pass the file's encoding "
                "(e.g. encoding='cp1252')"
            ) from exc
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise SourceError(f"{label}: malformed CSV near line {line}: {exc}") from exc


def _rows(
    reader: Any,
    header: list[str],
    selection: list[tuple[int, str]] | None,
    label: str,
    convert: Sequence[Callable[[str], Any]] | None,
) -> Iterator[Row]:
    width = len(header)
    previous_line = reader.line_num
    for cells in reader:
        line = previous_line + 1  # where the record starts, even when quoted newlines make it span lines
        previous_line = reader.line_num
        if not cells:
            continue  # a blank line
        if len(cells) != width:
            if len(cells) > width:
                if any(cell.strip() for cell in cells[width:]):
                    raise SourceError(
                        f"{label}: line {line} has {len(cells)} cells but the header has {width} columns "
                        "(an unquoted separator inside a value, or the wrong delimiter?)"
                    )
                del cells[width:]
            else:
                cells.extend([""] * (width - len(cells)))
        if convert is not None:
            values: list[Any] = [fn(cell) if cell else None for fn, cell in zip(convert, cells, strict=True)]
        else:
            values = [cell or None for cell in cells]
        if selection is None:
            yield dict(zip(header, values, strict=True))
        else:
            yield {key: values[i] for i, key in selection}


# ----------------------------------------------------------------------------------------- JSON Lines


def read_jsonl(path: str | os.PathLike[str], *, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """Stream a JSON Lines file (one JSON object per line; gzip is decompressed). Blank lines are skipped.

    Each object is yielded as parsed (JSON `null` is None). A line that is not valid JSON, or not a JSON
    object, is a `SourceError` naming the line.
    """
    file = _existing_file(path)
    return _jsonl_rows(file, encoding)


def _jsonl_rows(file: Path, encoding: str) -> Iterator[Row]:
    line_number = 0
    try:
        with _open_text(file, encoding) as fh:
            for line_number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SourceError(f"{file}: line {line_number} is not valid JSON: {exc.msg}") from None
                if not isinstance(value, dict):
                    raise SourceError(
                        f"{file}: line {line_number} is a JSON {type(value).__name__}, not an object"
                    )
                yield value
    except UnicodeDecodeError as exc:
        raise SourceError(f"{file}: not valid {encoding} text near line {line_number + 1}") from exc
