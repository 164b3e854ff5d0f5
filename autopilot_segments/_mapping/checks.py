"""Every problem of a `FieldMapping`'s configuration, listed at once (checked at construction)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from .._destinations.autopilot.fields import STANDARD_FIELDS, closest_standard_field
from .coerce import ValueProblem, text_converter
from .compiled import base_converter
from .dates import date_format_problems
from .fields import CUSTOM_FIELD_TYPES, CustomField, custom_field_name_problem

if TYPE_CHECKING:
    from .mapping import FieldMapping

__all__ = ["configuration_problems"]

_KEEP_CHOICES: Final = ("first", "last")
_MAPPABLE_FIELDS: Final = tuple(f for f in STANDARD_FIELDS if f != "Email")


def configuration_problems(mapping: FieldMapping) -> list[str]:
    problems: list[str] = []
    if not isinstance(mapping.email, str) or not mapping.email:
        problems.append("email must name the source column holding the email address, e.g. email='email'")
    targets: dict[str, str] = {}  # Autopilot field -> what feeds it, to find two sources for one field

    def claim(target: str, source: str, what: str = "field") -> None:
        if target in targets:
            problems.append(
                f"{source} and {targets[target]} both feed the Autopilot {what} {target!r}; keep one of them"
            )
        else:
            targets[target] = source

    claim("Email", "email=")
    for field, column in mapping.fields.items():
        if not isinstance(column, str) or not column:
            problems.append(f"fields[{field!r}] must name a source column (a non-empty string)")
        if field == "Email":
            problems.append("'Email' cannot be in fields; the email column is given with email=<column>")
            continue
        if field == "unsubscribed":
            problems.append(
                "'unsubscribed' cannot be in fields; use unsubscribed=<column> together with "
                "allow_resubscribe=True"
            )
            continue
        if field not in STANDARD_FIELDS:
            suggestion = closest_standard_field(str(field))
            hint = f"did you mean {suggestion}?" if suggestion else "use a custom field for it"
            problems.append(f"{field!r} is not an Autopilot standard field; {hint}")
            continue
        claim(field, f"fields[{field!r}]")
    for field in mapping.defaults:
        if field not in _MAPPABLE_FIELDS:
            suggestion = closest_standard_field(str(field))
            hint = f"did you mean {suggestion}? " if suggestion and suggestion != "Email" else ""
            problems.append(
                f"defaults[{field!r}]: {hint}defaults are for standard fields; custom fields take default="
            )
        else:
            try:
                text_converter(truncate=mapping.truncate_long_values)(mapping.defaults[field])
            except ValueProblem as exc:
                problems.append(f"defaults[{field!r}] cannot be sent: {exc}")
    custom_keys = set()
    declarations: Sequence[object] = mapping.custom
    for position, declared in enumerate(declarations, 1):
        if not isinstance(declared, CustomField):
            problems.append(f"custom[{position}] must be a CustomField, not {type(declared).__name__}")
            continue
        label = f"custom field {declared.name!r}"
        name_problem = custom_field_name_problem(declared.name)
        if name_problem:
            problems.append(f"{label}: {name_problem}")
        if declared.type not in CUSTOM_FIELD_TYPES:
            close = _closest_type(str(declared.type))
            hint = f"did you mean {close!r}?" if close else f"use one of {', '.join(CUSTOM_FIELD_TYPES)}"
            problems.append(f"{label}: unknown type {declared.type!r}; {hint}")
        if declared.source is not None and (not isinstance(declared.source, str) or not declared.source):
            problems.append(f"{label}: source must name a column (a non-empty string)")
        if name_problem is None:
            claim(declared.name, f"custom field {declared.name!r} ({declared.type})", "custom field")
            custom_keys.add(declared.key)
        formats_problems = _formats_problems(declared)
        problems.extend(f"{label}: {problem}" for problem in formats_problems)
        if declared.default is not None and declared.type in CUSTOM_FIELD_TYPES and not formats_problems:
            try:
                base_converter(declared.type, declared.formats)(declared.default)
            except ValueProblem as exc:
                problems.append(f"{label}: the default cannot be used: {exc}")
        transform: object = declared.transform
        if transform is not None and not callable(transform):
            problems.append(f"{label}: transform must be callable")
    transforms: Mapping[str, object] = mapping.transforms
    for target, transform in transforms.items():
        if target not in STANDARD_FIELDS and target not in custom_keys:
            problems.append(
                f"transforms[{target!r}]: transforms are keyed by standard field name, 'Email' or a custom "
                "field key like 'integer--Loyalty--Points'"
            )
        elif not callable(transform):
            problems.append(f"transforms[{target!r}] must be callable")
    unsubscribed: object = mapping.unsubscribed
    if unsubscribed is not None:
        if not isinstance(unsubscribed, str) or not unsubscribed:
            problems.append("unsubscribed must name a source column of true/false values")
        if mapping.allow_resubscribe is not True:
            problems.append(
                "unsubscribed is mapped, and a false value in it re-subscribes people who opted out; "
                "pass allow_resubscribe=True if that is intended, or drop unsubscribed="
            )
    if mapping.keep not in _KEEP_CHOICES:
        problems.append(f"keep must be 'first' or 'last', not {mapping.keep!r}")
    for option in ("allow_resubscribe", "lowercase_local_part", "omit_empty", "truncate_long_values"):
        if not isinstance(getattr(mapping, option), bool):
            problems.append(f"{option} must be true or false")
    return problems


def _formats_problems(declared: CustomField) -> list[str]:
    formats: object = declared.formats
    if formats == ():
        return []
    if declared.type != "date":
        return ["formats only apply to date fields"]
    return date_format_problems(formats)


def _closest_type(name: str) -> str | None:
    close = difflib.get_close_matches(name.lower(), list(CUSTOM_FIELD_TYPES), n=1, cutoff=0.5)
    return close[0] if close else None
