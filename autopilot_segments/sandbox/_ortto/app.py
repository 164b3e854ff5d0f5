"""The Ortto sandbox's request handling: auth, rate limit, bans, faults, and the endpoints."""

from __future__ import annotations

import collections
import json
import math
import secrets
from collections.abc import Callable
from typing import Any, Final

from .._faults import delay_seconds
from .._reply import Reply
from .._switched import SwitchedApp, same_key
from .settings import OrttoSettings
from .store import BadCursor, OrttoStore, Person
from .validation import (
    BUILT_IN_FIELDS,
    CUSTOM_FIELD_TYPES,
    MAX_BODY_BYTES,
    MAX_CUSTOM_FIELDS,
    MAX_MERGE_BY,
    MAX_PEOPLE,
    RequestProblem,
    check_value,
    field_kind,
)

__all__ = ["OrttoApp"]

_FAULT_MESSAGES: Final = {500: "Internal server error", 502: "Bad gateway", 503: "Service unavailable"}
_BAN_WINDOW: Final = 15.0  # seconds: 15 bad requests within it ban the caller for as long
_BAN_THRESHOLD: Final = 15
_PERSON_KEYS: Final = frozenset({"fields", "location", "tags", "unset_tags", "clear_fields"})
_MERGE_KEYS: Final = frozenset(
    {
        "people",
        "merge_by",
        "merge_strategy",
        "find_strategy",
        "async",
        "skip_non_existing",
        "suppression_list_field_id",
    }
)


class _Problem(Exception):
    def __init__(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


_ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/person/merge"): "merge_people",
    ("POST", "/person/get"): "get_people",
    ("POST", "/person/custom-field/get"): "get_custom_fields",
    ("POST", "/person/custom-field/create"): "create_custom_field",
    ("POST", "/audiences/get"): "get_audiences",
    ("PUT", "/audience/subscribe"): "subscribe_to_audience",
}


class OrttoApp(SwitchedApp[OrttoSettings]):
    """Turns one request into one Reply. Thread-safe: state changes happen under one lock."""

    key_header: Final = "X-Api-Key"

    def __init__(
        self,
        *,
        api_key: str,
        settings: OrttoSettings,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> None:
        super().__init__(settings, clock=clock)
        self._api_key = api_key
        self._sleep = sleep
        self.store = OrttoStore()
        self._bad_requests: collections.deque[float] = collections.deque()
        self._banned_until = -math.inf

    def __repr__(self) -> str:
        return f"<OrttoApp {len(self.store.people)} people>"

    def _reset_store(self) -> None:
        self.store = OrttoStore()
        self._bad_requests.clear()
        self._banned_until = -math.inf

    # -- the request pipeline -------------------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, api_key: str | None, raw_body: bytes, *, at: float | None = None
    ) -> Reply:
        """Answer one request; `at` is when its request line arrived (now, if not given)."""
        settings, bucket = self._settings, self._bucket
        path = self._path(raw_path)
        body, body_ok = self._parse(raw_body)
        entry = self.log.open(
            at=self._clock() if at is None else at,
            method=method,
            path=path or raw_path,
            body=body if settings.record_bodies else None,
        )
        if settings.latency:
            self._sleep(settings.latency)
        fault: str | None = None
        applied = False
        now = self._clock()
        if settings.bad_request_ban and now < self._banned_until:
            reply = self._rate_limited(self._banned_until - now)
        elif api_key is None or not same_key(api_key, self._api_key):
            reply = self._error(401, "Invalid API key or wrong region")
        elif bucket is not None and not bucket.try_acquire():
            reply = self._rate_limited(settings.try_in_seconds)
        else:
            fault = self.faults.next_fault(method, path or raw_path)
            if fault in ("500", "502", "503"):
                reply = self._error(int(fault), _FAULT_MESSAGES[int(fault)])
            elif fault == "429":
                reply = self._rate_limited(settings.try_in_seconds)
            elif fault == "drop_before":
                reply = Reply(status=0, drop=True)
            else:
                reply, applied = self._dispatch(method, path, body, body_ok, len(raw_body))
                if fault == "drop_after":
                    reply = Reply(status=0, drop=True)
                elif fault is not None:
                    self._sleep(delay_seconds(fault) or 0.0)
        if reply.status == 400 and settings.bad_request_ban:
            self._note_bad_request(now)
        self.log.complete(entry, status=None if reply.drop else reply.status, applied=applied, fault=fault)
        return reply

    def _note_bad_request(self, now: float) -> None:
        with self.lock:
            self._bad_requests.append(now)
            while self._bad_requests and self._bad_requests[0] <= now - _BAN_WINDOW:
                self._bad_requests.popleft()
            if len(self._bad_requests) >= _BAN_THRESHOLD:
                self._banned_until = now + _BAN_WINDOW
                self._bad_requests.clear()

    @staticmethod
    def _path(raw_path: str) -> str | None:
        path = raw_path.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        return path[len("/v1") :] if path.startswith("/v1/") else None

    @staticmethod
    def _parse(raw_body: bytes) -> tuple[Any, bool]:
        if not raw_body.strip():
            return None, True
        try:
            return json.loads(raw_body), True
        except (ValueError, UnicodeDecodeError):
            return None, False

    def _dispatch(
        self, method: str, path: str | None, body: Any, body_ok: bool, size: int
    ) -> tuple[Reply, bool]:
        try:
            handler = _ROUTES.get((method, path or ""))
            if handler is None:
                if any(p == path for _m, p in _ROUTES):
                    raise _Problem(405, f"Method {method} is not allowed here")
                raise _Problem(404, "Not found")
            if size > MAX_BODY_BYTES:
                raise _Problem(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
            if not body_ok:
                raise _Problem(400, "Request body is not valid JSON")
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise _Problem(400, "Request body must be a JSON object")
            status, payload = getattr(self, handler)(body)
        except _Problem as problem:
            return self._error(problem.status, problem.message, problem.details), False
        except RequestProblem as problem:
            return self._error(400, str(problem)), False
        if payload is None:
            return Reply(status=status), True
        return self._json(status, payload), True

    # -- answers --------------------------------------------------------------------------------------
    @staticmethod
    def _json(status: int, payload: Any) -> Reply:
        return Reply(status=status, body=json.dumps(payload).encode(), content_type="application/json")

    def _error(self, status: int, message: str, details: list[dict[str, str]] | None = None) -> Reply:
        payload: dict[str, Any] = {"request_id": secrets.token_hex(8), "code": status, "error": message}
        if details is not None:
            payload["details"] = details
        return self._json(status, payload)

    def _rate_limited(self, seconds: float) -> Reply:
        wait = max(1, math.ceil(seconds))
        return self._json(
            429, {"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": wait}}
        )

    # -- people ---------------------------------------------------------------------------------------
    def merge_people(self, body: dict[str, Any]) -> tuple[int, Any]:
        unknown = sorted(set(body) - _MERGE_KEYS)
        if unknown:
            raise RequestProblem(f"Unknown field(s) in the request: {', '.join(unknown)}")
        people = body.get("people")
        if not isinstance(people, list) or not 1 <= len(people) <= MAX_PEOPLE:
            raise RequestProblem(f"people must be a list of 1 to {MAX_PEOPLE} people")
        merge_by = body.get("merge_by", ["str::email"])
        strategy = body.get("merge_strategy", 2)
        find_strategy = body.get("find_strategy", 0)
        skip_non_existing = body.get("skip_non_existing", False)
        is_async = body.get("async", False)
        with self.lock:
            self._check_merge_options(merge_by, strategy, find_strategy, skip_non_existing, is_async)
            checked = [self._check_person(p, merge_by) for p in people]
            problems = [c for c in checked if isinstance(c, str)]
            if problems and (self._settings.invalid_person == "whole_call" or len(problems) == len(people)):
                details = [{"status": "invalid", "error": p} for p in problems]
                raise _Problem(400, f"No valid contacts provided ({problems[0]})", details)
            answers: list[dict[str, Any]] = []
            for item in checked:
                if isinstance(item, str):
                    answers.append({"status": "invalid", "error": item})
                    continue
                answer = self._merge_one(item, merge_by, strategy, find_strategy, skip_non_existing)
                if answer is not None:
                    answers.append(answer)
            if answers and all(a["status"] in ("invalid", "suppressed") for a in answers):
                details = [{"status": a["status"], "error": a["error"]} for a in answers]
                raise _Problem(400, f"No valid contacts provided ({details[0]['error']})", details)
        if is_async:
            if self._settings.async_answer == "empty":
                return 200, None
            if self._settings.async_answer == "accepted":
                return 202, {"status": "accepted"}
        return 200, {"people": answers}

    @staticmethod
    def _check_merge_options(
        merge_by: Any, strategy: Any, find_strategy: Any, skip_non_existing: Any, is_async: Any
    ) -> None:
        if (
            not isinstance(merge_by, list)
            or not 1 <= len(merge_by) <= MAX_MERGE_BY
            or not all(isinstance(f, str) for f in merge_by)
            or len(set(merge_by)) != len(merge_by)
        ):
            raise RequestProblem(f"merge_by must list 1 to {MAX_MERGE_BY} distinct field ids")
        if "str::person_id" in merge_by and len(merge_by) > 1:
            raise RequestProblem("str::person_id must be the only merge_by field when used")
        if strategy not in (1, 2, 3) or isinstance(strategy, bool):
            raise RequestProblem("merge_strategy must be 1 (append only), 2 (overwrite) or 3 (ignore)")
        if find_strategy not in (0, 1, 2) or isinstance(find_strategy, bool):
            raise RequestProblem("find_strategy must be 0 (any), 1 (next if empty) or 2 (all)")
        if not isinstance(skip_non_existing, bool) or not isinstance(is_async, bool):
            raise RequestProblem("skip_non_existing and async must be true or false")

    def _check_person(self, person: Any, merge_by: list[str]) -> dict[str, Any] | str:
        if not isinstance(person, dict):
            return "a person must be a JSON object"
        unknown = sorted(set(person) - _PERSON_KEYS)
        if unknown:
            return f"unknown key(s) {', '.join(unknown)}"
        fields = person.get("fields", {})
        if not isinstance(fields, dict):
            return "fields must be an object"
        custom = self.store.custom_kinds
        for field_id in merge_by:
            if field_kind(field_id, custom) is None:
                return f"merge field {field_id} does not exist"
        for field_id, value in fields.items():
            kind = field_kind(field_id, custom)
            if kind is None:
                return f"field {field_id} does not exist"
            problem = check_value(field_id, kind, value)
            if problem is not None:
                return problem
        for key in ("tags", "unset_tags", "clear_fields"):
            value = person.get(key, [])
            if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
                return f"{key} must be a list of non-empty strings"
        for field_id in person.get("clear_fields", []):
            if field_kind(field_id, custom) is None:
                return f"field {field_id} does not exist"
        if not any(fields.get(f) not in (None, "") for f in merge_by):
            return f"no value for the merge field(s) {', '.join(merge_by)}"
        return person

    def _find(self, fields: dict[str, Any], merge_by: list[str], find_strategy: int) -> Person | str | None:
        if find_strategy == 2:
            if any(fields.get(f) in (None, "") for f in merge_by):
                return "find_strategy 2 needs a value for every merge field"
            found = {id(self.store.find(f, fields[f])) for f in merge_by}
            person = self.store.find(merge_by[0], fields[merge_by[0]])
            return person if len(found) == 1 else None
        for field_id in merge_by:
            value = fields.get(field_id)
            if value in (None, ""):
                continue
            person = self.store.find(field_id, value)
            if person is not None or find_strategy == 1:
                return person
        return None

    def _merge_one(
        self,
        person: dict[str, Any],
        merge_by: list[str],
        strategy: int,
        find_strategy: int,
        skip_non_existing: bool,
    ) -> dict[str, Any] | None:
        store = self.store
        fields: dict[str, Any] = person.get("fields", {})
        email = fields.get("str::email")
        if isinstance(email, str) and email.strip().lower() in store.suppressed:
            return {"status": "suppressed", "error": "Email is suppressed"}
        found = self._find(fields, merge_by, find_strategy)
        if isinstance(found, str):
            return {"status": "invalid", "error": found}
        if found is None:
            if skip_non_existing:
                return self._skipped(None)
            for field_id in merge_by:
                if field_id == "str::person_id":
                    return {"status": "invalid", "error": "no person has that str::person_id"}
            created = store.create({k: v for k, v in fields.items() if v is not None})
            created.fields.setdefault("bol::p", True)  # Ortto's default for a new person: subscribed
            created.fields.setdefault("bol::sp", False)
            self._apply_tags(created, person)
            store.merge_counts[created.person_id] = store.merge_counts.get(created.person_id, 0) + 1
            return {"person_id": created.person_id, "status": "created"}
        if strategy == 3:
            return self._skipped(found)
        for field_id, value in fields.items():
            if strategy == 1 and found.fields.get(field_id) not in (None, ""):
                continue
            if strategy == 1 and value is None:
                continue
            store.set_field(found, field_id, value)
        for field_id in person.get("clear_fields", []):
            store.set_field(found, field_id, None)
        self._apply_tags(found, person)
        store.merge_counts[found.person_id] = store.merge_counts.get(found.person_id, 0) + 1
        return {"person_id": found.person_id, "status": "merged"}

    def _skipped(self, person: Person | None) -> dict[str, Any] | None:
        status = self._settings.skipped_status
        if status == "omitted":
            return None
        answer: dict[str, Any] = {"status": status}
        if person is not None:
            answer["person_id"] = person.person_id
        return answer

    def _apply_tags(self, target: Person, person: dict[str, Any]) -> None:
        if "tags" in person:
            new = list(person["tags"])
            if self._settings.merge_tags == "replace":
                target.tags = list(dict.fromkeys(new))
            else:
                target.tags.extend(t for t in dict.fromkeys(new) if t not in target.tags)
        removed = set(person.get("unset_tags", []))
        if removed:
            target.tags = [t for t in target.tags if t not in removed]

    def get_people(self, body: dict[str, Any]) -> tuple[int, Any]:
        limit = body.get("limit", 50)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
            raise RequestProblem("limit must be an integer from 1 to 500")
        fields = body.get("fields")
        if fields is not None and (
            not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
        ):
            raise RequestProblem("fields must be a list of field ids")
        with self.lock:
            start = self._start_of(body)
            people = self._filtered(body)
            page = people[start : start + limit]
            end = start + len(page)
            has_more = end < len(people)
            answer: dict[str, Any] = {
                "contacts": [p.render(fields) for p in page],
                "meta": {"total_contacts": len(people)},
                "offset": start,
                "next_offset": end,
                "has_more": has_more,
            }
            if has_more:
                answer["cursor_id"] = self.store.encode_cursor(end)
            return 200, answer

    def _start_of(self, body: dict[str, Any]) -> int:
        cursor, offset = body.get("cursor_id"), body.get("offset")
        if cursor is not None and offset is not None:
            raise RequestProblem("give offset or cursor_id, not both")
        if cursor is not None:
            if not isinstance(cursor, str):
                raise RequestProblem("cursor_id must be a string")
            try:
                return self.store.decode_cursor(cursor)
            except BadCursor:
                raise RequestProblem("invalid cursor_id") from None
        if offset is None:
            return 0
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise RequestProblem("offset must be an integer >= 0")
        return offset

    def _filtered(self, body: dict[str, Any]) -> list[Person]:
        people = self.store.ordered()
        audience_id = body.get("audience_id")
        if audience_id is not None:
            audience = self.store.audiences.get(audience_id) if isinstance(audience_id, str) else None
            if audience is None:
                raise _Problem(404, "Audience not found")
            members = {p.person_id for p in self.store.audience_members(audience)}
            people = [p for p in people if p.person_id in members]
        condition = body.get("filter")
        if condition is not None:
            people = [p for p in people if self._matches(p, condition)]
        return people

    def _matches(self, person: Person, condition: Any) -> bool:
        if not isinstance(condition, dict) or len(condition) != 1:
            raise RequestProblem("a filter is an object with exactly one operator")
        ((operator, argument),) = condition.items()
        if operator in ("$and", "$or"):
            if not isinstance(argument, list) or not argument:
                raise RequestProblem(f"{operator} takes a non-empty list of filters")
            results = [self._matches(person, c) for c in argument]
            return all(results) if operator == "$and" else any(results)
        if not isinstance(argument, dict):
            raise RequestProblem(f"{operator} takes an object")
        if operator == "$has_tag":
            return argument.get("value") in person.tags
        field_id = argument.get("field_id")
        if not isinstance(field_id, str) or field_kind(field_id, self.store.custom_kinds) is None:
            raise RequestProblem(f"{operator}: unknown field_id {field_id!r}")
        value = person.person_id if field_id == "str::person_id" else person.fields.get(field_id)
        if operator == "$has_any_value":
            return value not in (None, "")
        if operator == "$str::is":
            wanted = argument.get("value")
            if field_id == "str::email" and isinstance(value, str) and isinstance(wanted, str):
                return value.lower() == wanted.lower()
            return bool(value == wanted)
        raise RequestProblem(f"unsupported filter operator {operator}")

    # -- custom fields --------------------------------------------------------------------------------
    def get_custom_fields(self, _body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            return 200, {"fields": [f.render() for f in self.store.custom_fields.values()]}

    def create_custom_field(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, field_type = body.get("name"), body.get("type")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise RequestProblem("name must be a non-empty string of at most 100 characters")
        if field_type not in CUSTOM_FIELD_TYPES:
            raise RequestProblem(f"type must be one of {', '.join(CUSTOM_FIELD_TYPES)}")
        with self.lock:
            if self.store.field_named(name) is not None:
                raise _Problem(409, f"A custom field named {name!r} already exists")
            if len(self.store.custom_fields) >= MAX_CUSTOM_FIELDS:
                raise RequestProblem(f"the account already has {MAX_CUSTOM_FIELDS} custom fields")
            record = self.store.create_custom_field(name.strip(), field_type, CUSTOM_FIELD_TYPES[field_type])
            if record.field_id in BUILT_IN_FIELDS:
                raise RequestProblem(f"{name!r} is a built-in field")
            return 200, {"field_id": record.field_id, **record.render()}

    # -- audiences ------------------------------------------------------------------------------------
    def get_audiences(self, body: dict[str, Any]) -> tuple[int, Any]:
        search, with_filter = body.get("search_term"), body.get("with_filter", False)
        limit, offset = body.get("limit", 40), body.get("offset", 0)
        if search is not None and not isinstance(search, str):
            raise RequestProblem("search_term must be a string")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 40:
            raise RequestProblem("limit must be an integer from 1 to 40")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise RequestProblem("offset must be an integer >= 0")
        if not isinstance(with_filter, bool):
            raise RequestProblem("with_filter must be true or false")
        with self.lock:
            audiences = [
                a for a in self.store.audiences.values() if not search or search.lower() in a.name.lower()
            ]
            return 200, [a.render(with_filter=with_filter) for a in audiences[offset : offset + limit]]

    def subscribe_to_audience(self, body: dict[str, Any]) -> tuple[int, Any]:
        audience_id, people = body.get("audience_id"), body.get("people")
        if not isinstance(people, list) or not 1 <= len(people) <= MAX_PEOPLE:
            raise RequestProblem(f"people must be a list of 1 to {MAX_PEOPLE} people")
        with self.lock:
            audience = self.store.audiences.get(audience_id) if isinstance(audience_id, str) else None
            if audience is None:
                raise _Problem(404, "Audience not found")
            members = {p.person_id for p in self.store.audience_members(audience)}
            answers = []
            for item in people:
                if (
                    not isinstance(item, dict)
                    or not isinstance(item.get("email"), str)
                    or not isinstance(item.get("subscribed"), bool)
                ):
                    raise RequestProblem('each person must be {"email": "...", "subscribed": true|false}')
                person = self.store.by_email(item["email"])
                if person is None or person.person_id not in members:
                    answers.append({"email": item["email"], "status": "not-a-member"})
                    continue
                if item["subscribed"]:
                    audience.unsubscribed.discard(person.person_id)
                else:
                    audience.unsubscribed.add(person.person_id)
                answers.append(
                    {"email": item["email"], "status": "subscribed" if item["subscribed"] else "unsubscribed"}
                )
            return 200, {"people": answers}
