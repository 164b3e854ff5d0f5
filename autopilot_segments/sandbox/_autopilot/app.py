"""The sandbox's request handling, independent of HTTP plumbing: auth, rate limit, faults, endpoints."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import unquote

import attrs

from .._faults import delay_seconds
from .._reply import Reply
from .._switched import SwitchedApp, same_key
from .settings import Settings
from .store import BadBookmark, Collection, ContactRecord, Store
from .validation import HOOK_EVENTS, ValidContact, validate_contact

__all__ = ["Reply", "SandboxApp"]

MAX_BULK: Final = 100
_DEFAULT_RATE_MESSAGE: Final = (
    5  # the documented Autopilot rate, quoted by a scripted 429 when no limit is set
)
_FAULT_MESSAGES: Final = {
    500: "An unexpected error occurred.",
    502: "The upstream server did not answer.",
    503: "The service is temporarily unavailable.",
}


class _Problem(Exception):
    """An error answer raised from deep inside an endpoint."""

    def __init__(self, status: int, message: str, *, empty_body: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.empty_body = empty_body


@attrs.define
class _Result:
    status: int
    payload: Any  # JSON-able, or None for an empty body
    applied: bool = True


def _now_iso(wall_clock: Callable[[], datetime]) -> str:
    return wall_clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _format_rate(rate: float) -> str:
    return str(int(rate)) if float(rate).is_integer() else f"{rate:g}"


def _not_found(what: str) -> _Problem:
    return _Problem(404, f"{what} could not be found.")


_Handler = Callable[["SandboxApp", list[str], Any], _Result]
_ROUTES: list[tuple[str, tuple[str, ...], str]] = []  # (method, pattern, method name); "*" matches a segment


def _route(method: str, pattern: str) -> Callable[[_Handler], _Handler]:
    def register(func: _Handler) -> _Handler:
        _ROUTES.append((method, tuple(pattern.strip("/").split("/")), func.__name__))
        return func

    return register


class SandboxApp(SwitchedApp[Settings]):
    """Turns one request into one Reply. Thread-safe: state changes happen under one lock."""

    key_header: Final = "autopilotapikey"

    def __init__(
        self,
        *,
        api_key: str,
        settings: Settings,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        wall_clock: Callable[[], datetime],
    ) -> None:
        super().__init__(settings, clock=clock)
        self._api_key = api_key
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.store = Store()

    def __repr__(self) -> str:
        return f"<SandboxApp {len(self.store.by_id)} contacts>"

    def _reset_store(self) -> None:
        self.store = Store()

    def now(self) -> str:
        return _now_iso(self._wall_clock)

    # -- the request pipeline -----------------------------------------------------------------
    def handle(
        self, method: str, raw_path: str, api_key: str | None, raw_body: bytes, *, at: float | None = None
    ) -> Reply:
        """Answer one request; `at` is when its request line arrived (now, if not given)."""
        settings, bucket = self._settings, self._bucket
        segments, path = self._split(raw_path)
        body, body_ok = self._parse(raw_body)
        entry = self.log.open(
            at=self._clock() if at is None else at,
            method=method,
            path=path,
            body=body if settings.record_bodies else None,
            raw_path=raw_path,
        )
        if settings.latency:
            self._sleep(settings.latency)
        fault: str | None = None
        applied = False
        if api_key is None:
            reply = self._error(400, "No autopilotapikey header provided.")
        elif not same_key(api_key, self._api_key):
            reply = self._error(401, "Provided autopilotapikey not valid.")
        elif bucket is not None and not bucket.try_acquire():
            reply = self._rate_limited(bucket.rate)
        else:
            fault = self.faults.next_fault(method, path)
            if fault in ("500", "502", "503"):
                status = int(fault)
                reply = self._error(status, _FAULT_MESSAGES[status])
            elif fault == "429":
                reply = self._rate_limited(bucket.rate if bucket else _DEFAULT_RATE_MESSAGE)
            elif fault == "drop_before":
                reply = Reply(status=0, drop=True)
            else:
                reply, applied = self._dispatch(method, segments, body, body_ok)
                if fault == "drop_after":
                    reply = Reply(status=0, drop=True)
                elif fault is not None:
                    self._sleep(delay_seconds(fault) or 0.0)
        self.log.complete(entry, status=None if reply.drop else reply.status, applied=applied, fault=fault)
        return reply

    @staticmethod
    def _split(raw_path: str) -> tuple[list[str] | None, str]:
        path = raw_path.split("?", 1)[0].split("#", 1)[0]
        if path != "/v1" and not path.startswith("/v1/"):
            return None, unquote(path)
        segments = [unquote(s) for s in path[len("/v1/") :].split("/")]
        while segments and not segments[-1]:
            segments.pop()
        return segments, "/" + "/".join(segments)

    @staticmethod
    def _parse(raw_body: bytes) -> tuple[Any, bool]:
        if not raw_body.strip():
            return None, True
        try:
            return json.loads(raw_body), True
        except (ValueError, UnicodeDecodeError):
            return None, False

    def _dispatch(
        self, method: str, segments: list[str] | None, body: Any, body_ok: bool
    ) -> tuple[Reply, bool]:
        try:
            handler, params = self._resolve(method, segments)
            if not body_ok:
                raise _Problem(400, "Request body is not valid JSON.")
            result: _Result = getattr(self, handler)(params, body)
        except _Problem as problem:
            if problem.empty_body:
                return Reply(status=problem.status), False
            return self._error(problem.status, problem.message), False
        if result.payload is None:
            return Reply(status=result.status), result.applied
        return self._json(result.status, result.payload), result.applied

    @staticmethod
    def _resolve(method: str, segments: list[str] | None) -> tuple[str, list[str]]:
        if segments is None:
            raise _Problem(404, "Not found.")
        path_matched = False
        for route_method, pattern, handler in _ROUTES:
            if len(pattern) != len(segments):
                continue
            if all(p == "*" or p == s for p, s in zip(pattern, segments, strict=True)):
                if route_method == method:
                    return handler, [s for p, s in zip(pattern, segments, strict=True) if p == "*"]
                path_matched = True
        if path_matched:
            raise _Problem(405, f"Method {method} is not allowed here.")
        raise _Problem(404, "Not found.")

    # -- answers ------------------------------------------------------------------------------
    @staticmethod
    def _json(status: int, payload: Any) -> Reply:
        return Reply(status=status, body=json.dumps(payload).encode(), content_type="application/json")

    def _error(self, status: int, message: str) -> Reply:
        style = self._settings.error_style
        phrase = HTTPStatus(status).phrase
        if style == "json":
            return self._json(status, {"error": phrase, "message": message})
        if style == "code":
            return self._json(status, {"code": status, "message": message})
        if style == "empty":
            return Reply(status=status)
        page = (
            f"<html><head><title>{status} {phrase}</title></head>"
            f"<body><h1>{status} {phrase}</h1><p>{html.escape(message)}</p></body></html>"
        )
        return Reply(status=status, body=page.encode(), content_type="text/html; charset=utf-8")

    def _rate_limited(self, rate: float) -> Reply:
        reply = self._error(429, f"You have exceeded your request rate of {_format_rate(rate)} r/s.")
        if self._settings.retry_after is not None:
            reply.headers["Retry-After"] = _format_rate(self._settings.retry_after)
        return reply

    # -- helpers used by endpoints ------------------------------------------------------------
    def _contact(self, ref: str) -> ContactRecord:
        record = self.store.find(ref)
        if record is None:
            raise _not_found("Contact")
        return record

    def _list(self, list_id: str) -> Collection:
        collection = self.store.lists.get(list_id)
        if collection is None:
            raise _not_found("List")
        return collection

    def _page(self, scope: str, collection_members: Any, bookmark: str | None) -> _Result:
        try:
            return _Result(200, self.store.page(scope, collection_members, bookmark))
        except BadBookmark:
            raise _Problem(400, "Invalid bookmark.") from None

    def validate(self, raw: object, position: int | None, pending: dict[str, str]) -> ValidContact | str:
        """Validate against stored field types plus `pending` (types introduced earlier in the request)."""
        types = {**self.store.field_types, **pending} if pending else self.store.field_types
        result = validate_contact(raw, position=position, field_types=types)
        if isinstance(result, str):
            return result
        if self.store.new_email_conflict(result):
            return f'Contact "{result.email}": _NewEmail {result.new_email!r} is used by another contact'
        if (
            result.list_id is not None
            and result.list_id not in self.store.lists
            and self._honours_list(position)
        ):
            return f'Contact "{result.email}": list {result.list_id!r} could not be found'
        for name, (field_type, _value) in result.custom.items():
            pending.setdefault(name, field_type)
        return result

    def _honours_list(self, position: int | None) -> bool:
        return position is None or self._settings.bulk_list == "honoured"

    # -- endpoints ----------------------------------------------------------------------------
    @_route("GET", "account")
    def get_account(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            return _Result(
                200,
                {
                    "account_id": "sandbox",
                    "name": "Autopilot sandbox",
                    "contacts": len(self.store.by_id),
                    "rate_limit": self._settings.rate_limit,
                },
            )

    @_route("POST", "contact")
    def upsert_one(self, _params: list[str], body: Any) -> _Result:
        if not isinstance(body, dict) or not isinstance(body.get("contact"), dict):
            raise _Problem(400, 'The body must be {"contact": {...}}.')
        with self.lock:
            contact = self.validate(body["contact"], None, {})
            if isinstance(contact, str):
                raise _Problem(400, contact)
            record = self.store.upsert(contact, now=self.now(), honour_list=True)
            return _Result(200, {"contact_id": record.contact_id})

    @_route("POST", "contacts")
    def upsert_bulk(self, _params: list[str], body: Any) -> _Result:
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not contacts:
            raise _Problem(400, 'The body must be {"contacts": [...]} with 1 to 100 contacts.')
        if len(contacts) > MAX_BULK:
            raise _Problem(400, f"At most {MAX_BULK} contacts per request, got {len(contacts)}.")
        with self.lock:
            pending: dict[str, str] = {}
            checked = [self.validate(raw, i, pending) for i, raw in enumerate(contacts, start=1)]
            problems = [c for c in checked if isinstance(c, str)]
            if problems and self._settings.bulk_invalid == "reject":
                raise _Problem(400, problems[0])
            now = self.now()
            honour = self._settings.bulk_list == "honoured"
            ids: list[str] = []
            mapping: dict[str, str] = {}
            for contact in checked:
                if isinstance(contact, str):
                    continue
                record = self.store.upsert(contact, now=now, honour_list=honour)
                ids.append(record.contact_id)
                mapping[contact.email] = record.contact_id
            if self._settings.bulk_answer == "ids_only":  # Autopilot's published example answer
                return _Result(200, {"contact_ids": ids})
            return _Result(200, {"contact_ids": ids, "email_contact_map": mapping})

    @_route("GET", "contacts/custom_fields")
    def custom_fields(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            return _Result(200, [{"name": n, "fieldType": t} for n, t in self.store.field_types.items()])

    @_route("GET", "contacts")
    def all_contacts(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page("contacts", self.store.all_contacts, None)

    @_route("GET", "contacts/*")
    def all_contacts_next(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page("contacts", self.store.all_contacts, params[0])

    @_route("GET", "contact/*")
    def get_contact(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return _Result(200, self._contact(params[0]).render())

    @_route("DELETE", "contact/*")
    def delete_contact(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            self.store.delete(self._contact(params[0]))
            status = self._settings.delete_status
            return _Result(status, {} if status == 200 else None)

    @_route("POST", "contact/*/unsubscribe")
    def unsubscribe(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            record = self._contact(params[0])
            record.unsubscribed = True
            record.updated_at = self.now()
            return _Result(200, {})

    @_route("GET", "lists")
    def get_lists(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            return _Result(
                200,
                {
                    "lists": [
                        {"list_id": c.collection_id, "title": c.title} for c in self.store.lists.values()
                    ]
                },
            )

    @_route("POST", "list")
    def create_list(self, _params: list[str], body: Any) -> _Result:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _Problem(400, 'The body must be {"name": "<list name>"}.')
        with self.lock:
            if self.store.list_by_title(name) is not None and self._settings.duplicate_list == "conflict":
                raise _Problem(409, f"A list named {name!r} already exists.")
            return _Result(200, {"list_id": self.store.create_list(name).collection_id})

    @_route("GET", "list/*/contacts")
    def list_contacts(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page(f"list:{params[0]}", self._list(params[0]).members, None)

    @_route("GET", "list/*/contacts/*")
    def list_contacts_next(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page(f"list:{params[0]}", self._list(params[0]).members, params[1])

    @_route("GET", "list/*/contact/*")
    def on_list(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            collection = self._list(params[0])
            record = self.store.find(params[1])
            if record is None or record.contact_id not in collection.members:
                raise _Problem(404, "", empty_body=True)
            return _Result(200, {})

    @_route("POST", "list/*/contact/*")
    def add_to_list(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            collection, record = self._list(params[0]), self._contact(params[1])
            return _Result(200, {} if self.store.add_member(collection, record) else {"not_modified": True})

    @_route("DELETE", "list/*/contact/*")
    def remove_from_list(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            collection, record = self._list(params[0]), self._contact(params[1])
            removed = self.store.remove_member(collection, record)
            return _Result(200, {} if removed else {"not_modified": True})

    @_route("GET", "smart_segments")
    def get_segments(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            segments = [
                {"segment_id": s.collection_id, "title": s.title} for s in self.store.segments.values()
            ]
            return _Result(200, {"segments": segments})

    def _segment(self, segment_id: str) -> Collection:
        segment = self.store.segments.get(segment_id)
        if segment is None:
            raise _not_found("Smart segment")
        return segment

    @_route("GET", "smart_segments/*/contacts")
    def segment_contacts(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page(f"segment:{params[0]}", self._segment(params[0]).members, None)

    @_route("GET", "smart_segments/*/contacts/*")
    def segment_contacts_next(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            return self._page(f"segment:{params[0]}", self._segment(params[0]).members, params[1])

    @_route("GET", "triggers")
    def get_triggers(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            triggers = [
                {"trigger_id": t.trigger_id, "journey": t.journey, "trigger_type": "api"}
                for t in self.store.triggers.values()
            ]
            return _Result(200, {"triggers": triggers})

    @_route("POST", "trigger/*/contact/*")
    def add_to_journey(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            trigger = self.store.triggers.get(params[0])
            if trigger is None:
                raise _not_found("Trigger")
            record = self._contact(params[1])
            trigger.entries.append(record.contact_id)
            # Autopilot answers with internal bookkeeping; clients must ignore it.
            junk = {"_id": f"{len(trigger.entries):024x}", "__v": 0, "flowId": trigger.trigger_id, "ok": 1}
            return _Result(200, junk)

    @_route("GET", "hooks")
    def get_hooks(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            return _Result(200, {"hooks": [dict(h) for h in self.store.hooks.values()]})

    @_route("POST", "hook")
    def register_hook(self, _params: list[str], body: Any) -> _Result:
        event = body.get("event") if isinstance(body, dict) else None
        target = body.get("target_url") if isinstance(body, dict) else None
        if event not in HOOK_EVENTS:
            raise _Problem(400, f"Unknown event {event!r}: use one of {', '.join(HOOK_EVENTS)}.")
        if not isinstance(target, str) or not target.startswith(("http://", "https://")):
            raise _Problem(400, "target_url must be an http(s) URL.")
        with self.lock:
            hook = self.store.create_hook(event, target)
            if self._settings.hook_style == "old":
                return _Result(201, {"id": hook["hook_id"]})
            return _Result(200, {"hook_id": hook["hook_id"]})

    @_route("DELETE", "hook/*")
    def unregister_hook(self, params: list[str], _body: Any) -> _Result:
        with self.lock:
            if self.store.hooks.pop(params[0], None) is None:
                raise _not_found("Hook")
            return _Result(200, {})

    @_route("DELETE", "hooks")
    def unregister_hooks(self, _params: list[str], _body: Any) -> _Result:
        with self.lock:
            self.store.hooks.clear()
            return _Result(200, {})
