"""`Sandbox`: start, configure, script and inspect a local Autopilot."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from .._faults import FaultPlan
from .._recording import busiest_window
from .._served import ServedSandbox
from .app import SandboxApp
from .settings import (
    BulkAnswer,
    BulkInvalid,
    BulkList,
    DeleteStatus,
    DuplicateList,
    ErrorStyle,
    HookStyle,
    Settings,
)
from .validation import CUSTOM_TYPES

__all__ = ["Sandbox"]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Sandbox(ServedSandbox):
    """A local, in-memory Autopilot REST API v1 on 127.0.0.1, for tests, demos and offline use.

    Use it as a context manager (or call `start()` / `stop()`); point a client at `url` with `api_key`.
    Every switch can be changed while it runs with `configure()`. See docs/sandbox.md.
    """

    _thread_name = "autopilot-sandbox"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        retry_after: float | None = None,
        latency: float = 0.0,
        bulk_invalid: BulkInvalid = "reject",
        bulk_list: BulkList = "honoured",
        bulk_answer: BulkAnswer = "map",
        duplicate_list: DuplicateList = "conflict",
        delete_status: DeleteStatus = 200,
        hook_style: HookStyle = "new",
        error_style: ErrorStyle = "json",
        faults: FaultPlan | None = None,
        record_bodies: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
            raise ValueError("api_key must be a non-empty string (or None for a random one)")
        key = api_key if api_key is not None else secrets.token_hex(16)
        settings = Settings(
            rate_limit=rate_limit,
            retry_after=retry_after,
            latency=latency,
            bulk_invalid=bulk_invalid,
            bulk_list=bulk_list,
            bulk_answer=bulk_answer,
            duplicate_list=duplicate_list,
            delete_status=delete_status,
            hook_style=hook_style,
            error_style=error_style,
            faults=faults,
            record_bodies=record_bodies,
        )
        self._app = SandboxApp(
            api_key=key, settings=settings, clock=clock, sleep=sleep, wall_clock=wall_clock
        )
        super().__init__(app=self._app, api_key=key, host=host, port=port)

    # -- behaviour ----------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """The current switches."""
        return self._app.settings

    def configure(self, **switches: Any) -> None:
        """Change switches at runtime (thread-safe); unknown names raise TypeError, bad values ValueError.

        Passing `faults` (even the same plan) restarts the plan's RNG from its seed.
        """
        unknown = sorted(set(switches) - set(Settings.switch_names()))
        if unknown:
            raise TypeError(f"unknown sandbox switch(es): {', '.join(unknown)}")
        self._app.configure(attrs.evolve(self._app.settings, **switches), restart_faults="faults" in switches)

    def reset(self) -> None:
        """Forget every contact, list, segment, trigger, hook, recorded request and injected fault."""
        self._app.reset()

    # -- inspection (snapshots) ---------------------------------------------------------------

    def busiest_second(
        self, *, method: str | None = None, path_prefix: str | None = None, window: float = 1.0
    ) -> int:
        """The most requests (matching `method` and `path_prefix`, no `/v1`) that arrived within any
        one second (`[t, t + window)` on the sandbox's clock): what a sliding-window rate limit sees."""
        times = [
            r.at
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (path_prefix is None or r.path.startswith(path_prefix))
        ]
        return busiest_window(times, window)

    @property
    def contacts(self) -> dict[str, dict[str, Any]]:
        """Every contact as `GET /contact` returns it, keyed by lower-cased email."""
        with self._app.lock:
            return {key: record.render() for key, record in self._app.store.by_email.items()}

    @property
    def lists(self) -> list[tuple[str, str]]:
        """`(list_id, title)` in creation order."""
        with self._app.lock:
            return [(c.collection_id, c.title) for c in self._app.store.lists.values()]

    def list_members(self, list_id: str) -> set[str]:
        """Lower-cased emails of a list's members; KeyError for an unknown list."""
        with self._app.lock:
            store = self._app.store
            return {store.by_id[cid].email.lower() for cid in store.lists[list_id].members}

    @property
    def upsert_counts(self) -> Counter[str]:
        """Lower-cased email -> how many applied upserts (single or bulk) touched it."""
        with self._app.lock:
            return Counter(self._app.store.upsert_counts)

    @property
    def hooks(self) -> list[dict[str, str]]:
        """Registered REST hooks (`hook_id`, `event`, `target_url`). They are recorded, never called."""
        with self._app.lock:
            return [dict(h) for h in self._app.store.hooks.values()]

    def journey_entries(self, trigger_id: str) -> list[str]:
        """Lower-cased emails added to a trigger's journey, one per accepted call (repeats included)."""
        with self._app.lock:
            store = self._app.store
            return [
                store.by_id[cid].email.lower()
                for cid in store.triggers[trigger_id].entries
                if cid in store.by_id
            ]

    # -- seeding ------------------------------------------------------------------------------
    def add_contacts(self, contacts: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store contacts directly (no request is recorded, upsert_counts unchanged); returns their ids.

        Each contact is validated like an upsert; ValueError names the first invalid one, nothing stored.
        """
        with self._app.lock:
            pending: dict[str, str] = {}
            checked = [self._app.validate(dict(c), i, pending) for i, c in enumerate(contacts, start=1)]
            problems = [c for c in checked if isinstance(c, str)]
            if problems:
                raise ValueError(problems[0])
            now = self._app.now()
            store = self._app.store
            ids = []
            for contact in checked:
                assert not isinstance(contact, str)
                record = store.upsert(contact, now=now, honour_list=True)
                store.upsert_counts[record.email.lower()] -= 1
                ids.append(record.contact_id)
            store.upsert_counts += Counter()  # drop the zero entries left by seeding
            return ids

    def add_custom_field(self, name: str, field_type: str) -> None:
        """Define a custom field on the account (as if a contact had stored it first); keeps a first type.

        `GET /contacts/custom_fields` lists it, and upserts that send another type for it get a 400.
        """
        if field_type not in CUSTOM_TYPES:
            raise ValueError(f"field_type must be one of {', '.join(CUSTOM_TYPES)}, got {field_type!r}")
        if not isinstance(name, str) or not name.strip() or "--" in name:
            raise ValueError(f"a custom field name must be a non-empty string without '--', got {name!r}")
        with self._app.lock:
            self._app.store.field_types.setdefault(name, field_type)

    def create_list(self, title: str) -> str:
        """Create a list (duplicates allowed: this is seeding, not the API) and return its list_id."""
        with self._app.lock:
            return self._app.store.create_list(title).collection_id

    def add_smart_segment(self, title: str, emails: Iterable[str]) -> str:
        """Create a smart segment of these contacts (unknown emails become bare contacts); returns its id."""
        with self._app.lock:
            store = self._app.store
            records = []
            for email in emails:
                record = store.find(email)
                if record is None:
                    self.add_contacts([{"Email": email}])
                    record = store.by_email[email.lower()]
                records.append(record)
            return store.create_segment(title, records).collection_id

    def add_trigger(self, journey_name: str) -> str:
        """Create a journey with an API trigger; returns its trigger_id ("0001", "0002", ...)."""
        with self._app.lock:
            return self._app.store.create_trigger(journey_name).trigger_id
