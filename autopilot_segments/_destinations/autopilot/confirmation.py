"""Which contacts of a bulk upsert Autopilot stored, under which contact ids, without guessing.

The usual answer maps every stored email to its contact id (`email_contact_map`): a contact absent from
it was not stored. Autopilot's own published example answers `{"contact_ids": [...]}` alone; then:

1. if there are as many distinct ids as contacts sent, they are taken in submission order, but only
   after a cheap check: the last id is read back (`GET /contact/{id}`) and must be the contact sent
   last (which catches a reversed, sorted or shifted answer; one read per bulk call);
2. otherwise (or when that check fails), each contact is read by email (`GET /contact/{email}`): it
   was stored by this call if it exists under one of the answer's ids; absent, or under another id
   (an older contact this call did not store), it was not stored;
3. a contact whose read fails (after the client's retries) is *unconfirmed*: the caller must not
   count it as exported (the exporter reports it `failed`, and a re-run sends it again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..._errors import APIConnectionError, APIError, NotFoundError
from ..base import FATAL_ERRORS, ExportAborted

__all__ = ["Confirmation", "confirm_stored"]


@attrs.frozen(kw_only=True)
class Confirmation:
    """The submitted emails (lower-cased) split by what is known of them after the answer."""

    stored: Mapping[str, str]  # email -> contact id
    not_stored: tuple[str, ...] = ()
    unconfirmed: Mapping[str, str] = attrs.Factory(dict)  # email -> why it could not be confirmed
    checks: int = 0  # extra calls made to confirm
    first_error: BaseException | None = None  # the first read that failed, if any


def _never() -> bool:
    return False


def confirm_stored(
    client: object,
    emails: Sequence[str],
    answer: Any,
    *,
    should_stop: Callable[[], bool] = _never,
) -> Confirmation:
    """Confirm which of `emails` (as sent, in order) the bulk `answer` stored; see the module's doc.

    `client` needs `get_contact(ref)` for answers without a map (without it, such contacts are all
    unconfirmed). 401/403 propagate; `should_stop` is checked before every read (`ExportAborted`).
    """
    if getattr(answer, "mapped", True):
        stored_map = {email.lower(): cid for email, cid in answer.email_contact_map.items()}
        found = {e.lower(): stored_map[e.lower()] for e in emails if e.lower() in stored_map}
        return Confirmation(
            stored=found, not_stored=tuple(e.lower() for e in emails if e.lower() not in found)
        )
    ids = [str(i) for i in getattr(answer, "contact_ids", ())]
    reader = getattr(client, "get_contact", None)
    lowered = [e.lower() for e in emails]
    if not callable(reader):
        why = "Autopilot's bulk answer did not say which contact is which, and there is no way to confirm it"
        return Confirmation(stored={}, unconfirmed=dict.fromkeys(lowered, why))
    session = _Reads(reader, should_stop)
    in_order = len(ids) == len(lowered) and len(set(ids)) == len(ids)
    if in_order and session.email_of(ids[-1]) == lowered[-1]:
        return Confirmation(stored=dict(zip(lowered, ids, strict=True)), checks=session.calls)
    known = set(ids)
    stored: dict[str, str] = {}
    not_stored: list[str] = []
    unconfirmed: dict[str, str] = {}
    first_error: BaseException | None = None
    for email in lowered:
        try:
            contact_id = session.id_of(email)
        except (APIError, APIConnectionError) as error:
            first_error = first_error or error
            unconfirmed[email] = (
                "Autopilot's bulk answer did not say which contact is which, and confirming this one "
                f"failed ({error})"
            )
            continue
        if contact_id is not None and contact_id in known:
            stored[email] = contact_id
        else:
            not_stored.append(email)
    return Confirmation(
        stored=stored,
        not_stored=tuple(not_stored),
        unconfirmed=unconfirmed,
        checks=session.calls,
        first_error=first_error,
    )


@attrs.define
class _Reads:
    reader: Callable[[str], Any]
    should_stop: Callable[[], bool]
    calls: int = 0

    def _get(self, ref: str) -> Any:
        if self.should_stop():
            raise ExportAborted
        self.calls += 1
        return self.reader(ref)

    def email_of(self, contact_id: str) -> str | None:
        """The email of the contact with this id; None when it cannot be read (the check fails)."""
        try:
            contact = self._get(contact_id)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError):
            return None
        email = getattr(contact, "email", None)
        return email.lower() if isinstance(email, str) else None

    def id_of(self, email: str) -> str | None:
        """The contact id of `email` in Autopilot, None if there is no such contact; errors propagate."""
        try:
            contact = self._get(email)
        except FATAL_ERRORS:
            raise
        except NotFoundError:
            return None
        contact_id = getattr(contact, "contact_id", None)
        return contact_id if isinstance(contact_id, str) and contact_id else None
