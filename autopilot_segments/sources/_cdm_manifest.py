"""CDM folders described by manifests (`*.manifest.cdm.json`), as newer lake exports write them.

A manifest declares entities (`LocalEntity` with an `entityPath` to a `*.cdm.json` schema), each with
data partitions (`location`) and partition patterns (`rootLocation` + `globPattern` or
`regularExpression`), and may list sub-manifests. Patterns are matched as the object model's
`FileStatusCheckAsync` matches them: every file under the root location, as a path relative to it
starting with `/`, must match the whole expression; a glob pattern wins over a regular expression.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from ._cdm_entity import Entity, Partition, load_json
from ._cdm_format import PARQUET_TRAIT, csv_format, has_trait
from ._cdm_paths import inside, resolve_partition, resolve_relative, split_corpus_path
from ._cdm_schema import Schemas
from ._common import SourceError

_INCREMENTAL_TRAIT: Final = "is.partition.incremental"
_MAX_DEPTH: Final = 32
_NET_NAMED_GROUP: Final = re.compile(r"\(\?<(?=[A-Za-z_])")  # .NET (?<name>...) -> Python (?P<name>...)


def _load_manifest(file: Path) -> Mapping[str, Any]:
    manifest = load_json(file, "the manifest")
    if not isinstance(manifest, Mapping):
        raise SourceError(f"{file} is not a CDM manifest (a JSON object)")
    return manifest


def _manifests(
    root: Path, file: Path, depth: int = 0, seen: set[Path] | None = None
) -> Iterator[tuple[Path, Mapping[str, Any]]]:
    """The manifest and its sub-manifests, depth first."""
    seen = set() if seen is None else seen
    if depth > _MAX_DEPTH or file in seen:
        raise SourceError(f"{file}: sub-manifests refer to each other in a cycle")
    seen.add(file)
    manifest = _load_manifest(file)
    yield file, manifest
    for position, sub in enumerate(manifest.get("subManifests") or (), 1):
        definition = sub.get("definition") if isinstance(sub, Mapping) else None
        label = f"{file} sub-manifest #{position}"
        if not isinstance(definition, str) or not definition:
            raise SourceError(f"{label} has no 'definition' path")
        namespace, _ = split_corpus_path(definition)
        if namespace not in (None, "local"):
            raise SourceError(
                f"{label}: {definition!r} is in the {namespace!r} namespace, not in this folder"
            )
        path = definition if namespace is None else "/" + definition.split(":", 1)[1].lstrip("/")
        sub_file = resolve_relative(root, file.parent, path, label)
        yield from _manifests(root, sub_file, depth + 1, seen)


def _declarations(manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in manifest.get("entities") or () if isinstance(e, Mapping) and e.get("entityName")]


def _is_local(declaration: Mapping[str, Any]) -> bool:
    return bool(declaration.get("type", "LocalEntity") == "LocalEntity")


def manifest_entity_names(file: Path) -> list[str]:
    names: dict[str, None] = {}
    for _, manifest in _manifests(file.parent, file):
        for declaration in _declarations(manifest):
            if _is_local(declaration):
                names.setdefault(str(declaration["entityName"]), None)
    return list(names)


def manifest_entity(file: Path, entity: str) -> Entity:
    """One entity of a manifest (or of its sub-manifests), resolved, with every partition file found."""
    root = file.parent
    found: list[tuple[Path, Mapping[str, Any]]] = []
    for manifest_file, manifest in _manifests(root, file):
        found.extend((manifest_file, d) for d in _declarations(manifest) if d["entityName"] == entity)
    if not found:
        for manifest_file, manifest in _manifests(root, file):
            found.extend(
                (manifest_file, d)
                for d in _declarations(manifest)
                if str(d["entityName"]).casefold() == entity.casefold()
            )
    if not found:
        available = ", ".join(manifest_entity_names(file)) or "none"
        raise SourceError(f"{file} has no entity {entity!r}; the entities are: {available}")
    if len(found) > 1:
        where = ", ".join(str(m) for m, _ in found)
        raise SourceError(
            f"entity {entity!r} is declared {len(found)} times ({where}); pass the manifest to read"
        )
    manifest_file, declaration = found[0]
    name = str(declaration["entityName"])
    label = f"{manifest_file} entity {name!r}"
    if not _is_local(declaration):
        raise SourceError(
            f"{label} is a {declaration.get('type')!r}: its data is declared in the manifest it refers to "
            f"({declaration.get('entityPath') or declaration.get('entityDeclaration')!r}); read that manifest"
        )
    entity_path = declaration.get("entityPath") or declaration.get("entitySchema")
    if not isinstance(entity_path, str) or not entity_path:
        raise SourceError(f"{label} has no entityPath, so its columns are unknown")
    _check_declares_data(declaration, label)
    columns, types = Schemas(root).entity(manifest_file.parent, entity_path, label)
    partitions = _partitions(root, manifest_file.parent, name, declaration, label)
    return Entity(name, label, tuple(columns), tuple(types), tuple(partitions))


def _check_declares_data(declaration: Mapping[str, Any], label: str) -> None:
    patterns = [
        p
        for p in declaration.get("dataPartitionPatterns") or ()
        if isinstance(p, Mapping) and not has_trait(p.get("exhibitsTraits"), _INCREMENTAL_TRAIT)
    ]
    if declaration.get("dataPartitions") or patterns:
        return
    incremental = (
        declaration.get("incrementalPartitions")
        or declaration.get("incrementalPartitionPatterns")
        or declaration.get("dataPartitionPatterns")
    )
    extra = " (it only has incremental partitions, which hold changes, not the data)" if incremental else ""
    raise SourceError(f"{label} declares no data partitions{extra}: there is nothing to read")


def _partitions(
    root: Path, base: Path, entity: str, declaration: Mapping[str, Any], label: str
) -> list[Partition]:
    partitions: list[Partition] = []
    seen: set[Path] = set()
    for position, partition in enumerate(declaration.get("dataPartitions") or (), 1):
        if not isinstance(partition, Mapping) or not partition.get("location"):
            raise SourceError(f"{label} has a data partition without a location (partition #{position})")
        part_name = str(partition.get("name") or partition["location"])
        part_label = f"{label} partition {part_name!r}"
        file = resolve_partition(root, base, entity, str(partition["location"]), part_label)
        if file not in seen:
            seen.add(file)
            partitions.append(_partition(part_name, file, partition.get("exhibitsTraits"), part_label))
    patterns = [p for p in declaration.get("dataPartitionPatterns") or () if isinstance(p, Mapping)]
    unmatched: list[str] = []
    for position, pattern in enumerate(patterns, 1):
        if has_trait(pattern.get("exhibitsTraits"), _INCREMENTAL_TRAIT):
            continue  # the object model lists these as incremental partitions (changes), not data
        pattern_name = str(pattern.get("name") or f"#{position}")
        pattern_label = f"{label} partition pattern {pattern_name!r}"
        matched = 0
        for relative, file in _pattern_files(root, base, pattern, pattern_label):
            matched += 1
            if file not in seen:
                seen.add(file)
                partitions.append(_partition(relative, file, pattern.get("exhibitsTraits"), pattern_label))
        if not matched:
            unmatched.append(pattern_name)
    if not partitions:
        raise SourceError(
            f"{label}: its partition pattern(s) {', '.join(map(repr, unmatched))} match no file in the "
            "folder, so there is nothing to read"
        )
    return partitions


def _partition(name: str, file: Path, traits: Any, label: str) -> Partition:
    if has_trait(traits, PARQUET_TRAIT):
        return Partition(name, file, None)
    return Partition(name, file, csv_format(traits, label=label))


def _pattern_files(
    root: Path, base: Path, pattern: Mapping[str, Any], label: str
) -> Iterator[tuple[str, Path]]:
    """(path relative to the root location, file) of each file the pattern matches, in path order."""
    root_location = pattern.get("rootLocation")
    if not isinstance(root_location, str):
        raise SourceError(f"{label} has no rootLocation")
    namespace, path = split_corpus_path(root_location.rstrip("/") or "/")
    if namespace not in (None, "local") or "://" in root_location:
        raise SourceError(f"{label}: rootLocation {root_location!r} is not in this folder")
    relative = path if namespace is None else "/" + path.lstrip("/")
    start = resolve_relative(root, base, relative, label) if relative.strip("/") else inside(root, base)
    assert start is not None
    matcher = _matcher(pattern, label)
    if not start.is_dir():
        return
    found: list[tuple[str, Path]] = []
    for directory, _dirs, files in os.walk(start):
        for file_name in files:
            file = Path(directory, file_name)
            relative_name = "/" + file.relative_to(start).as_posix()
            if matcher.fullmatch(relative_name):
                found.append((relative_name, file))
    for relative_name, file in sorted(found):
        real = inside(root, file)
        if real is None:
            raise SourceError(f"{label}: {relative_name!r} is a link to a file outside the CDM folder")
        yield relative_name, real


def _matcher(pattern: Mapping[str, Any], label: str) -> re.Pattern[str]:
    glob = pattern.get("globPattern")
    expression = pattern.get("regularExpression")
    if isinstance(glob, str) and glob.strip():
        source, what = glob_to_regex(glob), "globPattern"
    elif isinstance(expression, str) and expression.strip():
        source, what = _NET_NAMED_GROUP.sub("(?P<", expression), "regularExpression"
    else:
        raise SourceError(f"{label} has neither a globPattern nor a regularExpression")
    try:
        return re.compile(source)
    except re.error as exc:
        raise SourceError(f"{label}: the {what} cannot be used: {exc}") from None


def glob_to_regex(pattern: str) -> str:
    """The object model's translation of a partition glob pattern into a regular expression."""
    separator = r"[/\\]"
    out = [separator]
    i = 1 if pattern[:1] in ("/", "\\") else 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == ".":
            out.append(r"\.")
        elif ch == "\\":
            out.append(separator)
        elif ch == "?":
            out.append(".")
        elif ch == "*":
            if pattern[i + 1 : i + 2] == "*":
                before = pattern[i - 1] if i > 0 else None
                after = pattern[i + 2] if i + 2 < len(pattern) else None
                if before in (None, "/", "\\") and after in (None, "/", "\\"):
                    out.append(".*")
                    if before in ("/", "\\") and after in ("/", "\\"):
                        out.append("/?")  # ** may match no folder: no double slash then
                        i += 1
                else:
                    out.append(r"[^/\\]*")
                i += 1
            else:
                out.append(r"[^/\\]*")
        else:
            out.append(ch)
        i += 1
    return "".join(out)
