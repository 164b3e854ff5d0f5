"""Entity schemas of a manifest folder (`*.cdm.json`): the entity's columns and their data types.

Resolution goes as far as the CDM object model's does for what exports write:

- a resolved schema (what `CreateResolvedManifestAsync` and lake exports write): a flat `hasAttributes`
  list of type attributes with `dataFormat`;
- an authored schema: type attributes with `dataType` (a name or a `dataTypeReference`), attribute
  groups (inline with `members`, or by name from the same or an imported local document), and
  `extendsEntity` (the base entity's attributes come first; `CdmEntity`, the empty root of the CDM
  standards, adds none).

What needs the object model's full resolution is refused with a `SourceError` naming it: entity
attributes (relationships, whose foreign-key columns depend on resolution guidance), projections,
and definitions that only exist in the CDM standard corpus (`cdm:/...`), which is not in the folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ._cdm_entity import load_json
from ._cdm_paths import resolve_relative, split_corpus_path
from ._common import SourceError

_EMPTY_BASES: Final = frozenset({"CdmEntity"})
_MAX_DEPTH: Final = 32


class Schemas:
    """Loads and caches the `*.cdm.json` documents of one CDM folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._documents: dict[Path, Mapping[str, Any]] = {}

    def document(self, file: Path, label: str) -> Mapping[str, Any]:
        if file not in self._documents:
            if not file.is_file():
                raise SourceError(f"{label}: the schema document {file} does not exist")
            data = load_json(file, "the schema document")
            if not isinstance(data, Mapping):
                raise SourceError(f"{file} is not a CDM document (a JSON object)")
            self._documents[file] = data
        return self._documents[file]

    def local_path(self, base: Path, corpus_path: str, label: str) -> Path | None:
        """The file a document path names in this folder, or None for another namespace (`cdm:/...`)."""
        namespace, path = split_corpus_path(corpus_path)
        if namespace not in (None, "local"):
            return None
        relative = path if namespace is None else "/" + path.lstrip("/")
        return resolve_relative(self.root, base, relative, label)

    def entity(self, base: Path, entity_path: str, label: str) -> tuple[list[str], list[str]]:
        """(column names, data types) of the entity an `entityPath` (`Account.cdm.json/Account`) names."""
        document_path, sep, name = entity_path.rpartition("/")
        if not sep or not document_path.lower().endswith(".cdm.json"):
            raise SourceError(
                f"{label}: entityPath {entity_path!r} is not '<document>.cdm.json/<entity name>'"
            )
        namespace, _ = split_corpus_path(document_path)
        if namespace is None and document_path.startswith("/"):
            document_path = document_path[1:]  # as the object model does: relative to the manifest
        file = self.local_path(base, document_path, label)
        if file is None:
            raise SourceError(
                f"{label}: the entity schema {entity_path!r} is in the {namespace!r} namespace, not in this "
                "folder; resolve the manifest with the CDM object model (CreateResolvedManifestAsync) so the "
                "folder holds the resolved schema"
            )
        found = self._find(file, name, "entityName", label, 0)
        if found is None:
            raise SourceError(f"{label}: {file} defines no entity {name!r}")
        columns: list[str] = []
        types: list[str] = []
        self._entity_attributes(found[0], found[1], columns, types, f"{label} (schema {file.name})", 0)
        if not columns:
            raise SourceError(f"{label}: the entity schema {entity_path!r} has no attributes")
        return columns, types

    def _find(
        self, file: Path, name: str, key: str, label: str, depth: int
    ) -> tuple[Mapping[str, Any], Path] | None:
        """The definition `name` (by `key`) in `file` or, failing that, in its imports; None if absent.

        A definition that is in none of the folder's documents, while some import lies outside the folder
        (`cdm:/...`), raises a `SourceError` naming those imports.
        """
        elsewhere: list[str] = []
        found = self._search(file, name, key, label, depth, set(), elsewhere)
        if found is None and elsewhere:
            raise SourceError(
                f"{label}: {name!r} is not defined in this folder; it may come from "
                f"{', '.join(map(repr, dict.fromkeys(elsewhere)))}, which the folder does not hold. "
                "Resolve the manifest with the CDM object model (CreateResolvedManifestAsync) so the "
                "folder holds resolved schemas"
            )
        return found

    def _search(
        self, file: Path, name: str, key: str, label: str, depth: int, seen: set[Path], elsewhere: list[str]
    ) -> tuple[Mapping[str, Any], Path] | None:
        if depth > _MAX_DEPTH or file in seen:
            return None
        seen.add(file)
        document = self.document(file, label)
        short = name.rsplit("/", 1)[-1]
        for definition in document.get("definitions") or ():
            if isinstance(definition, Mapping) and definition.get(key) == short:
                return definition, file
        for item in document.get("imports") or ():
            corpus_path = (item.get("corpusPath") or item.get("uri")) if isinstance(item, Mapping) else None
            if not isinstance(corpus_path, str):
                continue
            imported = self.local_path(file.parent, corpus_path, label)
            if imported is None or not imported.is_file():
                elsewhere.append(corpus_path)  # another namespace, or a document the folder lacks
                continue
            found = self._search(imported, name, key, label, depth + 1, seen, elsewhere)
            if found is not None:
                return found
        return None

    def _entity_attributes(
        self,
        entity: Mapping[str, Any],
        file: Path,
        columns: list[str],
        types: list[str],
        label: str,
        depth: int,
    ) -> None:
        if depth > _MAX_DEPTH:
            raise SourceError(f"{label}: entities extend each other too deeply (a cycle?)")
        base = entity.get("extendsEntity")
        if base is not None:
            base_name = _reference_name(base, "entityReference", f"{label}: extendsEntity")
            if base_name not in _EMPTY_BASES:
                found = self._find(file, base_name, "entityName", label, 0)
                if found is None:
                    raise SourceError(f"{label}: the base entity {base_name!r} is not defined")
                self._entity_attributes(found[0], found[1], columns, types, label, depth + 1)
        self._attributes(entity.get("hasAttributes") or (), file, columns, types, label, depth)

    def _attributes(
        self, items: Any, file: Path, columns: list[str], types: list[str], label: str, depth: int
    ) -> None:
        if depth > _MAX_DEPTH:
            raise SourceError(f"{label}: attribute groups nest too deeply (a cycle?)")
        for item in items:
            if isinstance(item, str):
                raise SourceError(f"{label}: the attribute reference {item!r} needs the CDM object model")
            if not isinstance(item, Mapping):
                raise SourceError(f"{label}: an attribute is not an object")
            if "attributeGroupReference" in item:
                group = item["attributeGroupReference"]
                if isinstance(group, Mapping) and "members" in group:
                    self._attributes(group["members"] or (), file, columns, types, label, depth + 1)
                    continue
                group_name = _reference_name(group, "attributeGroupReference", f"{label}: attribute group")
                found = self._find(file, group_name, "attributeGroupName", label, 0)
                if found is None:
                    raise SourceError(f"{label}: the attribute group {group_name!r} is not defined")
                self._attributes(found[0].get("members") or (), found[1], columns, types, label, depth + 1)
            elif "entity" in item:
                raise SourceError(
                    f"{label}: attribute {item.get('name')!r} is an entity attribute (a relationship), whose "
                    "columns depend on the object model's resolution; read a resolved manifest "
                    "(CreateResolvedManifestAsync) instead"
                )
            elif "projection" in item or "resolutionGuidance" in item:
                raise SourceError(
                    f"{label}: attribute {item.get('name')!r} needs the object model's resolution"
                )
            elif isinstance(item.get("name"), str) and item["name"]:
                columns.append(item["name"])
                types.append(_data_type(item, label))
            else:
                raise SourceError(f"{label}: an attribute has no name")


def _reference_name(value: Any, key: str, label: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "source" in value or "operations" in value:
            raise SourceError(f"{label} is a projection, which needs the CDM object model's resolution")
        inner = value.get(key)
        if isinstance(inner, str):
            return inner
    raise SourceError(f"{label}: a reference that cannot be resolved here ({type(value).__name__})")


def _data_type(attribute: Mapping[str, Any], label: str) -> str:
    data_format = attribute.get("dataFormat")
    if isinstance(data_format, str):
        return data_format
    data_type = attribute.get("dataType")
    if data_type is None:
        return "string"
    if isinstance(data_type, str):
        return data_type
    if isinstance(data_type, Mapping) and isinstance(data_type.get("dataTypeReference"), str):
        return str(data_type["dataTypeReference"])
    raise SourceError(f"{label}: attribute {attribute.get('name')!r} has a data type that cannot be read")
