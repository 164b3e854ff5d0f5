"""`OrttoClient`: the Ortto API calls a segment export needs, and a little more.

It stands on the same plumbing as `AutopilotClient` (`_http/client.py`): one `requests.Session`, urllib3's
`Retry`, a shared rate limiter, a total deadline per call, strict JSON bodies, typed errors, and the key
never leaving its header. Every Ortto call is a POST with a JSON body (reads included); which of them
may be replayed after a lost answer is decided per call, below.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Final, Literal, get_args

import requests

from ..._errors import APIConnectionError, ConfigurationError, RateLimitError, ServerError
from ..._http.client import APIClientBase, as_array, as_object, resolve_base_url
from .models import Audience, MergeResult, OrttoCustomField, Person, PersonResult

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "MAX_MERGE_PEOPLE",
    "REGIONS",
    "OrttoClient",
    "OrttoRegion",
]

API_KEY_ENV: Final = "ORTTO_API_KEY"
BASE_URL_ENV: Final = "ORTTO_BASE_URL"
REGION_ENV: Final = "ORTTO_REGION"
OrttoRegion = Literal["default", "au", "eu"]
# The account's region decides the host; a wrong region answers as if the key were bad.
REGIONS: Final[dict[str, str]] = {
    "default": "https://api.ap3api.com/v1",
    "au": "https://api.au.ap3api.com/v1",
    "eu": "https://api.eu.ap3api.com/v1",
}
MAX_MERGE_PEOPLE: Final = 100
MAX_PAGE: Final = 500
_AUDIENCE_PAGE: Final = 40
_KEY_FORMAT = re.compile(r"[\x21-\x7e]{16,256}")  # printable ASCII, no spaces: Ortto's keys are opaque


class OrttoClient(APIClientBase):
    """A typed, rate-limited, retrying client for Ortto's people, custom-field and audience calls.

    `api_key` defaults to `ORTTO_API_KEY`. The host comes from `base_url`, else `ORTTO_BASE_URL`, else
    the `region` ("default", "au", "eu"; else `ORTTO_REGION`, else "default"). `requests_per_second` is
    the account's limit (10 on Professional plans, 30 on Business and Enterprise), shared by every thread
    using this client.
    """

    service: ClassVar[str] = "Ortto"
    key_header: ClassVar[str] = "X-Api-Key"
    _fingerprint_prefix: ClassVar[bytes] = b"autopilot-segments/ortto-account-fingerprint/v1:"
    _log: ClassVar[logging.Logger] = logging.getLogger("autopilot_segments.ortto")

    def __init__(
        self,
        api_key: str | None = None,
        *,
        region: OrttoRegion | None = None,
        base_url: str | None = None,
        requests_per_second: float = 10.0,
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
        default = _region_url(region, problems)
        if region is not None and base_url is not None:
            problems.append("give region or base_url, not both (the region only picks Ortto's host)")
        url = resolve_base_url(
            base_url, env=BASE_URL_ENV, default=default, example=REGIONS["default"], problems=problems
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

    # -- people --------------------------------------------------------------------------------------

    def merge_people(
        self,
        people: Sequence[Mapping[str, Any]],
        *,
        merge_by: Sequence[str] = ("str::email",),
        merge_strategy: Literal[1, 2, 3] = 2,
        find_strategy: Literal[0, 1, 2] = 0,
        skip_non_existing: bool = False,
        asynchronous: bool = False,
    ) -> MergeResult:
        """`POST /person/merge`: create or update 1..100 people; one `PersonResult` per person, in order.

        Each person is `{"fields": {...}, "tags": [...], "unset_tags": [...], "clear_fields": [...]}`.
        Merging by fields that identify a person (email by default) is idempotent, so a lost answer is
        replayed. Statuses other than created/merged (suppressed, invalid, ignored, or one Ortto has not
        documented) mean the person was not stored. With `asynchronous=True` Ortto queues the call and
        the result says so (`accepted`), without per-person results.
        """
        if isinstance(people, (Mapping, str, bytes)):
            raise ConfigurationError("merge_people takes a sequence of people")
        if not 1 <= len(people) <= MAX_MERGE_PEOPLE:
            raise ConfigurationError(
                f"a merge takes 1 to {MAX_MERGE_PEOPLE} people, got {len(people)}; split the batch"
            )
        merge_fields = list(merge_by)
        if not 1 <= len(merge_fields) <= 3 or ("str::person_id" in merge_fields and len(merge_fields) > 1):
            raise ConfigurationError("merge_by takes 1 to 3 field ids, and str::person_id only on its own")
        body = {
            "people": [dict(p) for p in people],
            "merge_by": merge_fields,
            "merge_strategy": merge_strategy,
            "find_strategy": find_strategy,
            "skip_non_existing": skip_non_existing,
            "async": asynchronous,
        }
        path = "/person/merge"
        answer = self._call("POST", path, json_body=body, replay=True)

        def parse(raw: Any) -> MergeResult:
            if asynchronous and (raw is None or "people" not in as_object(raw)):
                return MergeResult(people=(), accepted=True)
            results = tuple(PersonResult.from_api(as_object(p)) for p in as_array(as_object(raw)["people"]))
            return MergeResult(people=results)

        return self._parse("POST", path, answer, parse)

    def iter_people(
        self,
        *,
        fields: Sequence[str] = ("str::email",),
        filter: Mapping[str, Any] | None = None,
        audience_id: str | None = None,
        page_size: int = MAX_PAGE,
    ) -> Iterator[Person]:
        """`POST /person/get`, page after page by `cursor_id`: the people matching, lazily.

        A page is fetched only when the previous one has been consumed; a repeated cursor is an error
        (it would loop forever).
        """
        if not 1 <= page_size <= MAX_PAGE:
            raise ConfigurationError(f"page_size must be 1 to {MAX_PAGE}, got {page_size}")
        base: dict[str, Any] = {"limit": page_size, "fields": list(fields)}
        if filter is not None:
            base["filter"] = dict(filter)
        if audience_id is not None:
            base["audience_id"] = audience_id
        return self._people_pages(base)

    def _people_pages(self, base: dict[str, Any]) -> Iterator[Person]:
        path = "/person/get"
        body = dict(base)
        seen: set[str] = set()
        while True:
            page = self._parse("POST", path, self._call("POST", path, json_body=body, replay=True), as_object)
            contacts = self._parse("POST", path, page.get("contacts") or [], as_array)
            for item in contacts:
                yield self._parse("POST", path, item, lambda b: Person.from_api(as_object(b)))
            cursor = page.get("cursor_id")
            if not page.get("has_more") or not contacts:
                return
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                raise self._unexpected("POST", path, "a page said has_more without a new cursor_id")
            seen.add(cursor)
            body = {**base, "cursor_id": cursor}

    def find_person(self, email: str, *, fields: Sequence[str] = ("str::email",)) -> Person | None:
        """The person with this email (compared as Ortto compares it), or None."""
        wanted = {"$str::is": {"field_id": "str::email", "value": email}}
        return next(iter(self.iter_people(fields=fields, filter=wanted, page_size=1)), None)

    def untag_people(self, emails: Sequence[str], tag: str) -> MergeResult:
        """Remove `tag` from these people (`unset_tags`), never creating anyone (`skip_non_existing`)."""
        people = [{"fields": {"str::email": e}, "unset_tags": [tag]} for e in emails]
        return self.merge_people(people, skip_non_existing=True)

    # -- custom fields -------------------------------------------------------------------------------

    def custom_fields(self) -> list[OrttoCustomField]:
        """`POST /person/custom-field/get`: the account's custom fields (ids as Ortto made them)."""
        path = "/person/custom-field/get"
        answer = self._call("POST", path, json_body={}, replay=True)
        return self._parse(
            "POST",
            path,
            answer,
            lambda b: [OrttoCustomField.from_api(as_object(f)) for f in as_array(as_object(b)["fields"])],
        )

    def create_custom_field(self, name: str, field_type: str) -> OrttoCustomField:
        """`POST /person/custom-field/create`; returns the field as Ortto made it (its id read back).

        Never replayed blindly: after a lost answer, a 429 or a 5xx the fields are read again, and the
        field is returned if it now exists; otherwise the call is retried within the retry budget.
        """
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("a custom field needs a non-empty name")
        path = "/person/custom-field/create"
        policy = self.retry_policy
        attempt = 0
        while True:
            try:
                answer = self._call(
                    "POST", path, json_body={"name": name.strip(), "type": field_type}, replay=False
                )
                return self._parse("POST", path, answer, lambda b: OrttoCustomField.from_api(as_object(b)))
            except (APIConnectionError, RateLimitError, ServerError):
                existing = self._field_named(name)
                if existing is not None:
                    return existing
                attempt += 1
                if attempt > policy.max_retries:
                    raise
            policy.pause(attempt)

    def _field_named(self, name: str) -> OrttoCustomField | None:
        wanted = name.strip().lower()
        return next((f for f in self.custom_fields() if f.name.strip().lower() == wanted), None)

    # -- audiences -----------------------------------------------------------------------------------

    def audiences(self, search_term: str | None = None, *, with_filter: bool = True) -> list[Audience]:
        """`POST /audiences/get`, every page (40 a page): the account's audiences, with their filters."""
        path = "/audiences/get"
        found: list[Audience] = []
        offset = 0
        while True:
            body: dict[str, Any] = {"limit": _AUDIENCE_PAGE, "offset": offset, "with_filter": with_filter}
            if search_term:
                body["search_term"] = search_term
            answer = self._call("POST", path, json_body=body, replay=True)
            page = self._parse(
                "POST", path, answer, lambda b: [Audience.from_api(as_object(a)) for a in _audience_list(b)]
            )
            found.extend(page)
            if len(page) < _AUDIENCE_PAGE:
                return found
            offset += len(page)

    def subscribe_to_audience(
        self, audience_id: str, people: Sequence[tuple[str, bool]], *, asynchronous: bool = False
    ) -> list[dict[str, Any]]:
        """`PUT /audience/subscribe`: set members' opt-in to the audience (`(email, subscribed)` pairs).

        The people must already be members; Ortto's per-person answers are returned as given.
        """
        if not 1 <= len(people) <= MAX_MERGE_PEOPLE:
            raise ConfigurationError(f"subscribe takes 1 to {MAX_MERGE_PEOPLE} people, got {len(people)}")
        body = {
            "audience_id": audience_id,
            "people": [{"email": email, "subscribed": bool(subscribed)} for email, subscribed in people],
            "async": asynchronous,
        }
        answer = self._call("PUT", "/audience/subscribe", json_body=body, replay=True)
        if answer is None:
            return []
        return self._parse(
            "PUT",
            "/audience/subscribe",
            answer,
            lambda b: [as_object(p) for p in as_array(as_object(b)["people"])],
        )

    # -- Ortto's error bodies ------------------------------------------------------------------------

    def _retry_after(self, response: requests.Response) -> float | None:
        header = super()._retry_after(response)
        if header is not None:
            return header
        seconds = _try_in_seconds(response.content)
        return None if seconds is None else min(seconds, self._max_retry_after)

    def _error_parts(self, text: str) -> tuple[str | None, str | None]:
        try:
            data = json.loads(text)
        except ValueError:
            return None, None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):  # the 429 body
            inner = data["error"]
            message, code = inner.get("message"), inner.get("code")
            return (str(message) if message else None), (str(code) if code else None)
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return data["error"], data["error"]
        return super()._error_parts(text)


# -- helpers ---------------------------------------------------------------------------------------


def _check_key(api_key: object, problems: list[str]) -> str | None:
    if api_key is None:
        api_key = os.environ.get(API_KEY_ENV)
        if api_key is None or not api_key.strip():
            problems.append(
                f"no Ortto API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
            return None
    if not isinstance(api_key, str):
        problems.append("the API key must be a string")
        return None
    key = api_key.strip()
    if not _KEY_FORMAT.fullmatch(key):
        problems.append(
            f"the API key does not look like an Ortto private key: expected 16 to 256 printable characters "
            f"without spaces, got {len(key)} characters"
        )
        return None
    return key


def _region_url(region: object, problems: list[str]) -> str:
    if region is None:
        region = os.environ.get(REGION_ENV, "").strip() or "default"
        where = f" (from the {REGION_ENV} environment variable)" if os.environ.get(REGION_ENV) else ""
    else:
        where = ""
    if region not in REGIONS:
        problems.append(f"region must be one of {', '.join(get_args(OrttoRegion))}, got {region!r}{where}")
        return REGIONS["default"]
    return REGIONS[str(region)]


def _audience_list(body: Any) -> list[Any]:
    if isinstance(body, dict):
        return as_array(body.get("audiences", []))
    return as_array(body)


def _try_in_seconds(content: bytes) -> float | None:
    try:
        data = json.loads(content)
        seconds = float(data["error"]["try-in-seconds"])
    except (ValueError, TypeError, KeyError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
