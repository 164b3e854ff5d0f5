"""`ping`, `lists`, `segments`, `fields`: read-only commands on the account."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

from ..connect import _make_client
from ..console import _Console
from ..exit_codes import ExitCode
from ..tables import _print_records, _record


def _cmd_ping(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        account = client.account()
        fingerprint = client.account_fingerprint
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
        records = [_record(item) for item in client.lists()]
    _print_records(console, records, ("list_id", "title"), "lists")
    return ExitCode.OK


def _cmd_segments(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        records = [_record(item) for item in client.smart_segments()]
    _print_records(console, records, ("segment_id", "title"), "smart segments")
    return ExitCode.OK


def _cmd_fields(args: argparse.Namespace, console: _Console) -> int:
    with _make_client(args, console) as client:
        records = [_record(item) for item in client.custom_fields()]
    _print_records(console, records, ("name", "field_type"), "custom fields")
    return ExitCode.OK
