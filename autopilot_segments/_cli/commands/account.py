"""`ping`, `lists`, `segments`, `fields`: read-only commands on the account."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from ..._destinations.autopilot.client import AutopilotClient
from ..._errors import ConfigurationError
from ..connect import _make_client
from ..console import _Console
from ..exit_codes import ExitCode
from ..tables import _print_records, _record


def _cmd_ping(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        if isinstance(client, AutopilotClient):
            account: object = client.account()
            fingerprint = client.account_fingerprint
        else:  # Ortto has no account call: reading the custom fields proves the key and the region
            account = {"custom_fields": len(client.custom_fields())}
            fingerprint = "ortto:" + client.account_fingerprint
        base_url = client.base_url
    if console.json_mode:
        console.emit_json(
            {"ok": True, "base_url": base_url, "account_fingerprint": fingerprint, "account": account}
        )
    else:
        # A prefix of the fingerprint is enough to tell accounts apart at a glance.
        console.out(f"OK: {base_url} accepted the API key (account fingerprint {fingerprint[:12]}).")
    return ExitCode.OK


def _cmd_lists(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        if not isinstance(client, AutopilotClient):  # Ortto has no lists: its audiences stand in
            audiences = [
                {"audience_id": a.audience_id, "name": a.name, "tag": _tag_of(a.filter)}
                for a in client.audiences(with_filter=True)
            ]
            _print_records(console, audiences, ("audience_id", "name", "tag"), "audiences")
            return ExitCode.OK
        records = [_record(item) for item in client.lists()]
    _print_records(console, records, ("list_id", "title"), "lists")
    return ExitCode.OK


def _tag_of(audience_filter: object) -> str | None:
    """The tag an audience's filter is "has tag X" on, when it is that simple."""
    if isinstance(audience_filter, dict) and isinstance(audience_filter.get("$has_tag"), dict):
        value = audience_filter["$has_tag"].get("value")
        return value if isinstance(value, str) else None
    return None


def _cmd_segments(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        if not isinstance(client, AutopilotClient):
            raise ConfigurationError(
                "Ortto has no smart segments: its audiences stand in for them (`lists --destination ortto`)"
            )
        records = [_record(item) for item in client.smart_segments()]
    _print_records(console, records, ("segment_id", "title"), "smart segments")
    return ExitCode.OK


def _cmd_fields(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        records = [_record(item) for item in client.custom_fields()]
    columns = ("name", "field_type") if isinstance(client, AutopilotClient) else ("name", "field_id")
    _print_records(console, records, columns, "custom fields")
    return ExitCode.OK
