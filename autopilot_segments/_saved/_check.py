"""`check`: a saved export against the account's custom fields and its sources' columns, read-only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from .._destinations.autopilot.models import CustomFieldDefinition
from .._destinations.autopilot.preflight import check_custom_fields
from .._errors import ConfigurationError
from .._mapping.mapping import FieldMapping
from ._result import CheckResult
from ._rows import open_rows

if TYPE_CHECKING:
    from ._exports import SavedExport

__all__ = ["check_export", "custom_field_findings"]


@attrs.frozen
class _Known:
    """Definitions read once (one call per connection), handed to the preflight's comparison."""

    definitions: tuple[CustomFieldDefinition, ...]

    def custom_fields(self) -> tuple[CustomFieldDefinition, ...]:
        return self.definitions


def custom_field_findings(
    mapping: FieldMapping, definitions: Iterable[CustomFieldDefinition]
) -> tuple[list[str], list[str]]:
    """(problems, notes) comparing the mapping's custom fields with the account's definitions.

    A field the account has with another type is a problem (the exporter's preflight comparison:
    Autopilot keeps a field's first type, so every value would be refused), and so is one the account
    spells with other capitals; one it lacks is a note (the first export creates it).
    """
    known = _Known(tuple(definitions))
    problems = [
        f"{conflict.describe()}: Autopilot keeps a field's first type, so every value would be refused; "
        f"change the mapping's type to {conflict.account_type!r} (or use another field name)"
        for conflict in check_custom_fields(known, mapping)
    ]
    defined = {d.name for d in known.definitions}
    folded = {name.casefold(): name for name in defined}
    notes: list[str] = []
    for field in mapping.custom:
        if field.name in defined:
            continue
        twin = folded.get(field.name.casefold())
        if twin is not None:
            problems.append(
                f"custom field {field.name!r}: the account names it {twin!r}; use that exact name, or "
                "the export creates a second field"
            )
        else:
            notes.append(
                f"custom field {field.name!r} ({field.type}) is not in the account yet: the first "
                "export creates it"
            )
    return problems, notes


def check_export(export: SavedExport, definitions: Iterable[CustomFieldDefinition]) -> CheckResult:
    problems, notes = custom_field_findings(export.mapping, definitions)
    for spec in export.segments:
        label = spec.name if spec.name is not None else f"segments by {spec.filter_column!r}"
        try:
            with open_rows(spec) as rows:
                first = next(rows, None)
            if first is None:
                problems.append(f"segment {label!r}: {spec.describe} has no rows (an export would stop)")
                continue
            if spec.filter_column is not None and spec.filter_column not in first:
                shown = ", ".join(map(str, list(first)[:30]))
                problems.append(
                    f"segment {label!r}: {spec.describe} has no filter column {spec.filter_column!r}; "
                    f"its columns are {shown}"
                )
            export.mapping.check_columns(first.keys())
        except ConfigurationError as exc:
            problems.extend(f"segment {label!r}: {p}" for p in exc.problems)
        except Exception as exc:  # a source that cannot be opened or read: say so, check the others
            problems.append(f"segment {label!r}: {type(exc).__name__}: {exc}")
    return CheckResult(export=export.name, problems=tuple(problems), notes=tuple(notes))
