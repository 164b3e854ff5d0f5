"""Strict validation of upserted contacts, independent of the library's own mapping code.

The sandbox must catch what a careful Autopilot would refuse, so it keeps its own, deliberately simple
rules: if the library's mapping had a bug, sharing its code would hide it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs

__all__ = [
    "CUSTOM_TYPES",
    "HOOK_EVENTS",
    "STANDARD_FIELDS",
    "ValidContact",
    "custom_field_name",
    "email_problem",
    "validate_contact",
]

STANDARD_FIELDS: Final[frozenset[str]] = frozenset(
    {
        "Email", "Twitter", "FirstName", "LastName", "Salutation", "Company", "NumberOfEmployees", "Title",
        "Industry", "Phone", "MobilePhone", "Fax", "Website", "MailingStreet", "MailingCity", "MailingState",
        "MailingPostalCode", "MailingCountry", "owner_name", "LeadSource", "Status", "LinkedIn",
    }
)  # fmt: skip
_SPECIAL_KEYS: Final[frozenset[str]] = frozenset(
    {"unsubscribed", "custom", "_autopilot_list", "_autopilot_session_id", "notify", "_NewEmail"}
)
CUSTOM_TYPES: Final[tuple[str, ...]] = ("string", "integer", "float", "date", "boolean")
HOOK_EVENTS: Final[tuple[str, ...]] = (
    "contact_added",
    "contact_updated",
    "contact_unsubscribed",
    "contact_added_to_list",
    "contact_removed_from_list",
    "contact_entered_segment",
    "contact_left_segment",
)
MAX_FIELD_LENGTH: Final = 255


def email_problem(value: object) -> str | None:
    """What is wrong with an email address, or None if the sandbox accepts it."""
    if not isinstance(value, str) or not value:
        return "Email is missing"
    if not value.isascii():
        return "Email must be ASCII"
    if any(ch.isspace() for ch in value) or any(ch in value for ch in "[]<>()"):
        return "Email contains spaces or brackets"
    if value.count("@") != 1:
        return "Email must contain exactly one @"
    local, domain = value.split("@")
    if not local:
        return "Email has an empty local part"
    labels = domain.split(".")
    if len(labels) < 2 or any(not label for label in labels):
        return "Email domain must contain a dot between non-empty labels"
    if labels[-1].isdigit():
        return "Email domain must not end in a numeric label"
    return None


def custom_field_name(key: str) -> tuple[str, str] | None:
    """`(type, "Name With Spaces")` for a well-formed custom key like `string--Loyalty--Tier`, else None."""
    parts = key.split("--")
    if len(parts) < 2 or parts[0] not in CUSTOM_TYPES:
        return None
    names = parts[1:]
    if any(not p or p.strip() != p or any(ch.isspace() for ch in p) for p in names):
        return None
    return parts[0], " ".join(names)


def _value_problem(field_type: str, value: Any) -> str | None:
    if field_type == "string":
        ok = isinstance(value, str)
    elif field_type == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif field_type == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    elif field_type == "boolean":
        ok = isinstance(value, bool)
    else:  # date
        ok = isinstance(value, str) and _is_iso_date(value)
    return None if ok else f"is not a valid {field_type}"


def _is_iso_date(value: str) -> bool:
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@attrs.frozen(kw_only=True)
class ValidContact:
    """An upserted contact that passed validation, split into what the store needs."""

    email: str
    new_email: str | None
    fields: dict[str, str]
    unsubscribed: bool | None
    custom: dict[str, tuple[str, Any]]  # name with spaces -> (type, value)
    list_id: str | None


def _describe(position: int | None, email: object) -> str:
    where = "Contact" if position is None else f"Contact {position}"
    return f'{where} "{email}"' if isinstance(email, str) and email else where


def validate_contact(
    raw: object, *, position: int | None, field_types: Mapping[str, str]
) -> ValidContact | str:
    """Validate one upserted contact; a str result is the problem, phrased for an error message.

    `position` (1-based, None for a single upsert) and the contact's Email name the contact in the
    message. `field_types` are the custom field types already known (a field keeps its first type).
    """
    if not isinstance(raw, dict):
        return f"{_describe(position, None)}: a contact must be a JSON object"
    email = raw.get("Email")
    who = _describe(position, email)
    unknown = sorted(k for k in raw if k not in STANDARD_FIELDS and k not in _SPECIAL_KEYS)
    if unknown:
        return f"{who}: unknown field(s) {', '.join(map(repr, unknown))}"
    fields: dict[str, str] = {}
    for key in STANDARD_FIELDS.intersection(raw):
        value = raw[key]
        if not isinstance(value, str):
            return f"{who}: field {key!r} must be a string"
        if len(value) > MAX_FIELD_LENGTH:
            return f"{who}: field {key!r} is longer than {MAX_FIELD_LENGTH} characters"
        fields[key] = value
    problem = email_problem(email)
    if problem:
        return f"{who}: {problem}"
    for flag in ("unsubscribed", "notify"):
        if flag in raw and not isinstance(raw[flag], bool):
            return f"{who}: {flag!r} must be true or false"
    for text_key in ("_autopilot_list", "_autopilot_session_id"):
        if text_key in raw and (not isinstance(raw[text_key], str) or not raw[text_key]):
            return f"{who}: {text_key!r} must be a non-empty string"
    new_email = raw.get("_NewEmail")
    if new_email is not None:
        problem = email_problem(new_email)
        if problem:
            return f"{who}: _NewEmail is not valid ({problem})"
    custom = raw.get("custom", {})
    if not isinstance(custom, dict):
        return f"{who}: 'custom' must be a JSON object"
    parsed_custom: dict[str, tuple[str, Any]] = {}
    for key, value in custom.items():
        parsed = custom_field_name(key)
        if parsed is None:
            return (
                f"{who}: custom field key {key!r} is not of the form '<type>--<Name>' with type one of "
                f"{', '.join(CUSTOM_TYPES)} and non-empty name parts joined by '--'"
            )
        field_type, name = parsed
        problem = _value_problem(field_type, value)
        if problem:
            return f"{who}: custom field {key!r} {problem}"
        known = field_types.get(name)
        if known is None and name in parsed_custom:
            known = parsed_custom[name][0]
        if known is not None and known != field_type:
            return f"{who}: custom field {name!r} is of type {known}, not {field_type}"
        parsed_custom[name] = (field_type, value)
    return ValidContact(
        email=str(email),
        new_email=new_email,
        fields=fields,
        unsubscribed=raw.get("unsubscribed"),
        custom=parsed_custom,
        list_id=raw.get("_autopilot_list"),
    )
