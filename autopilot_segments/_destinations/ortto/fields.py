"""Ortto's field dialect: which Ortto field each mapped field lands in, and values within Ortto's limits.

`FieldMapping` produces contacts in Autopilot's shape (standard field names, `"custom"` keys such as
`"integer--Loyalty--Points"`). `OrttoFields` turns such a contact into the `fields` of an Ortto person:
standard fields go to Ortto's built-in fields by their common meaning, custom fields to the account's
field ids read back from Ortto (never built from the name: accounts disagree on the type prefixes), and
every value is checked against Ortto's limits, so a value Ortto would refuse becomes a per-row problem.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ..._errors import ConfigurationError
from ..._mapping.fields import CustomField, parse_custom_field_key
from .models import OrttoCustomField

__all__ = ["CREATE_TYPES", "STANDARD_TO_ORTTO", "OrttoFields"]

# Autopilot's standard fields that have an Ortto built-in counterpart. The others (Company, Title, ...)
# have none: map them as custom fields when exporting to Ortto.
STANDARD_TO_ORTTO: Final[dict[str, str]] = {
    "Email": "str::email",
    "FirstName": "str::first",
    "LastName": "str::last",
    "Phone": "phn::phone",
    "MobilePhone": "phn::phone",
    "MailingCity": "geo::city",
    "MailingCountry": "geo::country",
    "MailingState": "geo::region",
    "MailingPostalCode": "str::postal",
}
# Which Ortto field kinds (the id's type prefix) hold each custom field type, and the `type` to create.
_COMPATIBLE: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({"str", "txt"}),
    "integer": frozenset({"int"}),
    "float": frozenset({"dec"}),
    "boolean": frozenset({"bol"}),
    "date": frozenset({"dtz"}),
}
CREATE_TYPES: Final[dict[str, str]] = {
    "string": "text",
    "integer": "integer",
    "float": "decimal",
    "boolean": "boolean",
    "date": "date",
}
_MAX_TEXT: Final = {"str": 255, "txt": 4000}
_INT64: Final = (-(2**63), 2**63 - 1)
_THOUSAND: Final = decimal.Decimal(1000)


@attrs.frozen
class OrttoFields:
    """How one mapping's contacts become Ortto people, for one account's custom fields.

    Build it with `OrttoFields.resolve(...)`: every configuration problem is raised at once, before any
    person is sent. `to_person(payload)` then gives the person's `fields` or the reason it cannot be sent.
    """

    standard: Mapping[str, str]  # Autopilot field name -> Ortto built-in id
    custom: Mapping[str, tuple[str, str]]  # "integer--Loyalty--Points" -> (Ortto field id, kind)
    send_email_permission: bool = False

    @classmethod
    def resolve(
        cls,
        *,
        standard_fields: Iterable[str],
        custom_fields: Sequence[CustomField],
        account_fields: Sequence[OrttoCustomField],
        maps_unsubscribed: bool = False,
        send_email_permission: bool = False,
    ) -> OrttoFields:
        """The dialect for these mapped fields; `ConfigurationError` names every field that cannot work.

        A custom field the account lacks is a problem here: create it first (`missing_custom_fields`
        says which, with the type to create) or let the exporter create it when asked to.
        """
        problems: list[str] = []
        standard: dict[str, str] = {}
        claimed: dict[str, str] = {}
        for name in standard_fields:
            if name == "Email":
                continue
            target = STANDARD_TO_ORTTO.get(name)
            if target is None:
                problems.append(
                    f"{name} has no Ortto built-in field: map it as a custom field "
                    f"(CustomField({name!r}, 'string', source=...))"
                )
                continue
            if target in claimed:
                problems.append(
                    f"{claimed[target]} and {name} would both fill Ortto's {target}: map only one"
                )
                continue
            claimed[target] = name
            standard[name] = target
        by_name = {f.name.strip().lower(): f for f in account_fields}
        custom: dict[str, tuple[str, str]] = {}
        for field in custom_fields:
            found = by_name.get(field.name.strip().lower())
            if found is None:
                problems.append(
                    f"Ortto has no custom field named {field.name!r}: "
                    f"create it (type {CREATE_TYPES[field.type]})"
                )
                continue
            if found.kind not in _COMPATIBLE[field.type]:
                problems.append(
                    f"Ortto's custom field {found.name!r} ({found.field_id}) holds {found.kind} values, "
                    f"but the mapping declares it {field.type}"
                )
                continue
            custom[field.key] = (found.field_id, found.kind)
        if maps_unsubscribed and not send_email_permission:
            problems.append(
                "the mapping maps `unsubscribed`, which Ortto stores as email permission (bol::p): "
                "sending it overwrites each person's own choice; "
                "pass send_email_permission=True to send it anyway"
            )
        if problems:
            raise ConfigurationError(problems)
        return cls(standard=standard, custom=custom, send_email_permission=send_email_permission)

    @staticmethod
    def missing_custom_fields(
        custom_fields: Sequence[CustomField], account_fields: Sequence[OrttoCustomField]
    ) -> list[tuple[str, str]]:
        """`(name, Ortto type)` of each mapped custom field the account does not have yet."""
        have = {f.name.strip().lower() for f in account_fields}
        return [(f.name, CREATE_TYPES[f.type]) for f in custom_fields if f.name.strip().lower() not in have]

    def to_person(self, payload: Mapping[str, Any]) -> dict[str, Any] | str:
        """The Ortto `fields` of one mapped contact, or why Ortto would refuse it (a readable reason)."""
        fields: dict[str, Any] = {"str::email": payload["Email"]}
        problems: list[str] = []
        for name, value in payload.items():
            if name in ("Email", "custom", "_autopilot_list"):
                continue
            if name == "unsubscribed":
                if self.send_email_permission and isinstance(value, bool):
                    fields["bol::p"] = not value
                continue
            target = self.standard.get(name)
            if target is None:
                problems.append(f"{name}: no Ortto field")
                continue
            converted = _standard_value(target, value)
            if isinstance(converted, _Problem):
                problems.append(f"{name}: {converted.reason}")
            else:
                fields[target] = converted
        for key, value in (payload.get("custom") or {}).items():
            resolved = self.custom.get(key)
            if resolved is None:
                parsed = parse_custom_field_key(key)
                problems.append(f"{parsed[1] if parsed else key}: no Ortto field")
                continue
            field_id, kind = resolved
            converted = _custom_value(kind, value)
            if isinstance(converted, _Problem):
                parsed = parse_custom_field_key(key)
                problems.append(f"{parsed[1] if parsed else key}: {converted.reason}")
            else:
                fields[field_id] = converted
        return "; ".join(problems) if problems else fields


@attrs.frozen
class _Problem:
    reason: str


def _standard_value(target: str, value: Any) -> Any:
    text = value if isinstance(value, str) else str(value)
    if target.startswith("geo::"):
        return {"name": text} if text.strip() else _Problem("empty")
    if target == "phn::phone":
        return {"phone": text, "parse_with_country_code": True}
    return _text("str", text)


def _custom_value(kind: str, value: Any) -> Any:
    if kind in _MAX_TEXT:
        return _text(kind, value if isinstance(value, str) else str(value))
    if kind == "bol":
        return value if isinstance(value, bool) else _Problem("not true or false")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return _Problem("not a whole number")
        return value if _INT64[0] <= value <= _INT64[1] else _Problem("outside Ortto's 64-bit integer range")
    if kind == "dec":
        return _thousandths(value)
    if kind == "dtz":
        return _date(value)
    return _Problem(f"Ortto field type {kind} is not supported")


def _text(kind: str, text: str) -> Any:
    limit = _MAX_TEXT[kind]
    if len(text) > limit:
        return _Problem(f"{len(text)} characters, over Ortto's limit of {limit}")
    return text


def _thousandths(value: Any) -> Any:
    # Ortto stores decimals as integers x 1000: 12.3456 is sent as 12346 (half-even, as Ortto keeps three
    # places); the exact decimal of the value is used, not its binary float approximation.
    if isinstance(value, bool) or not isinstance(value, (int, float, decimal.Decimal)):
        return _Problem("not a number")
    try:
        exact = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
        scaled = int((exact * _THOUSAND).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    except (decimal.InvalidOperation, ValueError, OverflowError):
        return _Problem("not a finite number")
    if not _INT64[0] <= scaled <= _INT64[1]:
        return _Problem("outside Ortto's decimal range")
    return scaled


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _Problem("not an ISO-8601 date")
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc)
        return {"year": parsed.year, "month": parsed.month, "day": parsed.day, "timezone": "UTC"}
    if isinstance(value, dt.date):
        return {"year": value.year, "month": value.month, "day": value.day, "timezone": "UTC"}
    return _Problem("not a date")
