"""Where the command writes: stdout/stderr through a redactor that knows the key, and --debug logging."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

import attrs

if TYPE_CHECKING:
    pass


PROG = "autopilot-segments"
KEY_ENV = "AUTOPILOT_API_KEY"


_REDACTED = "<redacted>"
# What an Autopilot API key looks like: 32 hex characters (not part of a longer hex run).
_KEY_LIKE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32}(?![0-9A-Fa-f])")
_MIN_CONFIGURED_KEY = 8  # a shorter AUTOPILOT_API_KEY is no key; replacing it everywhere would garble text


def redact_key_like(text: str) -> str:
    """`text` with anything that looks like an API key replaced: 32 hex characters, or the value of
    AUTOPILOT_API_KEY or ORTTO_API_KEY (whatever its form).

    Every usage or error line passes through here (in `exit_codes._report_error`): a key typed after a
    mistaken flag (`--apikey KEY`, `--key KEY`, `--api-key-file KEY`) would otherwise be echoed by the
    error that names the mistake.
    """
    for env in (KEY_ENV, "ORTTO_API_KEY"):
        configured = os.environ.get(env, "").strip()
        if len(configured) >= _MIN_CONFIGURED_KEY:
            text = text.replace(configured, _REDACTED)
    return _KEY_LIKE.sub(_REDACTED, text)


@attrs.define
class _Console:
    """Where the command writes: results to stdout, diagnostics to stderr, the API key nowhere."""

    stdout: TextIO
    stderr: TextIO
    json_mode: bool = False
    quiet: bool = False
    secrets: list[str] = attrs.field(factory=list)

    def add_secret(self, value: str) -> None:
        if value and value not in self.secrets:
            self.secrets.append(value)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, _REDACTED)
        return text

    def out(self, text: str = "") -> None:
        """A result line (stdout)."""
        print(self.redact(text), file=self.stdout, flush=True)

    def note(self, text: str) -> None:
        """Context for a human: stdout normally, stderr under `--json` so stdout stays parseable; none
        under `--quiet`."""
        if self.quiet:
            return
        print(self.redact(text), file=self.stderr if self.json_mode else self.stdout, flush=True)

    def error(self, text: str) -> None:
        print(self.redact(f"{PROG}: error: {text}"), file=self.stderr, flush=True)

    def emit_json(self, value: Any) -> None:
        self.out(json.dumps(value, indent=2, default=str, ensure_ascii=False))


class _RedactingFormatter(logging.Formatter):
    """Belt and braces: whatever a library logs, the key is replaced before it reaches the stream."""

    def __init__(self, console: _Console) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._console = console

    def format(self, record: logging.LogRecord) -> str:
        return self._console.redact(super().format(record))


@contextlib.contextmanager
def _debug_logging(console: _Console, enabled: bool, *, verbose: bool = False) -> Iterator[None]:
    """Logging to stderr for the duration of the command (undone after, for in-process callers).

    `--debug` (`enabled`): every logger at DEBUG (each request, urllib3's retries). `--verbose`: the
    library's own INFO lines (list created, export started and finished, slow-downs), which carry no
    personal data. Neither: nothing is logged to the terminal.
    """
    if not (enabled or verbose):
        yield
        return
    handler = logging.StreamHandler(console.stderr)
    handler.setFormatter(_RedactingFormatter(console))
    logger = logging.getLogger() if enabled else logging.getLogger("autopilot_segments")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if enabled else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
