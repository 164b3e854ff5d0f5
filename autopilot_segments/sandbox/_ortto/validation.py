"""What the Ortto sandbox accepts: field ids, the value each field type takes, and a merge request's shape."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "BUILT_IN_FIELDS",
    "CUSTOM_FIELD_TYPES",
    "MAX_BODY_BYTES",
    "MAX_PEOPLE",
    "RequestProblem",
    "check_value",
    "custom_field_id",
    "field_kind",
]

MAX_PEOPLE: Final = 100
MAX_BODY_BYTES: Final = 2 * 1024 * 1024
MAX_MERGE_BY: Final = 3
MAX_CUSTOM_FIELDS: Final = 100
_INT64 = (-(2**63), 2**63 - 1)

# Built-in person fields and their kinds (the id's prefix, except where Ortto's own id says otherwise).
BUILT_IN_FIELDS: Final[dict[str, str]] = {
    "str::first": "str",
    "str::last": "str",
    "str::email": "email",
    "str::ei": "str",
    "str::person_id": "person_id",
    "phn::phone": "phn",
    "geo::city": "geo",
    "geo::country": "geo",
    "geo::region": "geo",
    "str::postal": "str",
    "dtz::b": "dtz",
    "str::language": "str",
    "bol::gdpr": "bol",
    "bol::p": "bol",
    "bol::sp": "bol",
}
# The `type` of POST /person/custom-field/create -> the prefix of the field id the sandbox makes. Real
# accounts disagree on some prefixes (docs/ortto.md), which is why clients must read ids back.
CUSTOM_FIELD_TYPES: Final[dict[str, str]] = {
    "text": "str",
    "large_text": "txt",
    "integer": "int",
    "decimal": "dec",
    "boolean": "bol",
    "date": "dtz",
    "phone": "phn",
}
_KINDS: Final = frozenset({"str", "txt", "int", "dec", "bol", "dtz", "phn", "geo"})
_CUSTOM_ID = re.compile(r"(?P<kind>[a-z]{3}):cm:(?P<name>[a-z0-9]+(?:-[a-z0-9]+)*)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_DIGITS = re.compile(r"\d{1,15}")


class RequestProblem(Exception):
    """The request as a whole is refused (400), whatever the per-person switch says."""


def custom_field_id(kind: str, name: str) -> str:
    """`{kind}:cm:{kebab-name}`, as Ortto makes the id of a new custom field."""
    kebab = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"{kind}:cm:{kebab}"


def field_kind(field_id: str, custom: Mapping[str, str]) -> str | None:
    """The kind of value a field takes, or None for a field the account does not have."""
    if field_id in BUILT_IN_FIELDS:
        return BUILT_IN_FIELDS[field_id]
    if field_id in custom:
        match = _CUSTOM_ID.fullmatch(field_id)
        return match.group("kind") if match and match.group("kind") in _KINDS else None
    return None


def check_value(field_id: str, kind: str, value: Any) -> str | None:
    """Why `value` is not valid for the field, or None. `None` values clear a field and are always valid."""
    if value is None:
        return None
    if kind in ("str", "email", "person_id"):
        if not isinstance(value, str):
            return f"{field_id}: expected a string"
        if len(value) > 255:
            return f"{field_id}: longer than 255 characters"
        if kind == "email" and not _EMAIL.fullmatch(value):
            return f"{field_id}: not a valid email address"
        return None
    if kind == "txt":
        if not isinstance(value, str):
            return f"{field_id}: expected a string"
        return f"{field_id}: longer than 4000 characters" if len(value) > 4000 else None
    if kind in ("int", "dec"):
        if isinstance(value, bool) or not isinstance(value, int):
            what = "an integer (decimals are sent as integer x 1000)" if kind == "dec" else "an integer"
            return f"{field_id}: expected {what}"
        return None if _INT64[0] <= value <= _INT64[1] else f"{field_id}: outside the 64-bit integer range"
    if kind == "bol":
        return None if isinstance(value, bool) else f"{field_id}: expected true or false"
    if kind == "geo":
        ok = isinstance(value, dict) and set(value) == {"name"} and isinstance(value["name"], str)
        return None if ok and value["name"].strip() else f'{field_id}: expected {{"name": "..."}}'
    if kind == "phn":
        return _check_phone(field_id, value)
    if kind == "dtz":
        return _check_date(field_id, value)
    return f"{field_id}: unsupported field"


def _check_phone(field_id: str, value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"c", "n"}:
        if all(isinstance(value[k], str) and _DIGITS.fullmatch(value[k]) for k in ("c", "n")):
            return None
    elif isinstance(value, dict) and "phone" in value and set(value) <= {"phone", "parse_with_country_code"}:
        digits = re.sub(r"[\s().+-]", "", value["phone"]) if isinstance(value["phone"], str) else ""
        if _DIGITS.fullmatch(digits) and isinstance(value.get("parse_with_country_code", False), bool):
            return None
    shapes = '{"c": "61", "n": "412345678"} or {"phone": "...", "parse_with_country_code": true}'
    return f"{field_id}: expected {shapes}"


def _check_date(field_id: str, value: Any) -> str | None:
    problem = f'{field_id}: expected {{"year": ..., "month": ..., "day": ..., "timezone": "..."}}'
    if not isinstance(value, dict) or not {"year", "month", "day"} <= set(value) <= {
        "year",
        "month",
        "day",
        "timezone",
    }:
        return problem
    parts = [value[k] for k in ("year", "month", "day")]
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in parts):
        return problem
    if "timezone" in value and not isinstance(value["timezone"], str):
        return problem
    try:
        dt.date(*parts)
    except ValueError:
        return f"{field_id}: not a calendar date"
    return None
