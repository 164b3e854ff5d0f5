"""The preflight: the mapping's custom fields against the account's definitions, before any write.

Autopilot keeps a custom field's first type; a mapping that sends another type has every contact
refused. One `GET /contacts/custom_fields` finds that out before anything is written. The exporter
runs it lazily (only before its first write: a stateful re-run that sends nothing makes no extra
call), `plan(check_account=True)` reports it, and the CLI's `check` command calls `check_custom_fields`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from ._bisection import FATAL_ERRORS
from ._errors import APIConnectionError, APIError, ConfigurationError

__all__ = [
    "FieldConflict",
    "Preflight",
    "check_custom_fields",
    "conflict_error",
    "describe_conflicts",
    "has_custom_fields",
]

_log = logging.getLogger("autopilot_segments.exporter")


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


def conflict_error(conflicts: Sequence[FieldConflict]) -> ConfigurationError:
    return ConfigurationError(
        "the mapping's custom fields conflict with the account's definitions, so Autopilot would refuse "
        f"every contact (nothing was written): {describe_conflicts(conflicts)}. A custom field keeps the "
        "type it was first stored with: give the mapping the account's type, or map to a new field name"
    )


@attrs.define
class Preflight:
    """Runs the check once, when the export is about to write for the first time."""

    client: object
    mapping: object
    done: bool = False

    def __call__(self) -> None:
        """Raise `ConfigurationError` on a conflict; an unreadable definition list only logs a warning."""
        if self.done:
            return
        self.done = True
        try:
            conflicts = check_custom_fields(self.client, self.mapping)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            _log.warning("could not read the account's custom fields to check the mapping: %s", error)
            return
        if conflicts:
            raise conflict_error(conflicts)
