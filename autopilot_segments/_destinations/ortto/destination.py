"""`OrttoDestination`: the destination seam over an `OrttoClient`.

What the engine asks, in Ortto's terms (Ortto has no static lists):

- the target is a **tag** per segment (the segment's name unless configured): nothing to create. When
  an audience filtered on that tag exists, the target's note names it, so the report says which tag
  and which audience the segment lives in;
- a batch is one `person/merge` (at most 100 people and 2 MB; a larger body is split) with the tag in
  every person's `tags`, so membership travels in the call. Each person's fields come from the field
  dialect (`fields.py`); a contact it refuses is a per-row `invalid_value`, never sent. Ortto answers
  one status per person, in order: `created`/`merged` with a person id is stored, anything else
  (suppressed, invalid, ignored, an undocumented status) is not, with Ortto's reason; an asynchronous
  answer without people confirms nothing;
- leavers lose the tag (`unset_tags`, merged by person id with `skip_non_existing`): never deleted,
  never unsubscribed;
- members are the people with the tag (`person/get` with a `$has_tag` filter, cursor pages).

Consent: `bol::p` (email permission) is never sent unless `send_email_permission=True`.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal, cast

from ..._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    PermissionDeniedError,
)
from ..._mapping.fields import CustomField, parse_custom_field_key
from ..base import (
    Acknowledgement,
    CallStats,
    Capabilities,
    MappedRow,
    Membership,
    MembershipResult,
    PlannedCost,
    PlannedWork,
    Target,
    never,
)
from .client import MAX_MERGE_PEOPLE, MAX_PAGE, OrttoClient
from .fields import OrttoFields
from .models import Audience, MergeResult, OrttoCustomField

__all__ = ["MAX_BODY_BYTES", "ORTTO", "OrttoDestination"]

ORTTO: Final = Capabilities(
    name="Ortto",
    max_batch=MAX_MERGE_PEOPLE,
    removal_batch=MAX_MERGE_PEOPLE,
    target_noun="tag",
    member_page=MAX_PAGE,
)
MAX_BODY_BYTES: Final = 2 * 1024 * 1024
# Room left in a merge body for everything but the people (merge_by, strategies, brackets).
_ENVELOPE_BYTES: Final = 4096
_SEGMENT_PLACEHOLDER: Final = "{segment}"
# Errors after which nothing more may be sent: the key is wrong or not allowed to write.
FATAL_ERRORS: Final = (AuthenticationError, PermissionDeniedError)
_MAX_TAG: Final = 255


class OrttoDestination:
    """Exports segments to Ortto as a tag per segment, through an `OrttoClient`; see the module's doc.

    - `tag`: the tag a segment's people get. None (default): the segment's name. A string containing
      `{segment}` is a template (`"segment: {segment}"`); any other string is used for every segment.
    - `merge_strategy`: 2 (default) overwrites only the fields sent (empty values are never sent, so
      nothing is cleared); 1 only fills empty fields; 3 only creates new people (existing ones are
      answered `ignored` and reported as not exported).
    - `merge_by`: the 1 to 3 field ids that find an existing person (default: the email).
    - `create_fields`: create the mapping's custom fields the account lacks (default: a configuration
      error naming them and the type to create).
    - `send_email_permission`: send the mapping's `unsubscribed` column as Ortto's `bol::p`. Off by
      default: sending it overwrites each person's own choice.
    - `asynchronous`: ask Ortto to queue each merge. Its answer does not say who was stored, so every
      row of such a batch is reported `failed` (unconfirmed) and sent again by the next run.
    - `preserve_tags`: read each batch's people's tags first (one `person/get` per batch) and send
      them back with the segment's tag. Only for an account where `tags` on a merge *replace* a
      person's tags instead of adding to them (the documented behaviour): there, a merge with the
      segment's tag alone would drop every other tag.
    """

    capabilities: Final = ORTTO

    def __init__(
        self,
        client: OrttoClient,
        *,
        tag: str | None = None,
        merge_strategy: Literal[1, 2, 3] = 2,
        merge_by: Sequence[str] = ("str::email",),
        create_fields: bool = False,
        send_email_permission: bool = False,
        asynchronous: bool = False,
        preserve_tags: bool = False,
    ) -> None:
        problems: list[str] = []
        if not isinstance(cast(object, client), OrttoClient):
            problems.append(f"client must be an OrttoClient, got {type(client).__name__}")
        if tag is not None and (not isinstance(tag, str) or not tag.strip()):
            problems.append("tag must be a non-empty string, or None for the segment's name")
        if merge_strategy not in (1, 2, 3) or isinstance(merge_strategy, bool):
            problems.append("merge_strategy must be 1 (append only), 2 (overwrite) or 3 (create only)")
        fields = [merge_by] if isinstance(merge_by, str) else list(merge_by)
        if (
            not 1 <= len(fields) <= 3
            or len(set(fields)) != len(fields)
            or not all(isinstance(f, str) and ":" in f for f in fields)
        ):
            problems.append('merge_by takes 1 to 3 distinct Ortto field ids, e.g. ("str::email",)')
        elif "str::person_id" in fields:
            problems.append("merge_by cannot use str::person_id: an export does not know Ortto's ids")
        flags: tuple[tuple[str, object], ...] = (
            ("create_fields", create_fields),
            ("send_email_permission", send_email_permission),
            ("asynchronous", asynchronous),
            ("preserve_tags", preserve_tags),
        )
        for name, flag in flags:
            if not isinstance(flag, bool):
                problems.append(f"{name} must be True or False")
        if problems:
            raise ConfigurationError(problems)
        self.client = client
        self.tag = tag.strip() if tag is not None else None
        self.merge_strategy: Literal[1, 2, 3] = merge_strategy
        self.merge_by: tuple[str, ...] = tuple(fields)
        self.create_fields = create_fields
        self.send_email_permission = send_email_permission
        self.asynchronous = asynchronous
        self.preserve_tags = preserve_tags
        self._lock = threading.Lock()
        self._account_fields: list[OrttoCustomField] | None = None
        self._dialect: OrttoFields | None = None
        self._standard: set[str] = set()
        self._custom: dict[str, CustomField] = {}

    def __repr__(self) -> str:
        return (
            f"OrttoDestination({self.client!r}, tag={self.tag!r}, merge_strategy={self.merge_strategy}, "
            f"merge_by={self.merge_by!r})"
        )

    @property
    def requests_per_second(self) -> float:
        return self.client.requests_per_second

    @property
    def stats(self) -> CallStats:
        return self.client.stats

    @property
    def account_fingerprint(self) -> str:
        """`ortto:` and the key's digest: state written for Ortto never mixes with Autopilot's."""
        return "ortto:" + self.client.account_fingerprint

    def tag_for(self, segment: str) -> str:
        """The tag a segment's people get (see `tag`); a `ConfigurationError` if it would be unusable."""
        if self.tag is None:
            tag = segment.strip()
        elif _SEGMENT_PLACEHOLDER in self.tag:
            tag = self.tag.replace(_SEGMENT_PLACEHOLDER, segment.strip())
        else:
            tag = self.tag
        if not tag or len(tag) > _MAX_TAG:
            raise ConfigurationError(f"the tag for segment {segment!r} must be 1 to {_MAX_TAG} characters")
        return tag

    # -- target -------------------------------------------------------------------------------------

    def find_target(self, segment: str) -> Target | None:
        """The segment's tag (a tag always exists: nothing is created), with the audience filtered on
        it, if any, in the note. Only reads (the account's audiences)."""
        tag = self.tag_for(segment)
        return Target(id=tag, title=tag, created=False, note=self._audience_note(tag))

    def resolve_target(self, segment: str, *, known_absent: bool = False) -> Target:
        found = self.find_target(segment)
        assert found is not None
        return found

    def audiences_for(self, tag: str) -> list[Audience]:
        """The account's audiences whose filter requires `tag` (read with their filters)."""
        return [a for a in self.client.audiences(with_filter=True) if _filters_on_tag(a.filter, tag)]

    def _audience_note(self, tag: str) -> str:
        try:
            audiences = self.audiences_for(tag)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            return f"Ortto tag {tag!r}; the audiences could not be read ({error})"
        if not audiences:
            return (
                f"Ortto tag {tag!r}; no audience is filtered on it yet "
                f"(create one in Ortto with the filter 'has tag {tag}')"
            )
        named = ", ".join(f"{a.name!r} ({a.audience_id})" for a in audiences)
        noun = "audience" if len(audiences) == 1 else "audiences"
        return f"Ortto tag {tag!r}; {noun} filtered on it: {named}"

    # -- people -------------------------------------------------------------------------------------

    def upsert_batch(
        self, target: Target, contacts: Sequence[MappedRow], *, should_stop: Callable[[], bool] = never
    ) -> Sequence[Acknowledgement]:
        """One merge (split only past 2 MB) tagging every person with `target.id`; one acknowledgement
        per contact, in order. Contacts the field dialect refuses are not sent (`invalid_value`)."""
        dialect = self._dialect_for(contacts)
        acknowledgements: list[Acknowledgement | None] = [None] * len(contacts)
        people: list[tuple[int, dict[str, Any]]] = []
        for index, contact in enumerate(contacts):
            fields = dialect.to_person(_without_empties(contact.payload))
            if isinstance(fields, str):
                acknowledgements[index] = Acknowledgement.refused(
                    f"Ortto would refuse this contact: {fields}", reason="invalid_value"
                )
            else:
                people.append((index, {"fields": fields, "tags": [target.id]}))
        if self.preserve_tags and people:
            self._add_current_tags([p for _, p in people], target.id)
        for chunk in _by_body_size(people):
            for index, acknowledgement in zip(
                (i for i, _ in chunk), self._merge([p for _, p in chunk]), strict=True
            ):
                acknowledgements[index] = acknowledgement
        return [a for a in acknowledgements if a is not None]

    def _add_current_tags(self, people: Sequence[dict[str, Any]], tag: str) -> None:
        """Put each existing person's current tags in its `tags`, before the segment's (one read)."""
        emails = [str(p["fields"]["str::email"]) for p in people]
        wanted = {"$or": [{"$str::is": {"field_id": "str::email", "value": e}} for e in emails]}
        current: dict[str, tuple[str, ...]] = {}
        for found in self.client.iter_people(
            fields=("str::email", "tags"), filter=wanted, page_size=MAX_MERGE_PEOPLE
        ):
            if found.email is not None:
                current[found.email.lower()] = found.tags
        for person, email in zip(people, emails, strict=True):
            person["tags"] = list(dict.fromkeys([*current.get(email.lower(), ()), tag]))

    def _merge(self, people: Sequence[dict[str, Any]]) -> list[Acknowledgement]:
        try:
            result = self.client.merge_people(
                people,
                merge_by=self.merge_by,
                merge_strategy=self.merge_strategy,
                asynchronous=self.asynchronous,
            )
        except BadRequestError as error:
            refused = _refused_per_person(error, len(people))
            if refused is None:
                raise  # the whole call was refused: the engine bisects it
            return refused
        return _acknowledge(result, len(people))

    def refusal_concerns_all(self, target: Target, contacts: Sequence[MappedRow], reason: str) -> bool:
        """Yes when `reason` names a field id every contact of `contacts` is sent with."""
        dialect = self._dialect
        if dialect is None:
            return False
        common: set[str] | None = None
        for contact in contacts:
            fields = dialect.to_person(_without_empties(contact.payload))
            ids = set(fields) if isinstance(fields, dict) else set()
            common = ids if common is None else common & ids
            if not common:
                return False
        return any(field_id in reason for field_id in common or ())

    # -- membership ---------------------------------------------------------------------------------

    def open_membership(
        self, target: Target, *, remembered: str | None, should_stop: Callable[[], bool] = never
    ) -> Membership:
        return _TaggedOnMerge(target.id)

    def remove_members(self, target: Target, contact_ids: Sequence[str]) -> Sequence[BaseException | None]:
        """Unset the tag on these people (merged by person id, `skip_non_existing`); a person who is
        gone or was never tagged is acknowledged. Nobody is deleted, created or unsubscribed."""
        if not 1 <= len(contact_ids) <= ORTTO.removal_batch:
            raise ValueError(f"remove_members takes 1 to {ORTTO.removal_batch} ids, got {len(contact_ids)}")
        people = [{"fields": {"str::person_id": cid}, "unset_tags": [target.id]} for cid in contact_ids]
        try:
            result = self.client.merge_people(
                people, merge_by=("str::person_id",), skip_non_existing=True, asynchronous=False
            )
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            return [error] * len(contact_ids)
        if len(result.people) == len(contact_ids):
            return [
                None if answer.status != "suppressed" else _RemovalRefused(answer.error or answer.status)
                for answer in result.people
            ]
        return self._still_tagged(target.id, contact_ids)

    def _still_tagged(self, tag: str, contact_ids: Sequence[str]) -> list[BaseException | None]:
        """The answer left people out (Ortto omits skipped ones): read who still has the tag."""
        wanted = {
            "$and": [
                {"$has_tag": {"value": tag}},
                {"$or": [{"$str::is": {"field_id": "str::person_id", "value": c}} for c in contact_ids]},
            ]
        }
        try:
            still = {p.person_id for p in self.client.iter_people(fields=("str::person_id",), filter=wanted)}
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            return [error] * len(contact_ids)
        return [_RemovalRefused("the tag is still set") if c in still else None for c in contact_ids]

    def iter_members(self, target: Target) -> Iterator[str | None]:
        for person in self.client.iter_people(
            fields=("str::email",), filter={"$has_tag": {"value": target.id}}
        ):
            yield person.email

    # -- fields -------------------------------------------------------------------------------------

    def field_conflicts(self, mapping: object) -> Sequence[str]:
        """Why Ortto could not take this mapping's contacts: a standard field without an Ortto
        counterpart, a custom field the account lacks (unless `create_fields`) or holds another type
        of value in, `unsubscribed` without `send_email_permission`. One read of the custom fields."""
        standard = [*_names(getattr(mapping, "fields", {})), *_names(getattr(mapping, "defaults", {}))]
        custom = [f for f in getattr(mapping, "custom", ()) if isinstance(f, CustomField)]
        account = self._read_account_fields() if custom else []
        present = account
        if self.create_fields:
            missing = OrttoFields.missing_custom_fields(custom, account)
            present = [*account, *(_planned_field(name, kind) for name, kind in missing)]
        try:
            OrttoFields.resolve(
                standard_fields=standard,
                custom_fields=custom,
                account_fields=present,
                maps_unsubscribed=getattr(mapping, "unsubscribed", None) is not None,
                send_email_permission=self.send_email_permission,
            )
        except ConfigurationError as error:
            return list(error.problems)
        return []

    def _read_account_fields(self) -> list[OrttoCustomField]:
        fields = self.client.custom_fields()
        with self._lock:
            self._account_fields = fields
        return fields

    def _dialect_for(self, contacts: Sequence[MappedRow]) -> OrttoFields:
        """The dialect for every field these contacts carry, resolved (and created, if asked) the
        first time a field is seen; a `ConfigurationError` names every field that cannot work."""
        standard, custom = _fields_of(contacts)
        with self._lock:
            if self._dialect is not None and standard <= self._standard and set(custom) <= set(self._custom):
                return self._dialect
            wanted_standard = self._standard | standard
            wanted_custom = {**self._custom, **custom}
            account = self._account_fields
            if account is None or OrttoFields.missing_custom_fields(list(wanted_custom.values()), account):
                account = self.client.custom_fields() if wanted_custom else (account or [])
            missing = OrttoFields.missing_custom_fields(list(wanted_custom.values()), account)
            if missing and self.create_fields:
                for name, kind in missing:
                    account = [*account, self.client.create_custom_field(name, kind)]
            dialect = OrttoFields.resolve(
                standard_fields=sorted(wanted_standard - {"unsubscribed"}),
                custom_fields=list(wanted_custom.values()),
                account_fields=account,
                maps_unsubscribed="unsubscribed" in wanted_standard,
                send_email_permission=self.send_email_permission,
            )
            self._account_fields = account
            self._standard, self._custom, self._dialect = wanted_standard, wanted_custom, dialect
            return dialect

    # -- plans --------------------------------------------------------------------------------------

    def plan_cost(self, work: PlannedWork) -> PlannedCost:
        """The audiences read, the custom fields read (when the mapping has custom fields), one merge
        per batch and one per 100 leavers. Worst: a bisected batch, not priced (it needs a refusal)."""
        batches = math.ceil(work.send / work.batch_size) if work.send else 0
        removals = math.ceil(work.removals / ORTTO.removal_batch) if work.removals else 0
        calls = 1 + (1 if work.custom_fields and work.send else 0) + batches + removals
        if self.preserve_tags:
            calls += batches  # one read of the batch's tags before each merge
        return PlannedCost(best=calls, worst=calls)


class _RemovalRefused(Exception):
    """Ortto answered a leaver's untagging with a status that does not say the tag is gone."""


class _TaggedOnMerge:
    """Membership travels in the merge (`tags`): every stored person is tagged already."""

    verdict = None

    def __init__(self, tag: str) -> None:
        self.description = f"tagged {tag!r} in each merge"

    def before_upsert(self, batch: Sequence[MappedRow]) -> object | None:
        return None

    def after_upsert(self, stored: Sequence[tuple[MappedRow, str]], claim: object | None) -> MembershipResult:
        return MembershipResult(members=list(stored))

    def cancel(self, claim: object | None) -> None:
        return None


# -- helpers -----------------------------------------------------------------------------------------


def _names(fields: object) -> list[str]:
    return [str(k) for k in fields] if isinstance(fields, Mapping) else []


def _planned_field(name: str, kind: str) -> OrttoCustomField:
    prefix = {"text": "str", "integer": "int", "decimal": "dec", "boolean": "bol", "date": "dtz"}[kind]
    return OrttoCustomField(f"{prefix}:cm:planned", name, kind)


def _without_empties(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload without empty values: an empty value is never sent, so it never clears a field."""
    clean = {k: v for k, v in payload.items() if k != "custom" and not _empty(v)}
    custom = payload.get("custom")
    if isinstance(custom, Mapping):
        kept = {k: v for k, v in custom.items() if not _empty(v)}
        if kept:
            clean["custom"] = kept
    return clean


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _fields_of(contacts: Sequence[MappedRow]) -> tuple[set[str], dict[str, CustomField]]:
    standard: set[str] = set()
    custom: dict[str, CustomField] = {}
    for contact in contacts:
        for name, value in contact.payload.items():
            if name == "custom" and isinstance(value, Mapping):
                for key in value:
                    parsed = parse_custom_field_key(str(key))
                    if parsed is not None and key not in custom:
                        custom[str(key)] = CustomField(parsed[1], parsed[0])  # type: ignore[arg-type]
            elif name not in ("Email", "_autopilot_list"):
                standard.add(name)
    return standard, custom


def _by_body_size(
    people: list[tuple[int, dict[str, Any]]], limit: int = MAX_BODY_BYTES
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """The people in order, in chunks whose merge body stays under `limit` (Ortto's 2 MB): one chunk,
    nearly always. Each person is weighed as its JSON with spaces (the client sends it without)."""
    if not people:
        return
    whole = len(json.dumps([p for _, p in people], ensure_ascii=False).encode())
    if whole + _ENVELOPE_BYTES <= limit:  # nearly always: one serialisation of the batch tells
        yield people
        return
    chunk: list[tuple[int, dict[str, Any]]] = []
    size = _ENVELOPE_BYTES
    for item in people:
        weight = len(json.dumps(item[1], ensure_ascii=False).encode()) + 2
        if chunk and size + weight > limit:
            yield chunk
            chunk, size = [], _ENVELOPE_BYTES
        chunk.append(item)
        size += weight
    if chunk:
        yield chunk


def _acknowledge(result: MergeResult, sent: int) -> list[Acknowledgement]:
    if result.accepted or not result.people:
        return [
            Acknowledgement.unconfirmed(
                "Ortto queued the merge without saying which people it stored: not counted as exported"
            )
        ] * sent
    if len(result.people) != sent:
        return [
            Acknowledgement.unconfirmed(
                f"Ortto answered {len(result.people)} results for {sent} people: which were stored is unknown"
            )
        ] * sent
    acknowledgements: list[Acknowledgement] = []
    for answer in result.people:
        if answer.stored:
            assert answer.person_id is not None
            acknowledgements.append(Acknowledgement.ok(answer.person_id))
        else:
            why = f" ({answer.error})" if answer.error else ""
            acknowledgements.append(
                Acknowledgement.refused(
                    f"Ortto did not store this person: {answer.status or 'no status'}{why}"
                )
            )
    return acknowledgements


def _refused_per_person(error: BadRequestError, sent: int) -> list[Acknowledgement] | None:
    """A 400 whose details give one status per person sent (every one refused): per-person refusals.
    Otherwise None: the call as a whole was refused and the engine isolates the culprit."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return None
    details = body.get("details") if isinstance(body, dict) else None
    if not isinstance(details, list) or len(details) != sent or sent == 0:
        return None
    refused: list[Acknowledgement] = []
    for detail in details:
        if not isinstance(detail, dict) or not isinstance(detail.get("status"), str):
            return None
        status, why = detail["status"], detail.get("error")
        refused.append(
            Acknowledgement.refused(
                f"Ortto did not store this person: {status}" + (f" ({why})" if why else "")
            )
        )
    return refused


def _filters_on_tag(condition: Any, tag: str) -> bool:
    """Whether an audience filter requires `tag` (a `$has_tag` on it, alone or inside an `$and`)."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return False
    ((operator, argument),) = condition.items()
    if operator == "$has_tag":
        return isinstance(argument, Mapping) and argument.get("value") == tag
    if operator == "$and" and isinstance(argument, list):
        return any(_filters_on_tag(c, tag) for c in argument)
    if operator == "$or" and isinstance(argument, list) and argument:
        return all(_filters_on_tag(c, tag) for c in argument)
    return False
