"""What the CDM readers agree on: one resolved entity (columns, types, partition files and formats)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs

from ._cdm_format import CsvFormat
from ._common import SourceError


@attrs.frozen
class Partition:
    name: str
    file: Path
    format: CsvFormat | None  # None: a Parquet partition


@attrs.frozen
class Entity:
    name: str
    label: str  # "<document> entity 'Name'", for messages
    columns: tuple[str, ...]
    types: tuple[str, ...]
    partitions: tuple[Partition, ...]


def load_json(file: Path, what: str) -> Any:
    try:
        with open(file, encoding="utf-8-sig") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise SourceError(f"{what} {file} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{file} is not valid JSON: {exc}") from exc
    except OSError as exc:
        raise SourceError(f"cannot read {file}: {exc.strerror or exc}") from exc


# ------------------------------------------------------------------------------------------ values


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


# model.json dataType names, manifest dataFormat names and the CDM's own data type names, lower-cased.
_CONVERTERS: Final[dict[str, Callable[[str], Any]]] = {
    **dict.fromkeys(
        ("int64", "int32", "int16", "integer", "biginteger", "smallinteger", "tinyinteger", "byte"), _to_int
    ),
    **dict.fromkeys(("double", "decimal", "float"), _to_float),
    "boolean": _to_bool,
}


KEEP_TEXT: Final = _keep


def converter(data_type: str) -> Callable[[str], Any]:
    """The cell converter of a data type; unknown types (strings, dates, GUIDs ...) keep the text."""
    return _CONVERTERS.get(data_type.lower(), _keep)
