"""The preflight: the mapping's custom fields against the account's definitions, before any write.

Autopilot keeps a custom field's first type; a mapping that sends another type has every contact
refused. One `GET /contacts/custom_fields` finds that out before anything is written. It is Autopilot's
side of `Destination.field_conflicts` (the exporter runs that lazily, only before its first write: a
stateful re-run that sends nothing makes no extra call; `plan(check_account=True)` reports it), and
the CLI's `check` command calls `check_custom_fields`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import attrs

__all__ = [
    "FieldConflict",
    "check_custom_fields",
    "describe_conflicts",
    "has_custom_fields",
]


class _Definition(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def field_type(self) -> str: ...


class _FieldReader(Protocol):
    def custom_fields(self) -> Sequence[_Definition]: ...


@attrs.frozen(kw_only=True)
class FieldConflict:
    """A custom field the mapping sends with one type while the account defines it with another."""

    name: str
    mapping_type: str
    account_type: str

    def describe(self) -> str:
        return (
            f"custom field {self.name!r}: the mapping sends {self.mapping_type}, "
            f"the account defines it as {self.account_type}"
        )


def _custom_fields(mapping: object) -> Sequence[Any]:
    fields = getattr(mapping, "custom", ())
    return fields if isinstance(fields, (list, tuple)) else ()


def has_custom_fields(mapping: object) -> bool:
    """Whether the mapping sends custom fields (then the preflight makes its one read)."""
    return bool(_custom_fields(mapping))


def check_custom_fields(client: object, mapping: object) -> list[FieldConflict]:
    """The mapping's custom fields (name and type) that conflict with the account's definitions.

    One `GET /contacts/custom_fields` (none when the mapping has no custom fields, or the client cannot
    read definitions). Names are compared exactly, types ignoring case. API errors propagate.
    """
    fields = _custom_fields(mapping)
    reader = getattr(client, "custom_fields", None)
    if not fields or not callable(reader):
        return []
    # Autopilot's definitions (name, field_type); another destination's, without a field_type, are
    # not comparable with the mapping's Autopilot types and are left to that destination.
    defined = {
        str(d.name): d.field_type
        for d in reader()
        if isinstance(getattr(d, "field_type", None), str) and isinstance(getattr(d, "name", None), str)
    }
    conflicts: list[FieldConflict] = []
    for field in fields:
        account_type = defined.get(field.name)
        if account_type and account_type.lower() != str(field.type).lower():
            conflicts.append(
                FieldConflict(name=field.name, mapping_type=str(field.type), account_type=account_type)
            )
    return conflicts


def describe_conflicts(conflicts: Sequence[FieldConflict]) -> str:
    return "; ".join(c.describe() for c in conflicts)
