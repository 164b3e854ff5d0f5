"""`OrttoSandbox`: start, configure, script and inspect a local Ortto."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from .._faults import FaultPlan
from .._served import ServedSandbox
from .app import OrttoApp
from .settings import AsyncAnswer, InvalidPerson, MergeTags, OrttoSettings, SkippedStatus
from .validation import CUSTOM_FIELD_TYPES, check_value, field_kind

__all__ = ["OrttoSandbox"]


class OrttoSandbox(ServedSandbox):
    """A local, in-memory Ortto API (the calls a segment export needs) on 127.0.0.1.

    Use it as a context manager (or `start()` / `stop()`); point an `OrttoClient` at `url` with `api_key`.
    Every switch can be changed while it runs with `configure()`. See docs/ortto.md.
    """

    _thread_name = "ortto-sandbox"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        try_in_seconds: float = 1.0,
        latency: float = 0.0,
        invalid_person: InvalidPerson = "per_person",
        skipped_status: SkippedStatus = "ignored",
        merge_tags: MergeTags = "add",
        async_answer: AsyncAnswer = "accepted",
        bad_request_ban: bool = False,
        faults: FaultPlan | None = None,
        record_bodies: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string (or None for a random one)")
        key = api_key if api_key is not None else "pk-" + secrets.token_hex(24)
        settings = OrttoSettings(
            rate_limit=rate_limit,
            try_in_seconds=try_in_seconds,
            latency=latency,
            invalid_person=invalid_person,
            skipped_status=skipped_status,
            merge_tags=merge_tags,
            async_answer=async_answer,
            bad_request_ban=bad_request_ban,
            faults=faults,
            record_bodies=record_bodies,
        )
        self._app = OrttoApp(api_key=key, settings=settings, clock=clock, sleep=sleep)
        super().__init__(app=self._app, api_key=key, host=host, port=port)

    # -- behaviour ------------------------------------------------------------------------------------
    @property
    def settings(self) -> OrttoSettings:
        return self._app.settings

    def configure(self, **switches: Any) -> None:
        """Change switches at runtime; unknown names raise TypeError, bad values ValueError."""
        unknown = sorted(set(switches) - set(OrttoSettings.switch_names()))
        if unknown:
            raise TypeError(f"unknown Ortto sandbox switch(es): {', '.join(unknown)}")
        self._app.configure(attrs.evolve(self._app.settings, **switches), restart_faults="faults" in switches)

    def reset(self) -> None:
        """Forget every person, field, audience, suppression, recorded request and injected fault."""
        self._app.reset()

    # -- inspection (snapshots) -----------------------------------------------------------------------

    @property
    def people(self) -> dict[str, dict[str, Any]]:
        """Every person with an email, keyed by lower-cased email: `{"id", "fields", "tags"}`."""
        with self._app.lock:
            return {
                p.email.lower(): {"id": p.person_id, "fields": dict(p.fields), "tags": list(p.tags)}
                for p in self._app.store.people.values()
                if p.email
            }

    def tagged(self, tag: str) -> set[str]:
        """Lower-cased emails of the people carrying `tag`."""
        with self._app.lock:
            return {p.email.lower() for p in self._app.store.tagged(tag) if p.email}

    @property
    def custom_fields(self) -> dict[str, str]:
        """Custom field id -> name."""
        with self._app.lock:
            return {f.field_id: f.name for f in self._app.store.custom_fields.values()}

    @property
    def merge_counts(self) -> dict[str, int]:
        """Lower-cased email -> how many applied merges (created or merged) touched that person."""
        with self._app.lock:
            store = self._app.store
            return {
                store.people[pid].email.lower(): n  # type: ignore[union-attr]
                for pid, n in store.merge_counts.items()
                if pid in store.people and store.people[pid].email
            }

    # -- seeding --------------------------------------------------------------------------------------
    def add_custom_field(self, name: str, field_type: str) -> str:
        """Define a custom field (`field_type` as in custom-field/create); returns its field id."""
        if field_type not in CUSTOM_FIELD_TYPES:
            raise ValueError(f"field_type must be one of {', '.join(CUSTOM_FIELD_TYPES)}")
        with self._app.lock:
            return self._app.store.create_custom_field(
                name, field_type, CUSTOM_FIELD_TYPES[field_type]
            ).field_id

    def add_people(self, people: Iterable[Mapping[str, Any]], *, tags: Iterable[str] = ()) -> list[str]:
        """Store people directly (field id -> value), with `tags`; returns their person ids.

        Values are validated as a merge would; ValueError names the first invalid one, nothing stored.
        """
        wanted_tags = list(dict.fromkeys(tags))
        with self._app.lock:
            store = self._app.store
            batch = [dict(p) for p in people]
            for fields in batch:
                for field_id, value in fields.items():
                    kind = field_kind(field_id, store.custom_kinds)
                    problem = (
                        f"field {field_id} does not exist"
                        if kind is None
                        else check_value(field_id, kind, value)
                    )
                    if problem:
                        raise ValueError(problem)
            ids = []
            for fields in batch:
                person = store.create(fields)
                person.fields.setdefault("bol::p", True)
                person.tags.extend(wanted_tags)
                ids.append(person.person_id)
            return ids

    def delete_person(self, email: str) -> None:
        """Delete a person (as archiving and deleting in the app would); KeyError if unknown."""
        with self._app.lock:
            person = self._app.store.by_email(email)
            if person is None:
                raise KeyError(email)
            self._app.store.delete(person)

    def suppress(self, email: str) -> None:
        """Put an email on the suppression list: merges answer `suppressed` for it."""
        with self._app.lock:
            self._app.store.suppressed.add(email.strip().lower())

    def add_audience(self, name: str, *, tag: str | None = None) -> str:
        """Create an audience whose filter is "has tag `tag`"; returns its id."""
        with self._app.lock:
            return self._app.store.create_audience(name, tag).audience_id

    def audience_members(self, audience_id: str) -> dict[str, bool]:
        """Lower-cased email -> subscribed, for an audience's members."""
        with self._app.lock:
            audience = self._app.store.audiences[audience_id]
            return {
                p.email.lower(): p.person_id not in audience.unsubscribed
                for p in self._app.store.audience_members(audience)
                if p.email
            }
