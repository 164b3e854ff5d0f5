"""The command line under mistakes and interruptions: no key echoed, no record lost on Ctrl-C.

Every case runs the real `autopilot-segments` command as a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

KEY_ENV = "AUTOPILOT_API_KEY"
KEY = "9f0e1d2c3b4a59687766554433221100"  # what a real key looks like: 32 hex characters


def run(*args: str, env_key: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    if env_key is not None:
        env[KEY_ENV] = env_key
    return subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def run_all(
    commands: Sequence[Sequence[str]], env_key: str | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands started at once, to keep the wall time down."""
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    if env_key is not None:
        env[KEY_ENV] = env_key
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "autopilot_segments", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for command in commands
    ]
    results = []
    for command, process in zip(commands, started, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr))
    return results


MISTAKES = [
    ("ping", "--apikey", KEY),
    ("ping", f"--api_key={KEY}"),
    ("ping", "--key", KEY),
    ("--key", KEY, "ping"),
    ("lists", "--token", KEY.upper()),
    ("ping", KEY),
    ("export", "s.csv", "--segment", "S", "--email-column", "email", "--apikey", KEY),
    ("export", "s.csv", "--segment", "S", "--email-column", "email", "--rate", KEY),
    ("ping", "--api-key-file", KEY),
    ("ping", "--api-key-file", f"/tmp/{KEY}"),
]


@pytest.mark.parametrize("env_key", [None, KEY])
def test_no_usage_error_repeats_a_key_whatever_the_flag(env_key: str | None) -> None:
    results = run_all(MISTAKES, env_key=env_key)
    for result in results:
        assert result.returncode == 2, (result.args, result.stderr)
        for text in (result.stdout, result.stderr, result.stdout.lower(), result.stderr.lower()):
            assert KEY not in text, (result.args, text)
            assert KEY.upper() not in text, (result.args, text)
        assert "<redacted>" in result.stderr, (result.args, result.stderr)
    # The message still says what went wrong.
    by_command = {tuple(r.args): r.stderr for r in results}
    assert "unrecognized arguments: --apikey <redacted>" in by_command[("ping", "--apikey", KEY)]
    assert "cannot read the API key file <redacted>" in by_command[("ping", "--api-key-file", KEY)]


def test_the_configured_key_is_never_repeated_even_when_it_does_not_look_like_one() -> None:
    secret = "not-hex-but-still-the-configured-key"
    results = run_all(
        [("ping", "--apikey", secret), ("ping", "--api-key-file", secret), ("lists", "--rate", secret)],
        env_key=secret,
    )
    for result in results:
        assert result.returncode == 2, (result.args, result.stderr)
        assert secret not in result.stdout
        assert secret not in result.stderr
        assert "<redacted>" in result.stderr


def test_ordinary_usage_errors_keep_their_values() -> None:
    # Only what looks like a key is hidden: a mistyped path or number is still shown.
    result = run("export", "s.csv", "--segment", "S", "--email-column", "email", "--rate", "fast")
    assert result.returncode == 2
    assert "invalid" in result.stderr
    assert "'fast'" in result.stderr
