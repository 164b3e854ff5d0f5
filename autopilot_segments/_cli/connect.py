"""The API key (environment or key file, never a flag) and the client built from the connection flags."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import (
    ConfigurationError,
)

if TYPE_CHECKING:
    from .._destinations.autopilot.client import AutopilotClient
    from .._destinations.ortto.client import OrttoClient

from .console import KEY_ENV as KEY_ENV  # defined with the redactor that hides its value
from .console import PROG, _Console

_DEFAULT_RATE = 5.0
# Ortto's Professional plan allows 10 requests a second per account (Business and Enterprise: 30).
_ORTTO_DEFAULT_RATE = 10.0
ORTTO_KEY_ENV = "ORTTO_API_KEY"
DESTINATIONS = ("autopilot", "ortto")
# The demo talks to an in-process sandbox; pacing it at Autopilot's 5 r/s would only make it slow.
_DEMO_RATE = 1000.0


# Stands in for a key in a dry run without one: plan() sends nothing, so the key is never used.
_PLACEHOLDER_KEY = "0" * 32
_ORTTO_PLACEHOLDER_KEY = "pk-" + "0" * 32


def _destination(args: argparse.Namespace) -> str:
    """The destination the command talks to (`--destination`, default autopilot)."""
    return str(getattr(args, "destination", None) or "autopilot")


def key_env_for(destination: str) -> str:
    """The environment variable holding the destination's API key."""
    return ORTTO_KEY_ENV if destination == "ortto" else KEY_ENV


def _read_api_key(api_key_file: str | None, destination: str = "autopilot") -> str:
    """The key from `--api-key-file` or the destination's environment variable (`AUTOPILOT_API_KEY`,
    `ORTTO_API_KEY`); never echoes the file's content."""
    if api_key_file is not None:
        path = Path(api_key_file)
        try:
            # utf-8-sig: Windows editors save "UTF-8" with a byte-order mark, which is no part of the key.
            key = path.read_text(encoding="utf-8-sig").strip()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"the API key file {path} is not a text file") from None
        if not key:
            raise ConfigurationError(f"the API key file {path} is empty")
        if any(ch.isspace() for ch in key):
            raise ConfigurationError(f"the API key file {path} must hold only the key, on one line")
        return key
    env = key_env_for(destination)
    key = os.environ.get(env, "").strip()
    if not key:
        raise ConfigurationError(
            f"no API key: set the {env} environment variable or pass --api-key-file PATH "
            f"(or try `{PROG} demo`, which needs none)"
        )
    return key


def _make_client(
    args: argparse.Namespace,
    console: _Console,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    rate: float | None = None,
) -> AutopilotClient | OrttoClient:
    destination = _destination(args)
    key = api_key if api_key is not None else _read_api_key(args.api_key_file, destination)
    console.add_secret(key)
    url = base_url or args.base_url
    region = getattr(args, "region", None)
    options: dict[str, Any] = {}
    if url:
        options["base_url"] = url
    if destination == "ortto":
        from .._destinations.ortto.client import OrttoClient

        if region and not url:
            options["region"] = region
        return OrttoClient(
            key,
            requests_per_second=rate or getattr(args, "rate", None) or _ORTTO_DEFAULT_RATE,
            timeout=(min(5.0, args.timeout), args.timeout) if hasattr(args, "timeout") else (5.0, 30.0),
            max_retries=getattr(args, "max_retries", 5),
            **options,
        )
    if region:
        raise ConfigurationError("--region is Ortto's: it needs --destination ortto")
    from .._destinations.autopilot.client import AutopilotClient

    return AutopilotClient(
        key,
        requests_per_second=rate or getattr(args, "rate", None) or _DEFAULT_RATE,
        timeout=(min(5.0, args.timeout), args.timeout) if hasattr(args, "timeout") else (5.0, 30.0),
        max_retries=getattr(args, "max_retries", 5),
        **options,
    )
