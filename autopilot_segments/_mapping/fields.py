"""Declared custom fields: `CustomField`, and the `"<type>--<Name>"` key it travels under.

Custom fields travel as `"custom": {"<type>--<Name with each space replaced by -->": value}`. A name only
works if it survives that encoding both ways, so `CustomField` names are checked for it (by `FieldMapping`,
which lists every configuration problem at once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal, get_args

import attrs

__all__ = [
    "CUSTOM_FIELD_TYPES",
    "CustomField",
    "CustomFieldType",
    "custom_field_name_problem",
    "parse_custom_field_key",
]

CustomFieldType = Literal["string", "integer", "float", "date", "boolean"]
CUSTOM_FIELD_TYPES: Final[tuple[str, ...]] = get_args(CustomFieldType)

_SEPARATOR: Final = "--"


def custom_field_name_problem(name: object) -> str | None:
    """Why `name` cannot be an Autopilot custom field name, or None if it can."""
    if not isinstance(name, str) or not name.strip():
        return "the name is empty"
    if _SEPARATOR in name:
        return "the name contains '--', which Autopilot uses to encode spaces; use a single '-' or a space"
    if name != name.strip():
        return "the name starts or ends with a space; remove it"
    if any(ch.isspace() and ch != " " for ch in name) or "  " in name:
        return "words in the name must be separated by single spaces (no tabs, line breaks or double spaces)"
    if parse_custom_field_key(f"string{_SEPARATOR}{name.replace(' ', _SEPARATOR)}") != ("string", name):
        return "a '-' right before a space cannot be encoded unambiguously; remove the space or the '-'"
    return None


def parse_custom_field_key(key: str) -> tuple[str, str] | None:
    """`("integer", "Loyalty Points")` for the key `"integer--Loyalty--Points"`; None if malformed."""
    parts = key.split(_SEPARATOR)
    if len(parts) < 2 or parts[0] not in CUSTOM_FIELD_TYPES:
        return None
    words = parts[1:]
    if any(not word or any(ch.isspace() for ch in word) for word in words):
        return None
    return parts[0], " ".join(words)


def _as_formats(value: Any) -> Any:
    """A tuple of formats from a string or a list; anything else is kept for `FieldMapping` to report."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return value


@attrs.frozen
class CustomField:
    """One Autopilot custom field fed from a source column.

    `name` is the field's name in Autopilot ("Loyalty Points"); `type` one of string, integer, float, date,
    boolean. `source` is the column to read (default: `name`). `default` is used when the value is empty;
    `transform` is applied to the raw value before it is converted to `type`. `formats` (date fields
    only) are the strftime patterns and named formats (`"iso"`, `"dataverse"`, `"month-first"`,
    `"day-first"`, `"unix-seconds"`, `"unix-milliseconds"`) its text is read with; without them, ISO-8601.

    The declaration is checked when it is put into a `FieldMapping`, so that one `ConfigurationError`
    lists every problem of the whole mapping.
    """

    name: str
    type: CustomFieldType
    source: str | None = attrs.field(default=None, kw_only=True)
    default: Any = attrs.field(default=None, kw_only=True)
    transform: Callable[[Any], Any] | None = attrs.field(default=None, kw_only=True, eq=False)
    formats: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_as_formats)

    @property
    def key(self) -> str:
        """The key under `"custom"` in an upsert: `"integer--Loyalty--Points"`."""
        return f"{self.type}{_SEPARATOR}{self.name.replace(' ', _SEPARATOR)}"

    @property
    def column(self) -> str:
        """The source column actually read: `source`, or `name` when no source was given."""
        return self.name if self.source is None else self.source

    @classmethod
    def from_key(cls, key: str, *, source: str | None = None) -> CustomField:
        """The field a custom key names: `from_key("integer--Loyalty--Points")`; ValueError if malformed."""
        parsed = parse_custom_field_key(key)
        if parsed is None:
            raise ValueError(f"{key!r} is not a custom field key like 'integer--Loyalty--Points'")
        field_type, name = parsed
        return cls(name, field_type, source=source)  # type: ignore[arg-type]
