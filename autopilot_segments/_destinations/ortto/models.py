"""Typed values of what Ortto answers: merge results, people, custom fields, audiences."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = [
    "STORED_STATUSES",
    "Audience",
    "MergeResult",
    "OrttoCustomField",
    "Person",
    "PersonResult",
]

# The statuses that mean Ortto stored the person; anything else (suppressed, invalid, ignored, a status
# not documented yet) means it did not, and an export must not count that person as exported.
STORED_STATUSES: Final = frozenset({"created", "merged"})


@attrs.frozen
class PersonResult:
    """Ortto's answer for one person of a merge, in request order."""

    status: str
    person_id: str | None = None
    error: str | None = None

    @property
    def stored(self) -> bool:
        return self.status in STORED_STATUSES and bool(self.person_id)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> PersonResult:
        person_id = data.get("person_id")
        error = data.get("error")
        return cls(
            status=str(data.get("status", "")),
            person_id=str(person_id) if person_id else None,
            error=str(error) if error is not None else None,
        )


@attrs.frozen
class MergeResult:
    """The answer to `person/merge`.

    `people` holds one result per submitted person when Ortto answered them (a synchronous call), in
    request order; `accepted` is true for an asynchronous call that Ortto queued without saying what
    became of each person (nothing in it may be counted as stored).
    """

    people: tuple[PersonResult, ...]
    accepted: bool = False

    @property
    def stored(self) -> int:
        return sum(1 for p in self.people if p.stored)


@attrs.frozen
class Person:
    """One person from `person/get`: the id and the fields asked for (`tags` among them if asked)."""

    person_id: str
    fields: Mapping[str, Any]

    @property
    def email(self) -> str | None:
        value = self.fields.get("str::email")
        return value if isinstance(value, str) and value else None

    @property
    def tags(self) -> tuple[str, ...]:
        value = self.fields.get("tags")
        return tuple(str(t) for t in value) if isinstance(value, list) else ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Person:
        fields = data.get("fields") or {}
        if not isinstance(fields, Mapping):
            raise TypeError("a person's fields must be an object")
        person_id = data.get("id") or fields.get("str::person_id")
        if not person_id:
            raise KeyError("id")
        return cls(person_id=str(person_id), fields=dict(fields))


@attrs.frozen
class OrttoCustomField:
    """A custom field of the account: its id (`int:cm:loyalty-points`), name and display type."""

    field_id: str
    name: str
    display_type: str = ""

    @property
    def kind(self) -> str:
        """The id's type prefix (`int`, `str`, `dec`, ...): what values the field takes."""
        return self.field_id.split(":", 1)[0]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> OrttoCustomField:
        field = data.get("field", data)
        if not isinstance(field, Mapping):
            raise TypeError("a custom field must be an object")
        field_id = field.get("id") or data.get("field_id")
        if not field_id:
            raise KeyError("id")
        return cls(
            field_id=str(field_id),
            name=str(field.get("name", "")),
            display_type=str(field.get("display_type", "")),
        )


@attrs.frozen
class Audience:
    """An audience: people matching a filter set in Ortto (the API cannot create one)."""

    audience_id: str
    name: str
    filter: Mapping[str, Any] | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Audience:
        audience_filter = data.get("filter")
        return cls(
            audience_id=str(data["id"]),
            name=str(data.get("name", "")),
            filter=dict(audience_filter) if isinstance(audience_filter, Mapping) else None,
        )
