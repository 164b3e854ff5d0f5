"""Streaming readers that turn segment files into rows: CSV, JSON Lines, pandas, Parquet and CDM folders.

Every reader yields plain `dict[str, Any]` rows, one at a time, in constant memory (Parquet and pandas
hold one bounded batch), so a segment of any size can be piped into `FieldMapping.map_rows` or
`Exporter.export`. Conventions shared by all readers:

- a missing value is `None`: an empty CSV cell, a JSON `null`, a pandas NaN/NaT/None/NA, a Parquet null;
- values are plain Python objects (`str`, `int`, `float`, `bool`, `datetime`, ...), never numpy scalars;
- a file is opened lazily, on the first row asked for, and closed when the rows are exhausted or the
  generator is closed; argument errors (unknown extension, missing file, missing extra) are raised at
  the call;
- malformed input raises `SourceError` naming the file and the line (or partition) at fault; messages
  never quote cell values, which may be personal data.

pandas and pyarrow are optional extras, imported only by the readers that need them.
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final
from urllib.parse import unquote, urlsplit

from ._errors import AutopilotError

__all__ = [
    "SourceError",
    "cdm_entities",
    "from_dataframe",
    "open_source",
    "read_any",
    "read_cdm",
    "read_csv",
    "read_jsonl",
    "read_parquet",
    "sample_mapping_path",
    "sample_segment_path",
]

Row = dict[str, Any]
Columns = Sequence[str] | Mapping[str, str] | None

_SNIFF_BYTES: Final = 16 * 1024
_SNIFF_DELIMITERS: Final = ",;\t|"
_DEFAULT_CHUNK: Final = 10_000


class SourceError(AutopilotError, ValueError):
    """A segment source could not be read: missing file, malformed content, or a missing optional extra."""


def _missing_extra(feature: str, module: str, extra: str) -> SourceError:
    return SourceError(
        f"{feature} needs {module}, which is not installed: pip install 'autopilot-segments[{extra}]'"
    )


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

    - `encoding`: `utf-8-sig` reads UTF-8 with or without a byte-order mark. A `.gz` file is decompressed.
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


def _open_text(file: Path, encoding: str) -> IO[str]:
    if file.suffix.lower() == ".gz":
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
    """Stream a JSON Lines file (one JSON object per line; `.gz` is decompressed). Blank lines are skipped.

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


# --------------------------------------------------------------------------------------------- pandas


def from_dataframe(df: Any, *, chunk_size: int = _DEFAULT_CHUNK) -> Iterator[Row]:
    """Stream the rows of a pandas DataFrame as dicts keyed by column name (the index is ignored).

    NaN, NaT, None and pd.NA become None; numpy scalars become Python values; Timestamps become
    `datetime` (time zone kept), Timedeltas `timedelta`. Rows are converted `chunk_size` at a time, so
    the DataFrame is never copied into dicts all at once. Column names must be unique.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise _missing_extra("Reading a DataFrame", "pandas", "pandas") from exc
    if not isinstance(df, pd.DataFrame):
        raise SourceError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    if chunk_size < 1:
        raise SourceError(f"chunk_size must be >= 1, got {chunk_size!r}")
    names = _check_header([str(c) for c in df.columns], "DataFrame")
    return _dataframe_rows(df, names, chunk_size, _column_converter(pd))


def _column_converter(pd: Any) -> Callable[[Any], list[Any]]:
    """A function turning one column (a Series) into a list of plain Python values."""
    import numpy as np

    timestamp, timedelta, na, nat = pd.Timestamp, pd.Timedelta, pd.NA, pd.NaT
    np_generic, np_datetime64, np_timedelta64 = np.generic, np.datetime64, np.timedelta64
    plain = (str, int, bool)

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in plain:
            return value
        if kind is float:
            return None if math.isnan(value) else value
        if value is None or value is na or value is nat:
            return None
        if isinstance(value, timestamp):
            return value.to_pydatetime()
        if isinstance(value, timedelta):
            return value.to_pytimedelta()
        if isinstance(value, np_datetime64):
            return None if np.isnat(value) else timestamp(value).to_pydatetime()
        if isinstance(value, np_timedelta64):
            return None if np.isnat(value) else timedelta(value).to_pytimedelta()
        if isinstance(value, np_generic):
            item = value.item()
            return None if isinstance(item, float) and math.isnan(item) else item
        if isinstance(value, float):  # a float subclass
            return None if math.isnan(value) else float(value)
        return value

    def column_values(series: Any) -> list[Any]:
        dtype = series.dtype
        # Column by column, so the common numpy dtypes skip the per-value type dispatch.
        if isinstance(dtype, np.dtype) and dtype.kind in "biu":
            return list(series.tolist())  # never missing, already Python ints/bools
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            return [None if v != v else v for v in series.tolist()]  # v != v: NaN
        return [convert(v) for v in series.tolist()]

    return column_values


def _dataframe_rows(
    df: Any, names: list[str], chunk_size: int, column_values: Callable[[Any], list[Any]]
) -> Iterator[Row]:
    for start in range(0, len(df), chunk_size):
        chunk = df.iloc[start : start + chunk_size]
        if not names:
            yield from ({} for _ in range(len(chunk)))
            continue
        columns = [column_values(chunk.iloc[:, i]) for i in range(len(names))]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


# -------------------------------------------------------------------------------------------- Parquet


def read_parquet(
    path: str | os.PathLike[str], *, columns: Sequence[str] | None = None, batch_size: int = _DEFAULT_CHUNK
) -> Iterator[Row]:
    """Stream a Parquet file record batch by record batch (`batch_size` rows at a time).

    Values come out as Python objects (`to_pylist`): nulls are None, timestamps `datetime` (time zone
    kept), decimals `Decimal`. `columns` reads only those columns; an unknown one is a `SourceError`.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise _missing_extra("Reading Parquet", "pyarrow", "parquet") from exc
    if batch_size < 1:
        raise SourceError(f"batch_size must be >= 1, got {batch_size!r}")
    file = _existing_file(path)
    return _parquet_rows(pq, file, list(columns) if columns is not None else None, batch_size)


def _parquet_rows(pq: Any, file: Path, columns: list[str] | None, batch_size: int) -> Iterator[Row]:
    try:
        parquet_file = pq.ParquetFile(file)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for a non-Parquet file
        raise SourceError(f"{file}: not a readable Parquet file: {exc}") from exc
    with parquet_file:
        if columns is not None:
            available = parquet_file.schema_arrow.names
            absent = [name for name in columns if name not in available]
            if absent:
                raise SourceError(
                    f"{file}: no column(s) {', '.join(map(repr, absent))}; "
                    f"the columns are {', '.join(available)}"
                )
        for batch in parquet_file.iter_batches(batch_size=batch_size, columns=columns):
            yield from batch.to_pylist()


# ------------------------------------------------------------------------------- Common Data Model


def _to_bool(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return text


def _to_int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return text


def _to_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _keep(text: str) -> str:
    return text


_CDM_CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    "int64": _to_int,
    "int32": _to_int,
    "int16": _to_int,
    "integer": _to_int,
    "double": _to_float,
    "decimal": _to_float,
    "float": _to_float,
    "boolean": _to_bool,
}


def read_cdm(folder: str | os.PathLike[str], entity: str) -> Iterator[Row]:
    """Stream one entity of a Common Data Model folder (a `model.json` plus CSV partitions).

    The entity's attributes name the columns; its partitions are read in `model.json` order as CSV
    without a header row (unless a partition's `fileFormatSettings` says `columnHeaders: true`; its
    `delimiter` is honoured too). Values are converted by attribute `dataType`: `int64`/`int32`/`int16`
    -> int, `double`/`decimal` -> float, `boolean` -> bool (`true`/`false`, any case), everything else
    (strings, GUIDs, `dateTime`, `dateTimeOffset`, `date`) stays the string as written. An empty cell is
    None. A cell that does not parse as its type is kept as the raw string, so the mapping layer can
    reject that one row instead of the whole export failing.

    A partition `location` is usually an absolute URL into the data lake. It is resolved to a file
    inside `folder`: the longest trailing part of its path that exists under `folder`
    (`.../container/Account/Part001.csv` -> `folder/Account/Part001.csv`, else `folder/Part001.csv`),
    then `folder/<entity>/<file name>`. A query string and an `@snapshot=...` suffix are ignored; a
    location that resolves to nothing is a `SourceError`. An unknown entity is a `SourceError` listing
    the entities the folder has.
    """
    root = Path(folder)
    model = _load_model(root)
    definition = _find_entity(model, entity, root)
    name = str(definition.get("name"))
    attributes = definition.get("attributes") or []
    try:
        header = [str(attribute["name"]) for attribute in attributes]
        types = [str(attribute.get("dataType", "string")).lower() for attribute in attributes]
    except (KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"{root / 'model.json'}: entity {name!r} has a malformed attribute list") from exc
    header = _check_header(header, f"{root / 'model.json'} entity {name!r}")
    convert = [_CDM_CONVERTERS.get(kind, _keep) for kind in types]
    partitions = []
    for partition in definition.get("partitions") or []:
        if not isinstance(partition, dict) or not partition.get("location"):
            raise SourceError(f"{root / 'model.json'}: entity {name!r} has a partition without a location")
        partitions.append((_resolve_location(root, name, str(partition["location"])), partition))
    return _cdm_rows(root, name, header, convert, partitions)


def _load_model(root: Path) -> dict[str, Any]:
    model_file = root / "model.json"
    if not model_file.is_file():
        raise SourceError(f"{root} is not a CDM folder: it has no model.json")
    try:
        with open(model_file, encoding="utf-8-sig") as fh:
            model = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{model_file} is not valid JSON: {exc}") from exc
    if not isinstance(model, dict) or not isinstance(model.get("entities"), list):
        raise SourceError(f"{model_file} has no 'entities' list")
    return model


def _local_entities(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in model["entities"]
        if isinstance(e, dict) and e.get("$type", "LocalEntity") == "LocalEntity" and "name" in e
    ]


def cdm_entities(folder: str | os.PathLike[str]) -> list[str]:
    """The names of the local entities a CDM folder's `model.json` declares, in order."""
    return [str(e["name"]) for e in _local_entities(_load_model(Path(folder)))]


def _find_entity(model: dict[str, Any], entity: str, root: Path) -> dict[str, Any]:
    entities = _local_entities(model)
    for candidate in entities:
        if candidate["name"] == entity:
            return candidate
    folded = [e for e in entities if str(e["name"]).casefold() == entity.casefold()]
    if len(folded) == 1:
        return folded[0]
    available = ", ".join(str(e["name"]) for e in entities) or "none"
    raise SourceError(f"{root / 'model.json'} has no entity {entity!r}; the entities are: {available}")


def _resolve_location(root: Path, entity: str, location: str) -> Path:
    parts = urlsplit(location)
    raw_path = parts.path if parts.scheme and len(parts.scheme) > 1 else location  # "C:" is no scheme
    segments = [unquote(s) for s in PurePosixPath(raw_path.replace("\\", "/")).parts if s not in ("/", "")]
    if segments:
        segments[-1] = segments[-1].split("@snapshot=", 1)[0]
    if not segments or any(s in (".", "..") for s in segments):
        raise SourceError(f"{root / 'model.json'}: partition location {location!r} cannot be resolved")
    tried: list[Path] = [root.joinpath(*segments[start:]) for start in range(len(segments))]
    tried.append(root / entity / segments[-1])
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise SourceError(
        f"{root / 'model.json'}: partition file for {location!r} not found in {root} "
        f"(looked for {', '.join(str(p.relative_to(root)) for p in tried)})"
    )


def _cdm_rows(
    root: Path,
    entity: str,
    header: list[str],
    convert: list[Callable[[str], Any]],
    partitions: list[tuple[Path, dict[str, Any]]],
) -> Iterator[Row]:
    for file, partition in partitions:
        settings = partition.get("fileFormatSettings") or {}
        delimiter = str(settings.get("delimiter") or ",")
        encoding = str(settings.get("encoding") or "utf-8-sig")
        if encoding.lower().replace("-", "") == "utf8":
            encoding = "utf-8-sig"
        yield from _csv_rows(
            functools.partial(_open_text, file, encoding),
            label=f"{file} (entity {entity!r}, partition {partition.get('name', '?')!r})",
            encoding=encoding,
            delimiter=delimiter,
            header=header,
            columns=None,
            skip_first_line=bool(settings.get("columnHeaders", False)),
            convert=convert,
        )


# ------------------------------------------------------------------------------------------ dispatch


def open_source(
    source: str | os.PathLike[str],
    *,
    entity: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Iterator[Row]:
    """Open any supported source by its name and stream its rows.

    - `*.csv` (and `*.txt`) -> `read_csv`; `*.tsv`/`*.tab` -> `read_csv` with a tab delimiter;
    - `*.jsonl`/`*.ndjson` -> `read_jsonl`; `*.csv.gz`, `*.jsonl.gz` etc. are decompressed;
    - `*.parquet`/`*.pq` -> `read_parquet`;
    - a folder with a `model.json` (or the `model.json` itself) -> `read_cdm`. The entity comes from
      `entity=`, or from a `folder::Entity` suffix, or is the folder's only entity.

    `encoding` and `delimiter` apply to CSV-like files only. Errors (unknown extension, missing file,
    ambiguous entity) are raised here, before any row is read.
    """
    text = os.fspath(source)
    if isinstance(text, str) and "::" in text:
        text, _, named = text.rpartition("::")
        if entity is not None and entity != named:
            raise SourceError(f"two different entities given: {named!r} in the path and {entity!r}")
        entity = named
    path = Path(text)
    if path.name == "model.json" and path.is_file():
        path = path.parent
    if path.is_dir():
        return _open_cdm(path, entity)
    if entity is not None:
        raise SourceError(f"an entity ({entity!r}) only applies to a CDM folder, and {path} is not a folder")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    kind = suffixes[-1] if suffixes else ""
    csv_options: dict[str, Any] = {} if encoding is None else {"encoding": encoding}
    if kind in (".csv", ".txt"):
        return read_csv(path, delimiter=delimiter, **csv_options)
    if kind in (".tsv", ".tab"):
        return read_csv(path, delimiter=delimiter or "\t", **csv_options)
    if kind in (".jsonl", ".ndjson"):
        return read_jsonl(path, **csv_options)
    if kind in (".parquet", ".pq"):
        return read_parquet(path)
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    raise SourceError(
        f"don't know how to read {path.name!r}: expected .csv, .tsv, .jsonl, .ndjson, .parquet "
        "or a CDM folder with a model.json"
    )


read_any = open_source


def _open_cdm(folder: Path, entity: str | None) -> Iterator[Row]:
    if entity is None:
        names = cdm_entities(folder)
        if len(names) != 1:
            raise SourceError(
                f"{folder} has {len(names)} entities ({', '.join(names) or 'none'}); "
                "name one with entity= or as 'folder::Entity'"
            )
        entity = names[0]
    return read_cdm(folder, entity)


# --------------------------------------------------------------------------------- bundled sample


def sample_segment_path() -> Path:
    """The bundled 3,000-profile sample segment CSV (see `autopilot_segments/data/README.md`)."""
    return _data_file("sample_segment.csv")


def sample_mapping_path() -> Path:
    """The bundled `FieldMapping.from_dict` JSON mapping for the sample segment."""
    return _data_file("sample_mapping.json")


def _data_file(name: str) -> Path:
    # The package is installed as plain files (wheel or editable), so the resource is a real path.
    return Path(str(resources.files("autopilot_segments").joinpath("data").joinpath(name)))
