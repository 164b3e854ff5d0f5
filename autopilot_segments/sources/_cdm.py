"""Common Data Model folders (model.json) as exported by customer-data platforms."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from ._common import Row, SourceError
from ._text import _check_header, _csv_rows, _open_text

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
