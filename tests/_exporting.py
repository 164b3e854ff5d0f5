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
