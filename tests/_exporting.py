"""What the exporter test files share: a client that never waits, and the mapping they export with."""

from __future__ import annotations

from typing import Any

from autopilot_segments import AutopilotClient, CustomField, FieldMapping
from autopilot_segments.sandbox import Sandbox


def make_client(sb: Sandbox, **options: Any) -> AutopilotClient:
    """A client for `sb` with no pacing and no backoff, so fault tests retry instantly."""
    options.setdefault("requests_per_second", 10_000.0)
    options.setdefault("backoff_factor", 0.0)
    options.setdefault("max_retries", 3)
    return AutopilotClient(sb.api_key, base_url=sb.url, **options)


def make_mapping() -> FieldMapping:
    return FieldMapping(
        email="Email",
        fields={"FirstName": "first_name"},
        custom=[CustomField("Tier", "integer", source="tier")],
    )


class TierDefinedAfterPreflight(AutopilotClient):
    """A client whose account gets `Tier` defined as text right after the exporter's preflight read.

    Another writer racing the export: the preflight saw no conflict, yet Autopilot then refuses every
    contact that carries an integer Tier (one by one, since only some rows carry one). Tests of how
    the exporter handles contacts Autopilot refuses use it to get past the preflight.
    """

    def __init__(self, sb: Sandbox, **options: Any) -> None:
        options.setdefault("requests_per_second", 10_000.0)
        options.setdefault("backoff_factor", 0.0)
        options.setdefault("max_retries", 3)
        super().__init__(sb.api_key, base_url=sb.url, **options)
        self._sb = sb

    def custom_fields(self) -> Any:
        try:
            return super().custom_fields()
        finally:
            self._sb.add_custom_field("Tier", "string")
