"""Common Data Model folders (a `model.json`, or `*.manifest.cdm.json` manifests) as lakes export them."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._cdm_entity import KEEP_TEXT, Entity, Partition, converter
from ._cdm_format import records
from ._cdm_manifest import manifest_entity, manifest_entity_names
from ._cdm_model import entity_names, load_model, model_entity
from ._common import Row, SourceError
from ._text import _check_header, _open_text, _rows

MANIFEST_SUFFIX = ".manifest.cdm.json"


def cdm_document(source: str | os.PathLike[str]) -> Path:
    """The `model.json` or root manifest a CDM folder (or such a file itself) is read from."""
    path = Path(source)
    if path.is_file():
        if path.name.lower() == "model.json" or path.name.lower().endswith(MANIFEST_SUFFIX):
            return path
        raise SourceError(f"{path} is neither a model.json nor a *{MANIFEST_SUFFIX} file")
    if not path.is_dir():
        raise SourceError(f"no such CDM folder: {path}")
    model = path / "model.json"
    manifests = sorted(p for p in path.iterdir() if p.name.lower().endswith(MANIFEST_SUFFIX) and p.is_file())
    if model.is_file() and manifests:
        raise SourceError(
            f"{path} has both a model.json and {len(manifests)} manifest(s); pass the one to read "
            f"(e.g. {model} or {manifests[0]})"
        )
    if model.is_file():
        return model
    if len(manifests) == 1:
        return manifests[0]
    if manifests:
        names = ", ".join(p.name for p in manifests)
        raise SourceError(f"{path} has {len(manifests)} manifests ({names}); pass the one to read")
    raise SourceError(f"{path} is not a CDM folder: it has no model.json and no *{MANIFEST_SUFFIX} manifest")


def _is_model(document: Path) -> bool:
    return document.name.lower() == "model.json"


def cdm_entities(folder: str | os.PathLike[str]) -> list[str]:
    """The names of the entities a CDM folder declares, in order.

    For a `model.json`: its LocalEntity names. For a manifest: its LocalEntity declarations, then those
    of its sub-manifests (depth first).
    """
    document = cdm_document(folder)
    if _is_model(document):
        return entity_names(load_model(document))
    return manifest_entity_names(document)


def read_cdm(folder: str | os.PathLike[str], entity: str) -> Iterator[Row]:
    """Stream one entity of a Common Data Model folder, reading it as Microsoft's CDM object model does.

    `folder` is a CDM folder (with a `model.json` or one `*.manifest.cdm.json`), or such a file. The
    entity's attributes name the columns; its partitions are read in the order declared (partition
    patterns: matched files in path order), in the format the `is.partition.format.CSV` trait and
    `fileFormatSettings` give (see docs/sources.md). Values are converted by attribute data type:
    integers -> int, `double`/`decimal`/`float` -> float, `boolean` -> bool; everything else stays the
    text as written. An empty cell is None; a cell that does not parse as its type is kept as text, so
    the mapping rejects that row alone.

    Everything is resolved at the call: the entity, its schema, every partition file (which must lie
    inside the folder) and every format setting. Whatever cannot be read exactly (an entity without
    partitions, a ReferenceEntity, an unknown format argument, a schema that needs the standard corpus)
    is a `SourceError` saying what and why.
    """
    document = cdm_document(folder)
    resolved = model_entity(document, entity) if _is_model(document) else manifest_entity(document, entity)
    return _entity_rows(resolved)


def _entity_rows(entity: Entity) -> Iterator[Row]:
    header = _check_header(list(entity.columns), entity.label)
    convert: list[Callable[[str], Any]] | None = [converter(kind) for kind in entity.types]
    if all(fn is KEEP_TEXT for fn in convert or ()):
        convert = None  # text columns only: no call per cell
    for partition in entity.partitions:
        if partition.format is None:
            yield from _parquet_rows(entity, partition)
        else:
            yield from _csv_partition_rows(entity, partition, header, convert)


def _csv_partition_rows(
    entity: Entity, partition: Partition, header: list[str], convert: list[Callable[[str], Any]] | None
) -> Iterator[Row]:
    fmt = partition.format
    assert fmt is not None
    label = f"{partition.file} (entity {entity.name!r}, partition {partition.name!r})"
    with _open_text(partition.file, fmt.encoding) as fh:
        reader = None
        try:
            reader = records(fh, fmt)
            if fmt.column_headers:
                _check_header_row(next((cells for cells in reader if cells), None), header, label)
            yield from _rows(reader, header, None, label, convert)
        except UnicodeDecodeError as exc:
            line = reader.line_num + 1 if reader is not None else 1
            raise SourceError(f"{label}: not valid {fmt.encoding} text near line {line}") from exc
        except csv.Error as exc:
            line = reader.line_num if reader is not None else 1
            raise SourceError(f"{label}: malformed CSV near line {line}: {exc}") from exc


def _check_header_row(cells: list[str] | None, header: list[str], label: str) -> None:
    """The header row of a partition with columnHeaders must name the attributes, in order.

    Columns are bound by position, so a header that names other columns, or has another width, means
    the format settings (delimiter, quoting) or the schema do not fit the file. Cell values are never
    quoted: a misdeclared header row may be a data row.
    """
    if cells is None:
        return
    names = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
    if len(names) != len(header):
        raise SourceError(
            f"{label}: the header row has {len(names)} cells but the entity has {len(header)} attributes "
            "(wrong delimiter or quoting in the format settings, or another schema?)"
        )
    for position, (name, expected) in enumerate(zip(names, header, strict=True), 1):
        if name.casefold() != expected.casefold():
            raise SourceError(
                f"{label}: header cell {position} does not name the attribute {expected!r}; columns are "
                "read by position, so the file does not fit the entity's schema"
            )


def _parquet_rows(entity: Entity, partition: Partition) -> Iterator[Row]:
    from ._frames import read_parquet

    label = f"{partition.file} (entity {entity.name!r}, partition {partition.name!r})"
    rows = read_parquet(partition.file)
    first = True
    selection: list[tuple[str, str]] = []
    for row in rows:
        if first:
            by_fold = {str(key).casefold(): key for key in row}
            missing = [c for c in entity.columns if c not in row and c.casefold() not in by_fold]
            if missing:
                raise SourceError(
                    f"{label}: no column(s) {', '.join(map(repr, missing))} in the Parquet file"
                )
            selection = [(c if c in row else by_fold[c.casefold()], c) for c in entity.columns]
            first = False
        yield {name: row[key] for key, name in selection}
