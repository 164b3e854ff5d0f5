"""`AutopilotClient`: one method per endpoint of the Autopilot REST API v1.

The client validates its configuration up front, rate-limits every request start (retries included)
through one shared `RateLimiter`, retries through urllib3 only (see `_http/transport.py`), and turns every
failure into a typed error from `_errors`. The API key never leaves the request header.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeAlias
from urllib.parse import quote

import requests

from ..._errors import APIError, AuthenticationError, ConfigurationError
from ..._http.client import APIClientBase, as_array, as_object, resolve_base_url
from .models import (
    BulkUpsertResult,
    Contact,
    ContactList,
    CustomFieldDefinition,
    Hook,
    SmartSegment,
    Trigger,
)

__all__ = ["API_KEY_ENV", "BASE_URL_ENV", "DEFAULT_BASE_URL", "MAX_BULK_CONTACTS", "AutopilotClient"]


API_KEY_ENV: Final = "AUTOPILOT_API_KEY"
BASE_URL_ENV: Final = "AUTOPILOT_BASE_URL"
DEFAULT_BASE_URL: Final = "https://api2.autopilothq.com/v1"
MAX_BULK_CONTACTS: Final = 100
_KEY_FORMAT = re.compile(r"[0-9a-fA-F]{32}")
# Kept as is in a contact path segment besides the unreserved characters: the email's `@`.
_CONTACT_SAFE: Final = "@"

ContactRef: TypeAlias = "str | Contact"
ContactInput: TypeAlias = "Contact | Mapping[str, Any]"


class AutopilotClient(APIClientBase):
    """A typed, rate-limited, retrying client for the Autopilot REST API v1.

    `api_key` defaults to the `AUTOPILOT_API_KEY` environment variable, `base_url` to the
    `AUTOPILOT_BASE_URL` environment variable and then to Autopilot's API (an argument always wins over
    the environment). `requests_per_second` is the
    account's limit (5 by default), shared by every thread using this client. Use it as a context
    manager, or call `close()`: a session the client created is closed, a session passed in is not.
    """

    service: ClassVar[str] = "Autopilot"
    key_header: ClassVar[str] = "autopilotapikey"
    _fingerprint_prefix: ClassVar[bytes] = b"autopilot-segments/account-fingerprint/v1:"
    _log: ClassVar[logging.Logger] = logging.getLogger("autopilot_segments.client")

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        requests_per_second: float = 5.0,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        max_retries: int = 5,
        backoff_factor: float = 0.5,
        max_retry_after: float = 60.0,
        deadline: float | None = 120.0,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        problems: list[str] = []
        key = _check_key(api_key, problems)
        url = resolve_base_url(
            base_url, env=BASE_URL_ENV, default=DEFAULT_BASE_URL, example=DEFAULT_BASE_URL, problems=problems
        )
        super().__init__(
            key=key,
            base_url=url,
            problems=problems,
            requests_per_second=requests_per_second,
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            max_retry_after=max_retry_after,
            deadline=deadline,
            session=session,
            clock=clock,
            sleep=sleep,
        )

    def _error_class(self, status: int, message: str) -> type[APIError]:
        if status == 400 and "autopilotapikey" in message.lower():
            return AuthenticationError  # Autopilot answers a missing key header with 400
        return super()._error_class(status, message)

    # -- account -----------------------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        """`GET /account`: the account details (an opaque mapping). The natural "test connection" call."""
        body = self._call("GET", "/account", replay=True)
        if isinstance(body, dict):
            return body
        return {} if body is None else {"value": body}

    # -- contacts ----------------------------------------------------------------------------------

    def upsert_contact(self, contact: ContactInput, *, allow_resubscribe: bool = False) -> str:
        """`POST /contact`: create or update one contact (matched by email); returns its contact_id.

        A `Contact` with `unsubscribed=False` is sent without it unless `allow_resubscribe=True`
        (see `Contact.to_api`); a mapping is sent as given.
        """
        payload = _contact_payload(contact, allow_resubscribe=allow_resubscribe)
        body = self._call("POST", "/contact", json_body={"contact": payload}, replay=True)
        return self._parse("POST", "/contact", body, lambda b: str(b["contact_id"]))

    def upsert_contacts(
        self, contacts: Sequence[ContactInput], *, allow_resubscribe: bool = False
    ) -> BulkUpsertResult:
        """`POST /contacts`: create or update 1..100 contacts in one request.

        Check `result.missing`: emails Autopilot silently left out of `email_contact_map` were NOT stored.
        Raises `ConfigurationError` (a ValueError) for 0 or more than 100 contacts, before any request.
        """
        if isinstance(contacts, (Mapping, str, bytes)):
            raise ConfigurationError(
                "upsert_contacts takes a sequence of contacts; use upsert_contact for one"
            )
        payloads = [_contact_payload(c, allow_resubscribe=allow_resubscribe) for c in contacts]
        if not 1 <= len(payloads) <= MAX_BULK_CONTACTS:
            raise ConfigurationError(
                f"a bulk upsert takes 1 to {MAX_BULK_CONTACTS} contacts, got {len(payloads)}; "
                "split the batch (Autopilot rejects larger requests as a whole)"
            )
        # The answer maps stored contacts by email only: a contact without one could be silently left out
        # and nothing in the answer would say so. Refuse it rather than lose track of it.
        no_email = [i for i, p in enumerate(payloads, start=1) if not _has_email(p)]
        if no_email:
            raise ConfigurationError(
                f"contact(s) at position {', '.join(map(str, no_email))} of the batch have no Email: a bulk "
                "upsert can only confirm contacts by their email; give each one an Email"
            )
        submitted = [p["Email"] for p in payloads]
        body = self._call("POST", "/contacts", json_body={"contacts": payloads}, replay=True)
        return self._parse(
            "POST", "/contacts", body, lambda b: BulkUpsertResult.from_api(as_object(b), submitted)
        )

    def get_contact(self, contact: ContactRef) -> Contact:
        """`GET /contact/{contact}`: one contact by contact_id or email. 404 -> `NotFoundError`."""
        path = f"/contact/{_ref(contact)}"
        body = self._call("GET", path, replay=True)
        return self._parse("GET", path, body, lambda b: Contact.from_api(as_object(b)))

    def delete_contact(self, contact: ContactRef) -> None:
        """`DELETE /contact/{contact}`: delete a contact (any 2xx is success)."""
        self._call("DELETE", f"/contact/{_ref(contact)}", replay=True)

    def unsubscribe(self, contact: ContactRef) -> None:
        """`POST /contact/{contact}/unsubscribe`: unsubscribe a contact (idempotent, so it is replayed)."""
        self._call("POST", f"/contact/{_ref(contact)}/unsubscribe", replay=True)

    def iter_contacts(self) -> Iterator[Contact]:
        """`GET /contacts[/{bookmark}]`: every contact of the account, one page fetched at a time."""
        return self._paginate("/contacts")

    def custom_fields(self) -> list[CustomFieldDefinition]:
        """`GET /contacts/custom_fields`: the custom fields defined on the account."""
        body = self._call("GET", "/contacts/custom_fields", replay=True)
        items = body.get("custom_fields", body.get("fields")) if isinstance(body, dict) else body
        return self._parse(
            "GET",
            "/contacts/custom_fields",
            items,
            lambda b: [CustomFieldDefinition.from_api(as_object(i)) for i in as_array(b)],
        )

    # -- lists -------------------------------------------------------------------------------------

    def lists(self) -> list[ContactList]:
        """`GET /lists`: every contact list of the account."""
        body = self._call("GET", "/lists", replay=True)
        return self._parse(
            "GET",
            "/lists",
            body,
            lambda b: [ContactList.from_api(as_object(i)) for i in as_array(as_object(b).get("lists", []))],
        )

    def create_list(self, name: str) -> str:
        """`POST /list`: create a list; returns its list_id. Never replayed (a replay could duplicate it).

        Some accounts answer a duplicate name with 409 (`ConflictError`), others create a second list.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("a list name must be a non-empty string")
        body = self._call("POST", "/list", json_body={"name": name}, replay=False)
        return self._parse("POST", "/list", body, lambda b: str(as_object(b)["list_id"]))

    def iter_list_contacts(self, list_id: str) -> Iterator[Contact]:
        """`GET /list/{list_id}/contacts[/{bookmark}]`: the list's members, one page fetched at a time."""
        return self._paginate(f"/list/{_segment(list_id, 'list_id')}/contacts")

    def is_on_list(self, list_id: str, contact: ContactRef) -> bool:
        """`GET /list/{list_id}/contact/{contact}`: True if a member (200), False if not (404)."""
        path = f"/list/{_segment(list_id, 'list_id')}/contact/{_ref(contact)}"
        status, _ = self._request("GET", path, replay=True, also_ok=(404,))
        return status != 404

    def add_to_list(self, list_id: str, contact: ContactRef) -> bool:
        """`POST /list/{list_id}/contact/{contact}`: True if added, False if it was a member already."""
        path = f"/list/{_segment(list_id, 'list_id')}/contact/{_ref(contact)}"
        return not _not_modified(self._call("POST", path, replay=True))

    def remove_from_list(self, list_id: str, contact: ContactRef) -> bool:
        """`DELETE /list/{list_id}/contact/{contact}`: True if removed, False if it was not a member."""
        path = f"/list/{_segment(list_id, 'list_id')}/contact/{_ref(contact)}"
        return not _not_modified(self._call("DELETE", path, replay=True))

    # -- smart segments and journeys -----------------------------------------------------------------

    def smart_segments(self) -> list[SmartSegment]:
        """`GET /smart_segments`: the account's smart segments."""
        body = self._call("GET", "/smart_segments", replay=True)
        return self._parse(
            "GET",
            "/smart_segments",
            body,
            lambda b: [
                SmartSegment.from_api(as_object(i)) for i in as_array(as_object(b).get("segments", []))
            ],
        )

    def iter_segment_contacts(self, segment_id: str) -> Iterator[Contact]:
        """`GET /smart_segments/{segment_id}/contacts[/{bookmark}]`: the segment's contacts, lazily."""
        return self._paginate(f"/smart_segments/{_segment(segment_id, 'segment_id')}/contacts")

    def triggers(self) -> list[Trigger]:
        """`GET /triggers`: the journeys that start with an API trigger."""
        body = self._call("GET", "/triggers", replay=True)
        return self._parse(
            "GET",
            "/triggers",
            body,
            lambda b: [Trigger.from_api(as_object(i)) for i in as_array(as_object(b).get("triggers", []))],
        )

    def add_to_journey(self, trigger_id: str, contact: ContactRef) -> None:
        """`POST /trigger/{trigger_id}/contact/{contact}`: start a journey for a contact.

        Never replayed: if the answer is lost the contact may already be on its way through the journey.
        """
        path = f"/trigger/{_segment(trigger_id, 'trigger_id')}/contact/{_ref(contact)}"
        self._call("POST", path, replay=False)

    # -- REST hooks --------------------------------------------------------------------------------

    def hooks(self) -> list[Hook]:
        """`GET /hooks`: the registered REST hooks."""
        body = self._call("GET", "/hooks", replay=True)
        return self._parse(
            "GET",
            "/hooks",
            body,
            lambda b: [Hook.from_api(as_object(i)) for i in as_array(as_object(b).get("hooks", []))],
        )

    def register_hook(self, event: str, target_url: str) -> str:
        """`POST /hook`: register a REST hook; returns its hook_id. Never replayed."""
        body = self._call("POST", "/hook", json_body={"event": event, "target_url": target_url}, replay=False)

        def hook_id(b: Any) -> str:
            obj = as_object(b)
            return str(obj["hook_id"] if "hook_id" in obj else obj["id"])

        return self._parse("POST", "/hook", body, hook_id)

    def unregister_hook(self, hook_id: str) -> None:
        """`DELETE /hook/{hook_id}`: remove one REST hook."""
        self._call("DELETE", f"/hook/{_segment(hook_id, 'hook_id')}", replay=True)

    def unregister_all_hooks(self) -> None:
        """`DELETE /hooks`: remove every REST hook of the account."""
        self._call("DELETE", "/hooks", replay=True)

    # -- plumbing ----------------------------------------------------------------------------------

    def _paginate(self, path: str) -> Iterator[Contact]:
        # A generator: the first page is fetched on the first next(), the next page only once the
        # previous one has been consumed. The last page is the one WITHOUT a bookmark key, whatever
        # its length.
        page_path = path
        seen: set[str] = set()
        while True:
            body = self._call("GET", page_path, replay=True)
            page = self._parse("GET", page_path, body, as_object)
            contacts = self._parse("GET", page_path, page.get("contacts", []), as_array)
            for item in contacts:
                yield self._parse("GET", page_path, item, lambda b: Contact.from_api(as_object(b)))
            if "bookmark" not in page:
                return
            bookmark = page["bookmark"]
            if not isinstance(bookmark, str) or not bookmark or bookmark in seen:
                raise self._unexpected(
                    "GET", page_path, "a page carried an empty, invalid or repeated bookmark"
                )
            seen.add(bookmark)
            page_path = f"{path}/{quote(bookmark, safe='')}"


# -- helpers ---------------------------------------------------------------------------------------


def _check_key(api_key: object, problems: list[str]) -> str | None:
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
        if api_key is None or not api_key.strip():
            problems.append(
                f"no Autopilot API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
            return None
    if not isinstance(api_key, str):
        problems.append("the API key must be a string")
        return None
    key = api_key.strip()
    if not _KEY_FORMAT.fullmatch(key):
        # Never echo the key: say what is expected, and at most how long the given value was.
        problems.append(
            f"the API key does not look like an Autopilot key: expected 32 hexadecimal characters, "
            f"got {len(key)} characters"
        )
        return None
    return key


def _contact_payload(contact: ContactInput, *, allow_resubscribe: bool) -> dict[str, Any]:
    if isinstance(contact, Contact):
        return contact.to_api(allow_resubscribe=allow_resubscribe)
    if isinstance(contact, Mapping):
        return dict(contact)
    raise ConfigurationError(
        f"a contact must be a Contact or a mapping in Autopilot's shape, got {type(contact).__name__}"
    )


def _has_email(payload: Mapping[str, Any]) -> bool:
    email = payload.get("Email")
    return isinstance(email, str) and bool(email.strip())


def _ref(contact: ContactRef) -> str:
    """A contact_id or email as one URL path segment, `@` as is (as Autopilot documents it).

    Everything else outside RFC 3986's unreserved characters is percent-encoded: `/`, `?`, `#`, `%`,
    spaces, non-ASCII, and also `+` and the other sub-delimiters, which are legal in a path but which
    some servers decode differently (a raw `+` as a space); their encoded forms are decoded the same
    way everywhere.
    """
    if isinstance(contact, Contact):
        value = contact.contact_id or contact.email
        if not value:
            raise ConfigurationError("that Contact has neither a contact_id nor an email to refer to it by")
        return quote(value, safe=_CONTACT_SAFE)
    if not isinstance(contact, str) or not contact:
        raise ConfigurationError("contact must be a non-empty string")
    return quote(contact, safe=_CONTACT_SAFE)


def _segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string")
    return quote(value, safe="")


def _not_modified(body: Any) -> bool:
    return isinstance(body, dict) and body.get("not_modified") is True
