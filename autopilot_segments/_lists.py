"""Finding the list whose title is the segment name, or creating it, deterministically."""

from __future__ import annotations

import attrs

from ._destination import Destination, ListInfo
from ._errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    PermissionDeniedError,
)

__all__ = ["ListResolution", "find_list", "resolve_list"]


@attrs.frozen(kw_only=True)
class ListResolution:
    """Which list a segment goes to, whether it was created now, and why it was chosen."""

    list_id: str
    created: bool
    note: str = ""


def _pick(matches: list[ListInfo], title: str, why: str = "", *, created: bool = False) -> ListResolution:
    # Lists carry no creation time, so "the lowest list_id" is the only choice every run agrees on.
    chosen = min(m.list_id for m in matches)
    if len(matches) == 1:
        note = f"{why}; using list {chosen}" if why else ""
        return ListResolution(list_id=chosen, created=created, note=note)
    others = ", ".join(sorted(m.list_id for m in matches if m.list_id != chosen))
    note = f"{len(matches)} lists are titled {title!r}" + (f" ({why})" if why else "")
    note += f"; using the lowest list_id {chosen} (ignored: {others})"
    return ListResolution(list_id=chosen, created=created, note=note)


def _titled(destination: Destination, title: str) -> list[ListInfo]:
    return [info for info in destination.lists() if info.title == title]


def find_list(destination: Destination, title: str) -> ListResolution | None:
    """The existing list titled exactly `title`, or None; only reads (one `GET /lists`), never creates.

    Stateful exports look before they leap: a guard rail may still stop the export, and nothing,
    not even an empty list, may be written before it has been checked.
    """
    _require_title(title)
    matches = _titled(destination, title)
    return _pick(matches, title) if matches else None


def _require_title(title: str) -> None:
    if not title or not title.strip():
        raise ValueError("a segment name must not be empty: it becomes the Autopilot list title")


def resolve_list(destination: Destination, title: str, *, known_absent: bool = False) -> ListResolution:
    """The list titled exactly `title` (case-sensitive), created when there is none.

    Two or more lists with that title resolve to the lowest list_id. A 409 on create (a list appeared
    after the first read, e.g. another exporter made it) is resolved by re-reading the lists; so is a
    twin created concurrently on accounts that allow duplicate titles (the lists are re-read after a
    create), and a create whose answer was lost. `known_absent=True` skips the first read when the
    caller has just seen (with `find_list`) that there is no such list.
    """
    _require_title(title)
    matches = [] if known_absent else _titled(destination, title)
    if matches:
        return _pick(matches, title)
    try:
        list_id = destination.create_list(title)
    except ConflictError:
        matches = _titled(destination, title)
        if not matches:
            raise
        return _pick(matches, title, f"creating list {title!r} answered 409 Conflict: it appeared meanwhile")
    except (AuthenticationError, PermissionDeniedError):
        raise
    except (APIError, APIConnectionError):
        # Creating a list is not replayed by the transport (it is not idempotent everywhere), and
        # its answer may have been lost after Autopilot made the list: look before giving up.
        matches = _titled(destination, title)
        if not matches:
            raise
        why = f"creating list {title!r} failed, but the list had been created"
        return _pick(matches, title, why, created=True)
    # Accounts that allow duplicate titles let a concurrent exporter create a twin between our read and
    # our create: read once more so that every run converges on the same (lowest) list_id.
    matches = _titled(destination, title)
    if len(matches) > 1:
        resolution = _pick(matches, title, "another one appeared while this one was created")
        return attrs.evolve(resolution, created=resolution.list_id == list_id)
    return ListResolution(list_id=list_id, created=True, note=f"created list {title!r} ({list_id})")
