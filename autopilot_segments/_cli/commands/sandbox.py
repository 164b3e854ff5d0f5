"""`sandbox`: serve the local Autopilot-compatible (or Ortto-compatible) sandbox until Ctrl+C."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..._errors import (
    ConfigurationError,
)

if TYPE_CHECKING:
    pass

from ..connect import KEY_ENV, _read_api_key
from ..console import PROG, _Console
from ..exit_codes import ExitCode
from ..options import _fraction, _non_negative_float, _non_negative_int, _positive_float


def _add_sandbox_arguments(sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(handler=_cmd_sandbox)
    sub.add_argument(
        "--destination",
        choices=("autopilot", "ortto"),
        default="autopilot",
        help="the API the sandbox plays: Autopilot (default) or Ortto (docs/ortto.md)",
    )
    sub.add_argument(
        "--port", type=_non_negative_int, default=0, help="port on 127.0.0.1 (default: any free one)"
    )
    sub.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="accept the key in this file; if the file does not exist, write a new random key to it "
        "(default: a new random key, printed)",
    )
    sub.add_argument(
        "--rate",
        type=_positive_float,
        metavar="R",
        help="answer 429 above R requests/s, as Autopilot does at 5 (default: no limit)",
    )
    sub.add_argument(
        "--retry-after",
        type=_positive_float,
        metavar="SECONDS",
        help="send a Retry-After header with every 429 (Autopilot documents none)",
    )
    sub.add_argument(
        "--latency",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="hold every request this long (default: 0)",
    )
    sub.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        metavar="P",
        help="probability (0-1) that a request meets a random fault: 500, 502, 503, 429 or a dropped "
        "connection (default: 0)",
    )
    sub.add_argument("--fault-seed", type=int, default=0, metavar="N", help="seed of the random faults")
    behaviour = sub.add_argument_group(
        "ambiguous Autopilot behaviours (the API record is unclear; pick which one the sandbox plays)"
    )
    behaviour.add_argument(
        "--bulk-invalid",
        choices=("reject", "drop"),
        default="reject",
        help="a bulk upsert holding an invalid contact: 400 for the whole request, or drop it silently",
    )
    behaviour.add_argument(
        "--bulk-list",
        choices=("honoured", "ignored"),
        default="honoured",
        help="whether _autopilot_list in a bulk upsert adds the contacts to the list",
    )
    behaviour.add_argument(
        "--bulk-answer",
        choices=("map", "ids_only"),
        default="map",
        help='a bulk upsert answers {"contact_ids", "email_contact_map"} (map) or only {"contact_ids"} '
        "(ids_only, as in Autopilot's published example)",
    )
    behaviour.add_argument(
        "--duplicate-list",
        choices=("conflict", "create"),
        default="conflict",
        help="creating a list whose name is taken: 409, or a second list",
    )
    behaviour.add_argument(
        "--delete-status", type=int, choices=(200, 204), default=200, help="status of a successful DELETE"
    )
    behaviour.add_argument(
        "--hook-style",
        choices=("new", "old"),
        default="new",
        help='registering a REST hook answers {"hook_id"} (new) or 201 {"id"} (old docs)',
    )
    behaviour.add_argument(
        "--error-style",
        choices=("json", "code", "empty", "html"),
        default="json",
        help="the body of error answers",
    )
    ortto = sub.add_argument_group("ambiguous Ortto behaviours (with --destination ortto)")
    ortto.add_argument(
        "--try-in-seconds",
        type=_non_negative_float,
        default=1.0,
        metavar="SECONDS",
        help="the try-in-seconds of Ortto's 429 body (default: 1)",
    )
    ortto.add_argument(
        "--invalid-person",
        choices=("per_person", "whole_call"),
        default="per_person",
        help="one invalid person in a merge: only that person is refused, or the whole call (400)",
    )
    ortto.add_argument(
        "--skipped-status",
        choices=("ignored", "skipped", "omitted"),
        default="ignored",
        help="the status of a person skipped by skip_non_existing or merge_strategy 3",
    )
    ortto.add_argument(
        "--merge-tags",
        choices=("add", "replace"),
        default="add",
        help="whether tags on a merge add to a person's tags (documented) or replace them",
    )
    ortto.add_argument(
        "--async-answer",
        choices=("accepted", "people", "empty"),
        default="accepted",
        help="the answer to an asynchronous merge",
    )
    ortto.add_argument(
        "--bad-request-ban", action="store_true", help="ban the caller for 15 s after 15 bad requests in 15 s"
    )
    sub.add_argument(
        "--json", action="store_true", help="print the URL and key as one JSON object, then serve"
    )


def _cmd_sandbox(args: argparse.Namespace, console: _Console) -> int:
    if args.destination == "ortto":
        return _serve_ortto(args, console)
    from ...sandbox import Sandbox
    from ...sandbox._serving import sandbox_from_arguments, serve_until_signalled

    sandbox = sandbox_from_arguments(args, api_key=_sandbox_key(args.api_key_file))

    def announce(sb: Sandbox) -> None:
        # The one place the key is printed: the user needs it to talk to the sandbox.
        if console.json_mode:
            print(json.dumps({"url": sb.url, "api_key": sb.api_key}), file=console.stdout, flush=True)
        else:
            print(
                f"Autopilot sandbox listening at {sb.url}\n"
                f"API key: {sb.api_key}\n\n"
                f"Try it:\n"
                f"  export {KEY_ENV}={sb.api_key}\n"
                f"  {PROG} ping --base-url {sb.url}\n\n"
                f"Press Ctrl+C to stop.",
                file=console.stdout,
                flush=True,
            )

    # Ctrl+C and SIGTERM (e.g. from a process manager) both shut the server down cleanly.
    serve_until_signalled(sandbox, announce)
    print("sandbox stopped", file=console.stderr, flush=True)
    return ExitCode.OK


def _serve_ortto(args: argparse.Namespace, console: _Console) -> int:
    from ...sandbox import OrttoSandbox
    from ...sandbox._serving import ortto_sandbox_from_arguments, serve_until_signalled

    try:
        sandbox = ortto_sandbox_from_arguments(args, api_key=_sandbox_key(args.api_key_file, "ortto"))
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None

    def announce(sb: OrttoSandbox) -> None:
        # The one place the key is printed: the user needs it to talk to the sandbox.
        if console.json_mode:
            print(json.dumps({"url": sb.url, "api_key": sb.api_key}), file=console.stdout, flush=True)
        else:
            print(
                f"Ortto sandbox listening at {sb.url}\n"
                f"API key: {sb.api_key}\n\n"
                f"Try it:\n"
                f"  export ORTTO_API_KEY={sb.api_key}\n"
                f"  {PROG} ping --destination ortto --base-url {sb.url}\n\n"
                f"Press Ctrl+C to stop.",
                file=console.stdout,
                flush=True,
            )

    serve_until_signalled(sandbox, announce)
    print("sandbox stopped", file=console.stderr, flush=True)
    return ExitCode.OK


def _sandbox_key(api_key_file: str | None, destination: str = "autopilot") -> str | None:
    """The sandbox's key: from the file, or a new random one written to it (None: the sandbox picks)."""
    if api_key_file is None:
        return None
    path = Path(api_key_file)
    if path.exists():
        return _read_api_key(api_key_file, destination)
    from ...sandbox._serving import create_key_file

    try:
        return create_key_file(path)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the API key file {path}: {exc.strerror or exc}") from None
