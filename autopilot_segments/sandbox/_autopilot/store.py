"""The sandbox's in-memory Autopilot account: contacts, lists, smart segments, triggers, hooks.

Not thread-safe by itself: the app holds one lock around every call.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Final

import attrs

from .validation import ValidContact

__all__ = ["PAGE_SIZE", "BadBookmark", "ContactRecord", "OrderedIndex", "Store"]

PAGE_SIZE: Final = 100


class BadBookmark(ValueError):
    """A bookmark this sandbox never issued for that collection."""


class OrderedIndex:
    """An insertion-ordered set of ids whose pages stay cheap at any offset.

    Removal leaves a tombstone in the order list, so positions (which bookmarks hold) never shift.
    """

    def __init__(self) -> None:
        self._order: list[str] = []
        self._position: dict[str, int] = {}

    def add(self, item: str) -> bool:
        if item in self._position:
            return False
        self._position[item] = len(self._order)
        self._order.append(item)
        return True

    def discard(self, item: str) -> bool:
        return self._position.pop(item, None) is not None

    def __contains__(self, item: object) -> bool:
        return item in self._position

    def __len__(self) -> int:
        return len(self._position)

    def __iter__(self) -> Iterator[str]:
        return iter(self._position)

    def page(self, start: int, size: int) -> tuple[list[str], int | None]:
        """Up to `size` live ids from position `start`, and the position of the next live id (or None)."""
        order, position = self._order, self._position
        out: list[str] = []
        i = start
        while i < len(order) and len(out) < size:
            item = order[i]
            if position.get(item) == i:
                out.append(item)
            i += 1
        while i < len(order) and position.get(order[i]) != i:
            i += 1
        return out, (i if i < len(order) else None)


@attrs.define(eq=False)
class ContactRecord:
    contact_id: str
    fields: dict[str, str]
    created_at: str
    updated_at: str
    unsubscribed: bool = False
    custom: dict[str, tuple[str, Any]] = attrs.Factory(dict)
    lists: dict[str, None] = attrs.Factory(dict)

    @property
    def email(self) -> str:
        return self.fields["Email"]

    def render(self) -> dict[str, Any]:
        """The contact as `GET /contact` returns it."""
        name = " ".join(p for p in (self.fields.get("FirstName"), self.fields.get("LastName")) if p)
        return {
            "contact_id": self.contact_id,
            **self.fields,
            "Name": name,
            "unsubscribed": self.unsubscribed,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "lists": list(self.lists),
            "api_originated": True,
            "custom_fields": [
                {"kind": name, "value": value, "fieldType": field_type, "deleted": False}
                for name, (field_type, value) in self.custom.items()
            ],
        }


@attrs.define(eq=False)
class Collection:
    """A list or a smart segment: an id, a title, ordered members (contact ids)."""

    collection_id: str
    title: str
    members: OrderedIndex = attrs.Factory(OrderedIndex)


@attrs.define(eq=False)
class Trigger:
    trigger_id: str
    journey: str
    entries: list[str] = attrs.Factory(list)  # contact ids, one per accepted add-to-journey call


def _new_id(prefix: str) -> str:
    return f"{prefix}{str(uuid.uuid4()).upper()}"


def encode_bookmark(scope: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"{scope}|{position}".encode()).decode().rstrip("=")


def decode_bookmark(scope: str, bookmark: str) -> int:
    try:
        text = base64.urlsafe_b64decode(bookmark + "=" * (-len(bookmark) % 4)).decode()
        seen_scope, _, position = text.rpartition("|")
        value = int(position)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadBookmark(bookmark) from None
    if seen_scope != scope or value < 0:
        raise BadBookmark(bookmark)
    return value


class Store:
    """One Autopilot account's state."""

    def __init__(self) -> None:
        self.by_email: dict[str, ContactRecord] = {}  # lower-cased email -> record
        self.by_id: dict[str, ContactRecord] = {}
        self.all_contacts = OrderedIndex()
        self.lists: dict[str, Collection] = {}
        self.segments: dict[str, Collection] = {}
        self.triggers: dict[str, Trigger] = {}
        self.hooks: dict[str, dict[str, str]] = {}
        self.field_types: dict[str, str] = {}  # custom field name -> first type stored
        self.upsert_counts: Counter[str] = Counter()
        self._segment_serial = 1456891025207
        self._trigger_serial = 0

    # -- contacts -----------------------------------------------------------------------------
    def find(self, ref: str) -> ContactRecord | None:
        """A contact by contact_id or by email (case-insensitive)."""
        return self.by_id.get(ref) or self.by_email.get(ref.lower())

    def new_email_conflict(self, contact: ValidContact) -> bool:
        """Whether `_NewEmail` names an address already used by a different contact."""
        if contact.new_email is None:
            return False
        taken = self.by_email.get(contact.new_email.lower())
        return taken is not None and taken is not self.by_email.get(contact.email.lower())

    def upsert(self, contact: ValidContact, *, now: str, honour_list: bool) -> ContactRecord:
        """Create or merge a contact: keys absent from the upsert keep their stored values."""
        key = contact.email.lower()
        record = self.by_email.get(key)
        fields = dict(contact.fields)
        if contact.new_email is not None:
            fields["Email"] = contact.new_email
            if record is not None:
                del self.by_email[key]
            key = contact.new_email.lower()
        if record is None:
            record = ContactRecord(
                contact_id=_new_id("person_"),
                fields={"Email": fields["Email"]},
                created_at=now,
                updated_at=now,
            )
            self.by_id[record.contact_id] = record
            self.all_contacts.add(record.contact_id)
        self.by_email[key] = record
        record.fields.update(fields)
        record.updated_at = now
        if contact.unsubscribed is not None:
            record.unsubscribed = contact.unsubscribed
        for name, (field_type, value) in contact.custom.items():
            self.field_types.setdefault(name, field_type)
            record.custom[name] = (field_type, value)
        if honour_list and contact.list_id is not None and contact.list_id in self.lists:
            self.add_member(self.lists[contact.list_id], record)
        self.upsert_counts[key] += 1
        return record

    def delete(self, record: ContactRecord) -> None:
        del self.by_id[record.contact_id]
        del self.by_email[record.email.lower()]
        self.all_contacts.discard(record.contact_id)
        for collection in (*self.lists.values(), *self.segments.values()):
            collection.members.discard(record.contact_id)

    # -- lists and segments ---------------------------------------------------------------------
    def list_by_title(self, title: str) -> Collection | None:
        folded = title.casefold()
        return next((c for c in self.lists.values() if c.title.casefold() == folded), None)

    def create_list(self, title: str) -> Collection:
        collection = Collection(collection_id=_new_id("contactlist_"), title=title)
        self.lists[collection.collection_id] = collection
        return collection

    def add_member(self, collection: Collection, record: ContactRecord) -> bool:
        added = collection.members.add(record.contact_id)
        if added and collection.collection_id in self.lists:
            record.lists[collection.collection_id] = None
        return added

    def remove_member(self, collection: Collection, record: ContactRecord) -> bool:
        removed = collection.members.discard(record.contact_id)
        record.lists.pop(collection.collection_id, None)
        return removed

    def create_segment(self, title: str, records: Iterable[ContactRecord]) -> Collection:
        self._segment_serial += 1
        segment = Collection(collection_id=f"contactlist_sseg{self._segment_serial}", title=title)
        for record in records:
            segment.members.add(record.contact_id)
        self.segments[segment.collection_id] = segment
        return segment

    def create_trigger(self, journey: str) -> Trigger:
        self._trigger_serial += 1
        trigger = Trigger(trigger_id=f"{self._trigger_serial:04d}", journey=journey)
        self.triggers[trigger.trigger_id] = trigger
        return trigger

    def create_hook(self, event: str, target_url: str) -> dict[str, str]:
        hook = {"hook_id": _new_id("hook_"), "event": event, "target_url": target_url}
        self.hooks[hook["hook_id"]] = hook
        return hook

    # -- pages --------------------------------------------------------------------------------
    def page(self, scope: str, index: OrderedIndex, bookmark: str | None) -> dict[str, Any]:
        """One page of a collection; raises BadBookmark for a bookmark not issued for `scope`."""
        start = 0 if bookmark is None else decode_bookmark(scope, bookmark)
        ids, following = index.page(start, PAGE_SIZE)
        answer: dict[str, Any] = {
            "contacts": [self.by_id[i].render() for i in ids],
            "total_contacts": len(index),
        }
        if following is not None:
            answer["bookmark"] = encode_bookmark(scope, following)
        return answer
