"""The command line under mistakes and interruptions: no key echoed, no record lost on Ctrl-C.

Every case runs the real `autopilot-segments` command as a subprocess.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from autopilot_segments.sandbox import Sandbox

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


def test_a_configured_ortto_key_is_never_repeated_either() -> None:
    secret = "ortto-style-key-0123456789-abcdefghij"
    env = {name: value for name, value in os.environ.items() if name not in (KEY_ENV, "ORTTO_API_KEY")}
    env["ORTTO_API_KEY"] = secret
    results = [
        subprocess.run(
            [sys.executable, "-m", "autopilot_segments", *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        for command in (("ping", "--apikey", secret), ("ping", "--api-key-file", secret))
    ]
    for result in results:
        assert result.returncode == 2, result.stderr
        assert secret not in result.stdout + result.stderr
        assert "<redacted>" in result.stderr


def test_ordinary_usage_errors_keep_their_values() -> None:
    # Only what looks like a key is hidden: a mistyped path or number is still shown.
    result = run("export", "s.csv", "--segment", "S", "--email-column", "email", "--rate", "fast")
    assert result.returncode == 2
    assert "invalid" in result.stderr
    assert "'fast'" in result.stderr


def bulk_calls(sb: Sandbox) -> int:
    return sum(1 for r in sb.requests if r.method == "POST" and r.path == "/contacts")


@pytest.mark.parametrize(
    ("signum", "exit_code", "with_state"), [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)]
)
def test_an_interrupted_export_writes_what_autopilot_acknowledged(
    tmp_path: Path, signum: int, exit_code: int, with_state: bool
) -> None:
    emails = [f"person{i}@example.com" for i in range(1, 5001)]
    source = tmp_path / "segment.csv"
    source.write_text("email\n" + "\n".join(emails) + "\n", encoding="utf-8")
    report_path, rejections_path = tmp_path / "report.json", tmp_path / "rejected.csv"
    with Sandbox(latency=0.1) as sb:
        command = [
            "export", str(source), "--segment", "Interrupted", "--email-column", "email",
            "--base-url", sb.url, "--rate", "100", "--concurrency", "2", "--no-progress",
            "--report", str(report_path), "--rejections", str(rejections_path),
        ]  # fmt: skip
        if with_state:
            command += ["--state", str(tmp_path / "state.db")]
        env = {**os.environ, KEY_ENV: sb.api_key}
        process = subprocess.Popen(
            [sys.executable, "-m", "autopilot_segments", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            # With 2 workers, a 4th bulk call means at least 2 batches were answered and taken in.
            deadline = time.monotonic() + 60
            while bulk_calls(sb) < 4 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert process.poll() is None, "the export ended before it could be interrupted"
            process.send_signal(signum)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == exit_code, stderr
        assert f"Report written to {report_path}" in stdout
        report = json.loads(report_path.read_text(encoding="utf-8"))
        assert report["interrupted"] is True
        assert report["complete"] is False
        assert 200 <= report["exported"] < 5000
        with rejections_path.open(newline="", encoding="utf-8") as fh:
            rejected = {int(row["row"]): row for row in csv.DictReader(fh)}
        assert len(rejected) == len(report["rejected"])
        assert {row["reason"] for row in rejected.values()} <= {"failed"}
        # Every row read got one outcome, and every row the report calls exported is on the list.
        read = report["total_rows"]
        assert read == report["exported"] + len(rejected)
        exported = {emails[row - 1] for row in range(1, read + 1) if row not in rejected}
        assert len(exported) == report["exported"]
        list_id = report["list_id"]
        assert exported <= sb.list_members(list_id)
        # One line says how much was done and that re-running is safe.
        lines = [line for line in stderr.splitlines() if "re-run" in line]
        assert len(lines) == 1, stderr
        assert f"{report['exported']:,} rows exported" in lines[0]
        assert "safe" in lines[0]
        assert ("--state" in lines[0]) is with_state
        if with_state:
            # Re-running the same command completes the export and sends nothing twice.
            rerun = subprocess.run(
                [sys.executable, "-m", "autopilot_segments", *command],
                capture_output=True, text=True, env=env, timeout=120, check=False,
            )  # fmt: skip
            assert rerun.returncode == 0, rerun.stderr
            second = json.loads(report_path.read_text(encoding="utf-8"))
            assert second["unchanged"] >= report["exported"]
            assert second["exported"] + second["unchanged"] == 5000
            assert sb.list_members(list_id) == set(emails)
