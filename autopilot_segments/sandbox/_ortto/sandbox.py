"""`OrttoSandbox`: start, configure, script and inspect a local Ortto."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import attrs

from .._faults import FaultPlan
from .._recording import RecordedRequest
from .._server import SandboxHTTPServer
from .app import OrttoApp
from .settings import AsyncAnswer, InvalidPerson, MergeTags, OrttoSettings, SkippedStatus
from .validation import CUSTOM_FIELD_TYPES, check_value, field_kind

__all__ = ["OrttoSandbox"]


class OrttoSandbox:
    """A local, in-memory Ortto API (the calls a segment export needs) on 127.0.0.1.

    Use it as a context manager (or `start()` / `stop()`); point an `OrttoClient` at `url` with `api_key`.
    Every switch can be changed while it runs with `configure()`. See docs/ortto.md.
    """

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
        self._api_key = api_key if api_key is not None else "pk-" + secrets.token_hex(24)
        self._host = host
        self._requested_port = port
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
        self._app = OrttoApp(api_key=self._api_key, settings=settings, clock=clock, sleep=sleep)
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.Lock()

    def __repr__(self) -> str:
        return f"<OrttoSandbox {self.url if self._server else 'stopped'}>"

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> OrttoSandbox:
        """Bind and serve in a daemon thread; returns self. Starting a running sandbox is an error."""
        with self._lifecycle:
            if self._server is not None:
                raise RuntimeError("the sandbox is already running")
            server = SandboxHTTPServer((self._host, self._requested_port), self._app)
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="ortto-sandbox", daemon=True
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Safe to call twice."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OrttoSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        server = self._server
        return int(server.server_address[1]) if server else self._requested_port

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:54321/v1`."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def api_key(self) -> str:
        """The one key this sandbox accepts (keep it out of logs)."""
        return self._api_key

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

    def inject(
        self, kind: str, *, times: int = 1, method: str | None = None, path_prefix: str | None = None
    ) -> None:
        """Play fault `kind` on the next `times` matching requests (`path_prefix` without `/v1`)."""
        self._app.faults.inject(kind, times=times, method=method, path_prefix=path_prefix)

    @property
    def pending_faults(self) -> int:
        return self._app.faults.pending

    def reset(self) -> None:
        """Forget every person, field, audience, suppression, recorded request and injected fault."""
        self._app.reset()

    # -- inspection (snapshots) -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (paths without `/v1`)."""
        return self._app.log.snapshot()

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
