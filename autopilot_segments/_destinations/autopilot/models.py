"""Typed models of what Autopilot returns (and of the contacts the client sends).

Parsers are tolerant: unknown keys are kept (`Contact.extra`) or ignored, optional keys may be missing.
A missing *required* key (an id) raises `KeyError`/`TypeError`/`ValueError`; the client turns that
into an `APIError` for the response that carried it.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

from ..._errors import ConfigurationError

__all__ = [
    "STANDARD_FIELDS",
    "BulkUpsertResult",
    "Contact",
    "ContactList",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "Hook",
    "SmartSegment",
    "Trigger",
]

# attribute name -> Autopilot's exact wire name
STANDARD_FIELDS: Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "email": "Email",
        "twitter": "Twitter",
        "first_name": "FirstName",
        "last_name": "LastName",
        "salutation": "Salutation",
        "company": "Company",
        "number_of_employees": "NumberOfEmployees",
        "title": "Title",
        "industry": "Industry",
        "phone": "Phone",
        "mobile_phone": "MobilePhone",
        "fax": "Fax",
        "website": "Website",
        "mailing_street": "MailingStreet",
        "mailing_city": "MailingCity",
        "mailing_state": "MailingState",
        "mailing_postal_code": "MailingPostalCode",
        "mailing_country": "MailingCountry",
        "owner_name": "owner_name",
        "lead_source": "LeadSource",
        "status": "Status",
        "linked_in": "LinkedIn",
    }
)
_WIRE_TO_ATTR: Final[Mapping[str, str]] = {wire: attr for attr, wire in STANDARD_FIELDS.items()}
CUSTOM_FIELD_TYPES: Final[tuple[str, ...]] = ("string", "integer", "float", "date", "boolean")
# Keys a caller may send on an upsert besides the standard fields (see the API reference).
_WRITABLE_SPECIAL_KEYS: Final[frozenset[str]] = frozenset(
    {"_autopilot_list", "_autopilot_session_id", "notify", "_NewEmail"}
)
_SEPARATOR = "--"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value or {}))


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    return _as_text(data.get(key))


@attrs.frozen(kw_only=True)
class CustomFieldValue:
    """One custom field on a contact: `name` as shown in Autopilot ("Loyalty Tier"), its type, its value."""

    name: str
    field_type: str
    value: Any = None
    deleted: bool = False

    @property
    def key(self) -> str:
        """The upsert key: `"<type>--<Name with each space replaced by -->"`."""
        if _SEPARATOR in self.name:
            raise ConfigurationError(
                f"custom field name {self.name!r} contains '--', which cannot round-trip through Autopilot"
            )
        if self.field_type not in CUSTOM_FIELD_TYPES:
            raise ConfigurationError(
                f"custom field {self.name!r} has type {self.field_type!r}; use one of {CUSTOM_FIELD_TYPES}"
            )
        return f"{self.field_type}{_SEPARATOR}{self.name.replace(' ', _SEPARATOR)}"

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CustomFieldValue:
        """Parse one item of a returned contact's `custom_fields` list."""
        return cls(
            name=str(data.get("kind", data.get("name", ""))),
            field_type=str(data.get("fieldType", data.get("field_type", "string"))),
            value=data.get("value"),
            deleted=bool(data.get("deleted", False)),
        )

    @classmethod
    def from_key(cls, key: str, value: Any) -> CustomFieldValue:
        """Parse one entry of an upsert's `custom` mapping (`"string--Loyalty--Tier": "gold"`)."""
        field_type, sep, encoded = key.partition(_SEPARATOR)
        if not sep:
            return cls(name=key, field_type="string", value=value)
        return cls(name=encoded.replace(_SEPARATOR, " "), field_type=field_type, value=value)


@attrs.frozen(kw_only=True)
class CustomFieldDefinition:
    """A custom field defined on the account (`GET /contacts/custom_fields`)."""

    name: str
    field_type: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CustomFieldDefinition:
        return cls(
            name=str(data.get("name", data.get("kind", ""))),
            field_type=str(data.get("fieldType", data.get("field_type", ""))),
        )


def _custom_tuple(value: Iterable[CustomFieldValue]) -> tuple[CustomFieldValue, ...]:
    return tuple(value)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Contact:
    """An Autopilot contact. Standard fields are snake_case attributes; see `STANDARD_FIELDS`.

    `to_api()` gives the upsert shape (only the fields that are set); `from_api()` parses what
    Autopilot returns and keeps every key it does not know in `extra`.
    `unsubscribed` stays None unless set. `to_api()` sends `unsubscribed: true`, but never `false`
    unless asked to with `allow_resubscribe=True`: `false` re-subscribes someone who opted out, and a
    contact read as subscribed may have opted out since it was read.
    """

    email: str | None = None
    twitter: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    salutation: str | None = None
    company: str | None = None
    number_of_employees: str | None = None
    title: str | None = None
    industry: str | None = None
    phone: str | None = None
    mobile_phone: str | None = None
    fax: str | None = None
    website: str | None = None
    mailing_street: str | None = None
    mailing_city: str | None = None
    mailing_state: str | None = None
    mailing_postal_code: str | None = None
    mailing_country: str | None = None
    owner_name: str | None = None
    lead_source: str | None = None
    status: str | None = None
    linked_in: str | None = None
    unsubscribed: bool | None = None
    contact_id: str | None = None
    custom_fields: tuple[CustomFieldValue, ...] = attrs.field(default=(), converter=_custom_tuple)
    lists: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    created_at: str | None = None
    updated_at: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Contact:
        """Parse a contact as Autopilot returns it (or as it would be sent)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a contact must be a JSON object, got {type(data).__name__}")
        standard: dict[str, str | None] = {}
        extra: dict[str, Any] = {}
        custom: list[CustomFieldValue] = []
        for key, value in data.items():
            if key in _WIRE_TO_ATTR:
                standard[_WIRE_TO_ATTR[key]] = _as_text(value)
            elif key == "custom_fields" and isinstance(value, list):
                custom.extend(CustomFieldValue.from_api(item) for item in value if isinstance(item, Mapping))
            elif key == "custom" and isinstance(value, Mapping):
                custom.extend(CustomFieldValue.from_key(str(k), v) for k, v in value.items())
            elif key not in ("contact_id", "unsubscribed", "lists", "created_at", "updated_at"):
                extra[key] = value
        unsubscribed = data.get("unsubscribed")
        return cls(
            **standard,
            unsubscribed=None if unsubscribed is None else bool(unsubscribed),
            contact_id=_optional_text(data, "contact_id"),
            custom_fields=custom,
            lists=_parse_list_ids(data.get("lists")),
            created_at=_optional_text(data, "created_at"),
            updated_at=_optional_text(data, "updated_at"),
            extra=extra,
        )

    def to_api(self, *, allow_resubscribe: bool = False) -> dict[str, Any]:
        """The upsert body for this contact: only set fields, Autopilot's exact names.

        `unsubscribed=False` is left out unless `allow_resubscribe=True` (consent: see the class doc).

        `custom_fields` (not deleted) go under `custom`; from `extra` only the documented write keys
        (`_autopilot_list`, `_autopilot_session_id`, `notify`, `_NewEmail`) are sent; read-only keys
        such as `contact_id`, `lists` or timestamps never are.
        """
        body: dict[str, Any] = {}
        for attr, wire in STANDARD_FIELDS.items():
            value = getattr(self, attr)
            if value is not None:
                body[wire] = value
        if self.unsubscribed or (self.unsubscribed is False and allow_resubscribe):
            body["unsubscribed"] = self.unsubscribed
        custom = {field.key: field.value for field in self.custom_fields if not field.deleted}
        if custom:
            body["custom"] = custom
        for key, value in self.extra.items():
            if key in _WRITABLE_SPECIAL_KEYS:
                body[key] = value
        return body


def _parse_list_ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    ids: list[str] = []
    for item in value:
        if isinstance(item, str):
            ids.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("list_id"), str):
            ids.append(item["list_id"])
    return tuple(ids)


@attrs.frozen(kw_only=True)
class ContactList:
    """A contact list (`GET /lists`)."""

    list_id: str
    title: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> ContactList:
        return cls(list_id=str(data["list_id"]), title=str(data.get("title", "")))


@attrs.frozen(kw_only=True)
class SmartSegment:
    """A smart segment (`GET /smart_segments`)."""

    segment_id: str
    title: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SmartSegment:
        return cls(segment_id=str(data["segment_id"]), title=str(data.get("title", "")))


@attrs.frozen(kw_only=True)
class Trigger:
    """A journey with an API trigger (`GET /triggers`)."""

    trigger_id: str
    journey: str | None = None
    trigger_type: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Trigger:
        return cls(
            trigger_id=str(data["trigger_id"]),
            journey=_optional_text(data, "journey"),
            trigger_type=_optional_text(data, "trigger_type"),
        )


@attrs.frozen(kw_only=True)
class Hook:
    """A registered REST hook (`GET /hooks`)."""

    hook_id: str
    event: str | None = None
    target_url: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Hook:
        hook_id = data.get("hook_id", data.get("id"))
        if hook_id is None:
            raise KeyError("hook_id")
        return cls(
            hook_id=str(hook_id),
            event=_optional_text(data, "event"),
            target_url=_optional_text(data, "target_url"),
        )


def _str_map(value: Mapping[str, str]) -> Mapping[str, str]:
    return types.MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class BulkUpsertResult:
    """What a bulk upsert stored.

    `missing` lists the submitted emails (as sent) that are absent from `email_contact_map`, compared
    case-insensitively: Autopilot did NOT store those contacts.

    `mapped` is False when the answer had no `email_contact_map` at all (Autopilot's own published
    example answers `{"contact_ids": [...]}` only): then nothing says which contact is which, or which
    were left out, so `email_contact_map` and `missing` are empty and the contacts must be confirmed
    another way (the exporter does, see `docs/exporter.md`); never count them as stored unconfirmed.
    """

    contact_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)
    email_contact_map: Mapping[str, str] = attrs.field(converter=_str_map, hash=False)
    missing: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    mapped: bool = True

    @classmethod
    def from_api(cls, data: Mapping[str, Any], submitted_emails: Iterable[str]) -> BulkUpsertResult:
        """Parse a `POST /contacts` answer; `submitted_emails` are the `Email` values that were sent."""
        raw_ids = data.get("contact_ids", [])
        raw_map = data.get("email_contact_map")
        if not isinstance(raw_ids, list) or not isinstance(raw_map, (Mapping, type(None))):
            raise TypeError("contact_ids must be a list and email_contact_map an object")
        if raw_map is None:
            return cls(contact_ids=[str(i) for i in raw_ids], email_contact_map={}, mapped=False)
        email_map = {str(email): str(contact_id) for email, contact_id in raw_map.items()}
        stored = {email.casefold() for email in email_map}
        missing: list[str] = []
        seen: set[str] = set()
        for email in submitted_emails:
            if email.casefold() not in stored and email not in seen:
                seen.add(email)
                missing.append(email)
        return cls(contact_ids=[str(i) for i in raw_ids], email_contact_map=email_map, missing=missing)
