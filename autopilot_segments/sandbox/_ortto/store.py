"""The Ortto sandbox's in-memory account: people, custom fields, audiences and suppressed emails."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .validation import custom_field_id

__all__ = ["Audience", "BadCursor", "CustomFieldRecord", "OrttoStore", "Person"]


class BadCursor(ValueError):
    """A cursor_id this store never handed out."""


@attrs.define
class Person:
    person_id: str
    fields: dict[str, Any]
    tags: list[str]  # in the order they were first set; no duplicates
    created_at: int  # creation sequence number: the order person/get pages in

    @property
    def email(self) -> str | None:
        value = self.fields.get("str::email")
        return value if isinstance(value, str) else None

    def render(self, only: list[str] | None = None) -> dict[str, Any]:
        fields = {"str::person_id": self.person_id, **self.fields, "tags": list(self.tags)}
        if only is not None:
            fields = {f: fields.get(f) for f in only}
        return {"id": self.person_id, "fields": fields}


@attrs.frozen
class CustomFieldRecord:
    field_id: str
    name: str
    display_type: str

    def render(self) -> dict[str, Any]:
        liquid = "people.custom." + self.field_id.split(":cm:", 1)[1]
        return {
            "field": {
                "id": self.field_id,
                "name": self.name,
                "display_type": self.display_type,
                "liquid_name": liquid,
                "dic_items": [],
            },
            "tracked_value": False,
        }


@attrs.define
class Audience:
    audience_id: str
    name: str
    tag: str | None  # the filter "has tag X", the only filter the sandbox plays
    unsubscribed: set[str] = attrs.Factory(set)  # person ids who opted out of this audience

    def render(self, *, with_filter: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": self.audience_id, "name": self.name, "status": "on"}
        if with_filter:
            answer["filter"] = {"$has_tag": {"value": self.tag}} if self.tag is not None else {}
        return answer


def _normalise(field_id: str, value: Any) -> str:
    if field_id == "str::email" and isinstance(value, str):
        return value.strip().lower()
    return json.dumps(value, sort_keys=True)


class OrttoStore:
    """Not thread-safe by itself: the app holds its lock around every use."""

    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.custom_fields: dict[str, CustomFieldRecord] = {}
        self.audiences: dict[str, Audience] = {}
        self.suppressed: set[str] = set()
        self.merge_counts: dict[str, int] = {}  # person_id -> applied merges (created or merged)
        self._index: dict[str, dict[str, str]] = {}  # field id -> normalised value -> person_id
        self._sequence = itertools.count(1)

    # -- fields ---------------------------------------------------------------------------------------
    @property
    def custom_kinds(self) -> dict[str, str]:
        return {f: f.split(":", 1)[0] for f in self.custom_fields}

    def create_custom_field(self, name: str, display_type: str, kind: str) -> CustomFieldRecord:
        record = CustomFieldRecord(custom_field_id(kind, name), name, display_type)
        self.custom_fields[record.field_id] = record
        return record

    def field_named(self, name: str) -> CustomFieldRecord | None:
        wanted = name.strip().lower()
        return next((f for f in self.custom_fields.values() if f.name.strip().lower() == wanted), None)

    # -- people ---------------------------------------------------------------------------------------
    def find(self, field_id: str, value: Any) -> Person | None:
        if value is None or value == "":
            return None
        if field_id == "str::person_id":
            return self.people.get(value) if isinstance(value, str) else None
        person_id = self._index.get(field_id, {}).get(_normalise(field_id, value))
        return self.people.get(person_id) if person_id else None

    def by_email(self, email: str) -> Person | None:
        return self.find("str::email", email)

    def create(self, fields: Mapping[str, Any]) -> Person:
        person = Person(
            person_id="006" + secrets.token_hex(10) + "00",
            fields={},
            tags=[],
            created_at=next(self._sequence),
        )
        self.people[person.person_id] = person
        for field_id, value in fields.items():
            self.set_field(person, field_id, value)
        return person

    def set_field(self, person: Person, field_id: str, value: Any) -> None:
        if field_id == "str::person_id":
            return
        old = person.fields.get(field_id)
        if old is not None:
            self._index.get(field_id, {}).pop(_normalise(field_id, old), None)
        if value is None:
            person.fields.pop(field_id, None)
            return
        person.fields[field_id] = value
        self._index.setdefault(field_id, {})[_normalise(field_id, value)] = person.person_id

    def delete(self, person: Person) -> None:
        for field_id in list(person.fields):
            self.set_field(person, field_id, None)
        del self.people[person.person_id]
        self.merge_counts.pop(person.person_id, None)

    def ordered(self) -> list[Person]:
        # dicts keep insertion order, which is creation order: the order person/get pages in.
        return list(self.people.values())

    def tagged(self, tag: str) -> Iterator[Person]:
        return (p for p in self.people.values() if tag in p.tags)

    # -- audiences ------------------------------------------------------------------------------------
    def create_audience(self, name: str, tag: str | None) -> Audience:
        audience = Audience(audience_id="a" + secrets.token_hex(11), name=name, tag=tag)
        self.audiences[audience.audience_id] = audience
        return audience

    def audience_members(self, audience: Audience) -> list[Person]:
        return [] if audience.tag is None else list(self.tagged(audience.tag))

    # -- paging ---------------------------------------------------------------------------------------
    @staticmethod
    def encode_cursor(position: int) -> str:
        return base64.urlsafe_b64encode(f"people:{position}".encode()).decode().rstrip("=")

    @staticmethod
    def decode_cursor(cursor: str) -> int:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            scope, _, position = text.partition(":")
            if scope != "people":
                raise ValueError(scope)
            value = int(position)
        except (ValueError, UnicodeDecodeError):
            raise BadCursor(cursor) from None
        if value < 0:
            raise BadCursor(cursor)
        return value
