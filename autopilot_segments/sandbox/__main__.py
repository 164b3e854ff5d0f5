"""`python -m autopilot_segments.sandbox`: serve a local Autopilot (or, with `--destination ortto`, Ortto)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ._autopilot.sandbox import Sandbox
from ._ortto.sandbox import OrttoSandbox
from ._serving import (
    create_key_file,
    ortto_sandbox_from_arguments,
    sandbox_from_arguments,
    serve_until_signalled,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autopilot_segments.sandbox",
        description="Serve a local, in-memory Autopilot REST API v1 (or Ortto API) until Ctrl-C.",
    )
    parser.add_argument(
        "--destination",
        choices=("autopilot", "ortto"),
        default="autopilot",
        help="which API to serve (default: autopilot)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        help="read the API key from this file; if it does not exist, write a new random key to it",
    )
    parser.add_argument("--rate", type=float, default=None, help="requests per second (default: unlimited)")
    parser.add_argument("--retry-after", type=float, default=None, help="seconds for Retry-After on 429s")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds each request is held (default: 0)"
    )
    parser.add_argument("--bulk-invalid", choices=("reject", "drop"), default="reject")
    parser.add_argument("--bulk-list", choices=("honoured", "ignored"), default="honoured")
    parser.add_argument("--bulk-answer", choices=("map", "ids_only"), default="map")
    parser.add_argument("--duplicate-list", choices=("conflict", "create"), default="conflict")
    parser.add_argument("--delete-status", type=int, choices=(200, 204), default=200)
    parser.add_argument("--hook-style", choices=("new", "old"), default="new")
    parser.add_argument("--error-style", choices=("json", "code", "empty", "html"), default="json")
    ortto = parser.add_argument_group("Ortto switches (with --destination ortto)")
    ortto.add_argument("--try-in-seconds", type=float, default=1.0, help="try-in-seconds of Ortto's 429 body")
    ortto.add_argument("--invalid-person", choices=("per_person", "whole_call"), default="per_person")
    ortto.add_argument("--skipped-status", choices=("ignored", "skipped", "omitted"), default="ignored")
    ortto.add_argument("--merge-tags", choices=("add", "replace"), default="add")
    ortto.add_argument("--async-answer", choices=("accepted", "people", "empty"), default="accepted")
    ortto.add_argument("--bad-request-ban", action="store_true", help="ban for 15 s after 15 bad requests")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a random fault (0-1)")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the random faults")
    return parser


def _api_key(path: Path | None) -> str | None:
    if path is None:
        return None
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise SystemExit(f"{path} is empty: put an API key in it, or delete it to get a new one")
        return key
    return create_key_file(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.destination == "ortto":
        return _serve_ortto(args)
    try:
        sandbox = sandbox_from_arguments(args, api_key=_api_key(args.api_key_file), host=args.host)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def announce(running: Sandbox) -> None:
        # The one place the key is shown: the user has to copy it into their client configuration.
        print(f"Autopilot sandbox listening at {running.url}", flush=True)
        print(f"API key: {running.api_key}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_signalled(sandbox, announce)
    print("Sandbox stopped.", flush=True)
    return 0


def _serve_ortto(args: argparse.Namespace) -> int:
    try:
        sandbox = ortto_sandbox_from_arguments(args, api_key=_api_key(args.api_key_file), host=args.host)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    def announce(running: OrttoSandbox) -> None:
        print(f"Ortto sandbox listening at {running.url}", flush=True)
        print(f"API key: {running.api_key}", flush=True)
        print("Press Ctrl-C to stop.", flush=True)

    serve_until_signalled(sandbox, announce)
    print("Sandbox stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
