"""CDM folders described by a `model.json` (Power BI dataflows, Dataverse / Synapse Link exports)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._cdm_entity import Entity, Partition, load_json
from ._cdm_format import CSV_TRAIT, PARQUET_TRAIT, csv_format, has_trait
from ._cdm_paths import resolve_partition
from ._common import SourceError


def load_model(file: Path) -> dict[str, Any]:
    model = load_json(file, "the model file")
    if not isinstance(model, dict) or not isinstance(model.get("entities"), list):
        raise SourceError(f"{file} has no 'entities' list")
    return model


def _kind(entity: Mapping[str, Any]) -> str:
    return str(entity.get("$type", "LocalEntity"))


def entity_names(model: Mapping[str, Any]) -> list[str]:
    """The LocalEntity names, in order (ReferenceEntity entries hold no data here)."""
    return [
        str(e["name"])
        for e in model["entities"]
        if isinstance(e, Mapping) and _kind(e) == "LocalEntity" and "name" in e
    ]


def _find(model: Mapping[str, Any], entity: str, file: Path) -> Mapping[str, Any]:
    named = [e for e in model["entities"] if isinstance(e, Mapping) and "name" in e]
    exact = [e for e in named if e["name"] == entity]
    matches = exact or [e for e in named if str(e["name"]).casefold() == entity.casefold()]
    if len(matches) == 1:
        found = matches[0]
        if _kind(found) == "ReferenceEntity":
            source = found.get("source") or found.get("modelId") or "another model"
            raise SourceError(
                f"{file}: entity {found['name']!r} is a ReferenceEntity: its data belongs to {source!r}, "
                "not to this folder; read that model's folder instead"
            )
        if _kind(found) != "LocalEntity":
            raise SourceError(f"{file}: entity {found['name']!r} has the unknown $type {_kind(found)!r}")
        return found
    available = ", ".join(entity_names(model)) or "none"
    raise SourceError(f"{file} has no entity {entity!r}; the entities are: {available}")


def model_entity(file: Path, entity: str) -> Entity:
    """One LocalEntity of a model.json, with its partitions resolved and their formats checked."""
    root = file.parent
    model = load_model(file)
    definition = _find(model, entity, file)
    name = str(definition["name"])
    label = f"{file} entity {name!r}"
    attributes = definition.get("attributes") or []
    try:
        columns = tuple(str(attribute["name"]) for attribute in attributes)
        types = tuple(str(attribute.get("dataType", "string")) for attribute in attributes)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"{label} has a malformed attribute list") from exc
    if not columns:
        raise SourceError(f"{label} declares no attributes, so its columns are unknown")
    raw_partitions = definition.get("partitions")
    if not raw_partitions:
        raise SourceError(
            f"{label} declares no partitions: it has no data files, so there is nothing to read "
            "(was the export still running, or is the data elsewhere?)"
        )
    entity_settings = definition.get("fileFormatSettings")
    partitions = []
    for position, partition in enumerate(raw_partitions, 1):
        if not isinstance(partition, Mapping) or not partition.get("location"):
            raise SourceError(f"{label} has a partition without a location (partition #{position})")
        part_name = str(partition.get("name") or f"#{position}")
        part_label = f"{label} partition {part_name!r}"
        traits = partition.get("cdm:traits")
        location = str(partition["location"])
        file_path = resolve_partition(root, root, name, location, part_label)
        if has_trait(traits, PARQUET_TRAIT):
            fmt = None
        else:
            if not has_trait(traits, CSV_TRAIT) and _is_parquet_name(file_path, partition):
                fmt = None
            else:
                fmt = csv_format(
                    traits, (partition.get("fileFormatSettings"), entity_settings), label=part_label
                )
        partitions.append(Partition(part_name, file_path, fmt))
    return Entity(name, label, columns, types, tuple(partitions))


def _is_parquet_name(file: Path, partition: Mapping[str, Any]) -> bool:
    settings = partition.get("fileFormatSettings")
    return file.suffix.lower() == ".parquet" and not settings
