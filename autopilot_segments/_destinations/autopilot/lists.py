"""Finding the list whose title is the segment name, or creating it, deterministically.

The rule (docs/exporter.md, "Which list"): the segment name is trimmed; an existing list matches when
its title, trimmed, equals the name ignoring letter case (Autopilot itself refuses such look-alike
titles with 409 on most accounts). A list titled exactly like the name wins over the others; among
several equal candidates the lowest list_id wins, so that every run agrees. Lists whose titles differ
from the name only in letter case, and from each other too, are ambiguous: refused with an error
naming them, before anything is written.

Creating a list is not replayed by the transport (a replay could make a twin). A transient answer
(429, 5xx, a dropped connection) is followed by a re-read: if the list is there now it is used, if not
the create is tried again, with the client's retry budget, backoff and rate limiter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from ..._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from ..._http.retry_policy import NO_RETRIES, RetryPolicy
from ..base import Target

__all__ = ["ListClient", "find_list", "list_title", "resolve_list"]


class ListInfo(Protocol):
    @property
    def list_id(self) -> str: ...

    @property
    def title(self) -> str: ...


class ListClient(Protocol):
    """The client calls lists are resolved with (an `AutopilotClient`'s)."""

    def lists(self) -> Sequence[ListInfo]: ...

    def create_list(self, name: str) -> str: ...


def list_title(segment: str) -> str:
    """The list title for a segment name: the name without surrounding whitespace."""
    _require_title(segment)
    return segment.strip()


def _key(title: str) -> str:
    return title.strip().casefold()


def _matching(destination: ListClient, title: str) -> list[ListInfo]:
    key = _key(title)
    return [info for info in destination.lists() if _key(info.title) == key]


def _pick(matches: list[ListInfo], title: str, why: str = "", *, created: bool = False) -> Target:
    """Choose among lists matching `title`; raises `ConfigurationError` when the choice is ambiguous."""
    exact = [m for m in matches if m.title == title]
    variants = sorted((m for m in matches if m.title != title), key=lambda m: m.list_id)
    candidates = exact or variants
    if not exact and len({m.title for m in variants}) > 1:
        named = "; ".join(f"{m.list_id} {m.title!r}" for m in variants)
        raise ConfigurationError(
            f"the segment name {title!r} matches {len(variants)} lists whose titles differ from it and "
            f"from each other only in letter case or surrounding spaces ({named}), and none is titled "
            "exactly like it: rename or delete all but one of them in Autopilot, or give the segment "
            "the exact title of the list it should go to"
        )
    # Lists carry no creation time, so "the lowest list_id" is the only choice every run agrees on.
    chosen = min(m.list_id for m in candidates)
    chosen_title = next(m.title for m in candidates if m.list_id == chosen)
    notes: list[str] = []
    if len(candidates) > 1:
        others = ", ".join(sorted(m.list_id for m in candidates if m.list_id != chosen))
        notes.append(
            f"{len(candidates)} lists are titled {chosen_title!r}; using the lowest list_id {chosen} "
            f"(ignored: {others})"
        )
    if not exact:
        notes.append(
            f"matched the existing list {chosen_title!r} ({chosen}): its title differs from the segment "
            f"name {title!r} only in letter case or surrounding spaces, which Autopilot treats as the "
            "same title"
        )
    elif variants:
        ignored = ", ".join(f"{m.list_id} {m.title!r}" for m in variants)
        notes.append(f"the list titled exactly {title!r} is used; ignored look-alike titles: {ignored}")
    if why:
        notes.append(why if notes else f"{why}; using list {chosen}")
    return Target(id=chosen, title=chosen_title, created=created, note="; ".join(notes))


def find_list(destination: ListClient, title: str) -> Target | None:
    """The existing list for segment `title` (see the module's rule), or None; one `GET /lists`, no write.

    Stateful exports look before they leap: a guard rail may still stop the export, and nothing,
    not even an empty list, may be written before it has been checked.
    """
    name = list_title(title)
    matches = _matching(destination, name)
    return _pick(matches, name) if matches else None


def _require_title(title: str) -> None:
    if not isinstance(title, str) or not title.strip():
        raise ValueError("a segment name must not be empty: it becomes the Autopilot list title")


_TRANSIENT = (RateLimitError, ServerError, APIConnectionError)


def resolve_list(destination: ListClient, title: str, *, known_absent: bool = False) -> Target:
    """The list for segment `title` (see the module's rule), created (with the trimmed name) when none.

    Two or more candidates resolve to the lowest list_id. A 409 on create (a list appeared after the
    first read, e.g. another exporter made it) is resolved by re-reading the lists; so is a twin
    created concurrently on accounts that allow duplicate titles (the lists are re-read after a
    create), and a create whose answer was lost. A transient answer (429, 5xx, connection) is retried
    when the re-read shows no list was made, up to the client's `max_retries`, with its backoff (a 429
    waits in the client's rate limiter as long as Autopilot asked). `known_absent=True` skips the
    first read when the caller has just seen (with `find_list`) that there is no such list.
    """
    name = list_title(title)
    trimmed = f"; the segment name {title!r} was trimmed to {name!r}" if name != title else ""
    matches = [] if known_absent else _matching(destination, name)
    if matches:
        return _pick(matches, name)
    policy: RetryPolicy = getattr(destination, "retry_policy", NO_RETRIES)
    attempt = 0
    while True:
        try:
            list_id = destination.create_list(name)
        except ConflictError:
            matches = _matching(destination, name)
            if not matches:
                raise
            why = f"creating list {name!r} answered 409 Conflict: it appeared meanwhile"
            return _pick(matches, name, why)
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, APIConnectionError) as error:
            # Its answer may have been lost after Autopilot made the list: look before anything else.
            matches = _matching(destination, name)
            if matches:
                why = f"creating list {name!r} failed, but the list had been created"
                return _pick(matches, name, why, created=True)
            if not isinstance(error, _TRANSIENT) or attempt >= policy.max_retries:
                raise
            attempt += 1
            if not isinstance(error, RateLimitError):  # a 429 already paused the client's limiter
                policy.pause(attempt)
            continue
        break
    # Accounts that allow duplicate titles let a concurrent exporter create a twin between our read and
    # our create: read once more so that every run converges on the same (lowest) list_id.
    matches = _matching(destination, name)
    if len(matches) > 1:
        resolution = _pick(matches, name, "another one appeared while this one was created")
        return attrs.evolve(resolution, created=resolution.id == list_id)
    retried = f" after {attempt} transient failure(s)" if attempt else ""
    return Target(
        id=list_id, title=name, created=True, note=f"created list {name!r} ({list_id}){retried}{trimmed}"
    )
