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
    from .._client import AutopilotClient

from .console import KEY_ENV as KEY_ENV  # defined with the redactor that hides its value
from .console import PROG, _Console

_DEFAULT_RATE = 5.0
# The demo talks to an in-process sandbox; pacing it at Autopilot's 5 r/s would only make it slow.
_DEMO_RATE = 1000.0


# Stands in for a key in a dry run without one: plan() sends nothing, so the key is never used.
_PLACEHOLDER_KEY = "0" * 32


def _read_api_key(api_key_file: str | None) -> str:
    """The key from `--api-key-file` or the environment; never echoes the file's content."""
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
    key = os.environ.get(KEY_ENV, "").strip()
    if not key:
        raise ConfigurationError(
            f"no API key: set the {KEY_ENV} environment variable or pass --api-key-file PATH "
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
) -> AutopilotClient:
    from .._client import AutopilotClient

    key = api_key if api_key is not None else _read_api_key(args.api_key_file)
    console.add_secret(key)
    url = base_url or args.base_url
    options: dict[str, Any] = {}
    if url:
        options["base_url"] = url
    return AutopilotClient(
        key,
        requests_per_second=rate or getattr(args, "rate", None) or _DEFAULT_RATE,
        timeout=(min(5.0, args.timeout), args.timeout) if hasattr(args, "timeout") else (5.0, 30.0),
        max_retries=getattr(args, "max_retries", 5),
        **options,
    )
