"""One description of each destination for the contract tests (test_destination_contract.py, the
crash worker): how to start its sandbox, make a client, and read back what the platform holds.

Both platforms keep the same promises, so the tests are written once against a `Platform` and run for
Autopilot and for Ortto: every row in exactly one outcome, nothing counted exported that the platform
did not store, resume after SIGKILL, leavers removed within the guard rails, consent never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from autopilot_segments import AutopilotClient, CustomField, FieldMapping, OrttoClient
from autopilot_segments.sandbox import OrttoSandbox, Sandbox

SEGMENT = "Contract segment"
KEY_ENV = "CONTRACT_SANDBOX_KEY"


def mapping() -> FieldMapping:
    return FieldMapping(
        email="email",
        fields={"FirstName": "first", "Phone": "phone"},
        custom=[CustomField("Tier", "integer", source="tier")],
    )


def rows(indices: Iterable[int], *, tier: int = 1) -> list[dict[str, Any]]:
    return [
        {"email": f"Person{i}@Example.com", "first": f"First{i}", "tier": tier, "phone": ""} for i in indices
    ]


def email(i: int) -> str:
    return f"person{i}@example.com"


def make_client(name: str, url: str, key: str, **options: Any) -> AutopilotClient | OrttoClient:
    settings: dict[str, Any] = {"requests_per_second": 10_000.0, "backoff_factor": 0.0, **options}
    if name == "ortto":
        return OrttoClient(key, base_url=url, **settings)
    return AutopilotClient(key, base_url=url, **settings)


@attrs.define
class Platform:
    """A running sandbox of one destination, and how to read it back."""

    name: str
    sandbox: Sandbox | OrttoSandbox
    consent_field: str  # the field that must never be sent unless opted in
    _members: Callable[[str], set[str]]
    _stored: Callable[[], set[str]]
    _opt_out: Callable[[str], None]
    _opted_out: Callable[[str], bool]
    _upserts: Callable[[], dict[str, int]]
    _first_name: Callable[[str], object]
    write_path: str
    removal: tuple[str, str]  # (method, path prefix) of the calls that remove leavers

    @property
    def url(self) -> str:
        return self.sandbox.url

    @property
    def api_key(self) -> str:
        return self.sandbox.api_key

    def client(self, **options: Any) -> AutopilotClient | OrttoClient:
        return make_client(self.name, self.url, self.api_key, **options)

    def members(self, segment: str = SEGMENT) -> set[str]:
        """Lower-cased emails the platform holds in the segment (list members, tagged people)."""
        return self._members(segment)

    def stored(self) -> set[str]:
        """Lower-cased emails of every contact the platform holds."""
        return self._stored()

    def opt_out(self, email: str) -> None:
        """The contact unsubscribes, in the platform (not through an export)."""
        self._opt_out(email)

    def opted_out(self, email: str) -> bool:
        return self._opted_out(email)

    def upserts(self) -> dict[str, int]:
        """Lower-cased email -> applied upserts (merges) of that contact."""
        return self._upserts()

    def first_name(self, email: str) -> object:
        """The first name the platform holds for a contact (None when it holds none)."""
        return self._first_name(email)

    def sent_bodies(self) -> Sequence[Any]:
        return [r.body for r in self.sandbox.requests if r.path == self.write_path and r.body is not None]


def autopilot_platform(sb: Sandbox) -> Platform:
    def members(segment: str) -> set[str]:
        ids = [list_id for list_id, title in sb.lists if title == segment]
        return set().union(*(sb.list_members(i) for i in ids)) if ids else set()

    def opt_out(email: str) -> None:
        with AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=10_000.0) as client:
            client.unsubscribe(email)

    return Platform(
        name="autopilot",
        sandbox=sb,
        consent_field="unsubscribed",
        members=members,
        stored=lambda: set(sb.contacts),
        opt_out=opt_out,
        opted_out=lambda email: sb.contacts[email]["unsubscribed"] is True,
        upserts=lambda: dict(sb.upsert_counts),
        first_name=lambda email: sb.contacts[email].get("FirstName"),
        write_path="/contacts",
        removal=("DELETE", "/list/"),
    )


def ortto_platform(sb: OrttoSandbox) -> Platform:
    def opt_out(email: str) -> None:
        with OrttoClient(sb.api_key, base_url=sb.url, requests_per_second=10_000.0) as client:
            client.merge_people([{"fields": {"str::email": email, "bol::p": False}}])

    sb.add_custom_field("Tier", "integer")
    return Platform(
        name="ortto",
        sandbox=sb,
        consent_field="bol::p",
        members=sb.tagged,
        stored=lambda: set(sb.people),
        opt_out=opt_out,
        opted_out=lambda email: sb.people[email]["fields"].get("bol::p") is False,
        upserts=lambda: dict(sb.merge_counts),
        first_name=lambda email: sb.people[email]["fields"].get("str::first"),
        write_path="/person/merge",
        removal=("POST", "/person/merge"),
    )


def start(name: str, **switches: Any) -> tuple[Platform, Sandbox | OrttoSandbox]:
    """A started sandbox of platform `name` (the caller stops it) and its `Platform`."""
    if name == "ortto":
        ortto = OrttoSandbox(**switches).start()
        return ortto_platform(ortto), ortto
    autopilot = Sandbox(**switches).start()
    return autopilot_platform(autopilot), autopilot
