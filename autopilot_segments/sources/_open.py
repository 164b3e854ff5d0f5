"""`open_source`: pick the reader from a path, and the bundled sample's paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ._cdm import MANIFEST_SUFFIX, cdm_entities, read_cdm
from ._common import Row, SourceError
from ._excel import EXCEL_SUFFIXES, read_excel
from ._frames import read_parquet
from ._text import read_csv, read_jsonl

# ------------------------------------------------------------------------------------------ dispatch


def open_source(
    source: str | os.PathLike[str],
    *,
    entity: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    format: str | None = None,
    sheet: str | int | None = None,
) -> Iterator[Row]:
    """Open any supported source by its name and stream its rows.

    - `*.csv` (and `*.txt`) -> `read_csv`; `*.tsv`/`*.tab` -> `read_csv` with a tab delimiter;
    - `*.jsonl`/`*.ndjson` -> `read_jsonl`; gzip-compressed files (`*.csv.gz`, or any name) are
      decompressed;
    - `*.parquet`/`*.pq` -> `read_parquet`;
    - `*.xlsx`/`*.xlsm` -> `read_excel` (`sheet=` picks the sheet);
    - a CDM folder (with a `model.json` or a `*.manifest.cdm.json`), or such a file itself -> `read_cdm`.
      The entity comes from `entity=`, or from a `folder::Entity` suffix, or is the folder's only entity.

    `format` (`csv`, `tsv`, `jsonl`, `parquet` or `excel`) overrides the extension, for a file whose
    name does not say what it is. `encoding` and `delimiter` apply to CSV-like files only, `sheet` to
    workbooks. Errors (unknown extension or format, missing file, ambiguous entity) are raised here,
    before any row is read.
    """
    text = os.fspath(source)
    if isinstance(text, str) and "::" in text:
        text, _, named = text.rpartition("::")
        if entity is not None and entity != named:
            raise SourceError(f"two different entities given: {named!r} in the path and {entity!r}")
        entity = named
    path = Path(text)
    lowered = path.name.lower()
    if path.is_dir() or (path.is_file() and (lowered == "model.json" or lowered.endswith(MANIFEST_SUFFIX))):
        return _open_cdm(path, entity)
    if entity is not None:
        raise SourceError(f"an entity ({entity!r}) only applies to a CDM folder, and {path} is not a folder")
    if format is not None:
        if format.lower() not in FORMATS:
            raise SourceError(f"unknown format {format!r}: expected one of {', '.join(sorted(FORMATS))}")
        kind = FORMATS[format.lower()]
    else:
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes.pop()
        kind = suffixes[-1] if suffixes else ""
    if sheet is not None and kind not in EXCEL_SUFFIXES:
        raise SourceError(
            f"a sheet ({sheet!r}) only applies to an Excel workbook (.xlsx), and {path} is not one"
        )
    csv_options: dict[str, Any] = {} if encoding is None else {"encoding": encoding}
    if kind in EXCEL_SUFFIXES:
        return read_excel(path, sheet=sheet)
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
        f"don't know how to read {path.name!r}: expected .csv, .tsv, .jsonl, .ndjson, .parquet, .xlsx "
        "or a CDM folder (model.json or *.manifest.cdm.json), or name the format: format='csv'"
    )


read_any = open_source

# --format names -> the extension they stand for.
FORMATS = {
    "csv": ".csv",
    "tsv": ".tsv",
    "jsonl": ".jsonl",
    "ndjson": ".jsonl",
    "parquet": ".parquet",
    "excel": ".xlsx",
    "xlsx": ".xlsx",
}


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
