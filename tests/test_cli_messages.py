"""What the command says, run as a real subprocess: one-line usage errors, `--json` error objects for every
error class, and the messages a new user meets (the cap, plurals, field suggestions, the demo)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments._cli import build_parser
from autopilot_segments.sandbox import Sandbox

KEY_ENV = "AUTOPILOT_API_KEY"
WRONG_KEY = "0123456789abcdef0123456789abcdef"
COMMANDS = [
    name
    for action in build_parser()._actions
    if isinstance(action, argparse._SubParsersAction)
    for name in action.choices
]


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def run(*args: str, key: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in (KEY_ENV, "AUTOPILOT_BASE_URL")}
    if key is not None:
        env[KEY_ENV] = key
    return subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "usage:" not in stderr
    assert "Traceback" not in stderr
    return lines[0]


def json_error(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    document = json.loads(result.stdout)
    assert set(document) == {"error"}, document
    error: dict[str, Any] = document["error"]
    assert set(error) == {"code", "message", "exit_code"}
    assert error["exit_code"] == result.returncode
    return error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["export", "vip.csv"],
            "autopilot-segments export: error: --segment is required (see autopilot-segments export --help)",
        ),
        (
            ["exprot", "vip.csv"],
            "autopilot-segments: error: unknown command 'exprot': did you mean 'export'? choose from "
            "{commands} (see autopilot-segments --help)",
        ),
        (
            [],
            "autopilot-segments: error: a command is required: {commands} (see autopilot-segments --help)",
        ),
        (
            ["ping", "--verbos"],
            "autopilot-segments ping: error: unrecognized arguments: --verbos "
            "(see autopilot-segments ping --help)",
        ),
        (
            ["export", "vip.csv", "--segment", "S", "--email-column", "email", "--rate", "0"],
            "autopilot-segments export: error: --rate: must be > 0, got 0 "
            "(see autopilot-segments export --help)",
        ),
        (
            ["export", "vip.csv", "--segment", "S", "--on-leave", "remove", "--email-column", "email"],
            "autopilot-segments export: error: --on-leave remove needs --state FILE: the state remembers "
            "who was exported, so leavers can be found (see autopilot-segments export --help)",
        ),
    ],
)
def test_a_usage_error_is_one_line_with_the_fix_and_a_help_pointer(args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == expected.replace("{commands}", ", ".join(COMMANDS))


def test_with_json_a_usage_error_is_a_json_object_on_stdout() -> None:
    result = run("export", "vip.csv", "--json")
    assert result.returncode == 2
    assert json_error(result) == {
        "code": "usage",
        "message": "--segment is required (see autopilot-segments export --help)",
        "exit_code": 2,
    }
    assert one_line(result.stderr).startswith("autopilot-segments export: error: --segment is required")


def test_with_json_a_refused_key_is_an_auth_error(sandbox: Sandbox) -> None:
    result = run("ping", "--json", "--base-url", sandbox.url, key=WRONG_KEY)
    assert result.returncode == 4
    error = json_error(result)
    assert error["code"] == "auth"
    assert error["message"].startswith("the API key was refused")
    assert WRONG_KEY not in result.stdout + result.stderr


def test_with_json_a_guard_rail_is_a_guardrail_error(sandbox: Sandbox, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("email\n", encoding="utf-8")
    result = run(
        "export", str(empty), "--segment", "Empty", "--email-column", "email", "--json",
        "--base-url", sandbox.url, "--no-progress", key=sandbox.api_key,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    error = json_error(result)
    assert error["code"] == "guardrail"
    assert "--force" in error["message"]


def test_with_json_an_unreachable_api_is_a_failure(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("email\nada@example.com\n", encoding="utf-8")
    result = run(
        "export", str(source), "--segment", "S", "--email-column", "email", "--json", "--no-progress",
        "--base-url", f"http://127.0.0.1:{free_port()}/v1", "--max-retries", "0", "--timeout", "2",
        key=WRONG_KEY,
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert json_error(result)["code"] == "failure"


def test_with_json_an_unreadable_source_is_a_configuration_error(tmp_path: Path) -> None:
    result = run(
        "export", str(tmp_path / "missing.csv"), "--segment", "S", "--email-column", "email", "--json",
        "--dry-run",
    )  # fmt: skip
    assert result.returncode == 2
    error = json_error(result)
    assert error["code"] == "configuration"
    assert "missing.csv" in error["message"]
    assert one_line(result.stderr).startswith("autopilot-segments: error: ")


def test_without_json_stdout_stays_empty_on_an_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.csv")
    result = run("export", missing, "--segment", "S", "--email-column", "e", "--dry-run")
    assert result.returncode == 2
    assert result.stdout == ""
    one_line(result.stderr)


def test_a_common_field_name_on_the_command_line_suggests_the_standard_field(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("email,city,zip\nada@example.com,London,N1\n", encoding="utf-8")
    result = run(
        "export", str(source), "--segment", "S", "--email-column", "email", "--dry-run",
        "--field", "City=city", "--field", "Zip=zip",
    )  # fmt: skip
    assert result.returncode == 2
    # Several configuration problems are listed together, one a line, under the error line.
    assert result.stderr.startswith("autopilot-segments: error: 2 configuration problems:")
    line = result.stderr
    assert "'City' is not an Autopilot standard field; did you mean MailingCity?" in line
    assert "'Zip' is not an Autopilot standard field; did you mean MailingPostalCode?" in line
    assert "use a custom field" not in line


def test_quiet_prints_only_the_one_line_result_and_verbose_adds_info_logs(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text("email\nada@example.com\nnot-an-email\n", encoding="utf-8")
    export = (
        "export",
        str(source),
        "--segment",
        "Quiet",
        "--email-column",
        "email",
        "--base-url",
        sandbox.url,
    )
    quiet = run(*export, "-q", "--rejections", str(tmp_path / "rejected.csv"), key=sandbox.api_key)
    assert quiet.returncode == 1, quiet.stderr
    assert quiet.stdout == "Quiet: 2 rows, 1 exported, 0 unchanged, 1 rejected\n"
    assert quiet.stderr == ""

    verbose = run(*export, "--verbose", key=sandbox.api_key)
    assert verbose.returncode == 1, verbose.stderr
    assert "Segment 'Quiet'" in verbose.stdout  # the full summary, as without the flag
    info = [line for line in verbose.stderr.splitlines() if " INFO autopilot_segments" in line]
    assert any("export finished" in line for line in info), verbose.stderr
    assert " DEBUG " not in verbose.stderr
    assert sandbox.api_key not in verbose.stderr

    both = run(*export, "-q", "-v", key=sandbox.api_key)
    assert both.returncode == 2
    assert "not allowed with argument" in one_line(both.stderr)


def test_quiet_demo_prints_one_line_and_exits_0() -> None:
    result = run("demo", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "VIP customers: 3,000 rows, 2,820 exported, 0 unchanged, 180 rejected"
    ]
    assert result.stderr == ""


def test_the_capped_summary_says_how_to_lift_the_cap_and_counts_agree_in_number(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    source = tmp_path / "three.csv"
    source.write_text("email\nada@example.com\ngrace@example.com\nalan@example.com\n", encoding="utf-8")
    rejections = tmp_path / "rejected.csv"
    result = run(
        "export", str(source), "--segment", "Capped", "--email-column", "email", "--max-profiles", "2",
        "--base-url", sandbox.url, "--rejections", str(rejections), key=sandbox.api_key,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "3 rows: 2 exported, 0 unchanged, 1 rejected (over_limit 1)" in result.stdout
    assert "1 row was over the profile cap and not exported: raise the cap with" in result.stdout
    assert "--max-profiles N" in result.stdout
    assert "1 rejected row written to" in result.stdout
    rejected = rejections.read_text(encoding="utf-8")
    assert "cap of 2 profiles" in rejected
    assert "--max-profiles N" in rejected


def test_one_row_is_one_row(tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_text("email\nada@example.com\n", encoding="utf-8")
    result = run("export", str(source), "--segment", "One", "--email-column", "email", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "1 row: 1 would export, 0 unchanged, 0 rejected" in result.stdout
    assert "1 rows" not in result.stdout
    assert "1 API calls" not in result.stdout


def test_a_toml_mapping_file_on_the_command_line(tmp_path: Path) -> None:
    source = tmp_path / "people.csv"
    source.write_text("email,first\nada@example.com,Ada\n", encoding="utf-8")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('email = "email"\n\n[fields]\nFirstName = "first"\n', encoding="utf-8")
    result = run("export", str(source), "--segment", "T", "--mapping", str(mapping), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exported"] == 1
    mapping.write_text('email = "email"\n[fields\n', encoding="utf-8")
    broken = run("export", str(source), "--segment", "T", "--mapping", str(mapping), "--dry-run")
    assert broken.returncode == 2
    assert "is not valid TOML" in one_line(broken.stderr)
    assert "JSON" not in broken.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_progress_bar_on_a_terminal_formats_numbers_like_the_plain_line(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    source = tmp_path / "many.csv"
    with source.open("w", encoding="utf-8") as fh:
        fh.write("email\n")
        fh.writelines(f"not-an-email-{n}\n" for n in range(100_000))  # a dry run counts rejections
    controller, terminal = pty.openpty()  # stderr a terminal, so the tqdm bar is drawn
    # 0 columns (a fresh pseudo-terminal) would leave tqdm no room to draw in.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    try:
        process = subprocess.run(
            [sys.executable, "-m", "autopilot_segments", "export", str(source), "--segment", "Many",
             "--email-column", "email", "--dry-run", "--max-profiles", "0"],
            stdout=subprocess.PIPE, stderr=terminal, text=True, timeout=120, check=False,
        )  # fmt: skip
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(controller)
    bar = b"".join(chunks).decode("utf-8", "replace")
    assert process.returncode == 1, bar
    assert "rejected=100,000" in bar
    assert "e+" not in bar


def test_one_leaver_removed_is_one_leaver(sandbox: Sandbox, tmp_path: Path) -> None:
    state = str(tmp_path / "state.db")
    emails = ["ada@example.com", "grace@example.com", "alan@example.com"]
    source = tmp_path / "segment.csv"
    export = (
        "export", str(source), "--segment", "Leavers plural", "--email-column", "email", "--state", state,
        "--on-leave", "remove", "--base-url", sandbox.url, "--no-progress",
    )  # fmt: skip
    source.write_text("email\n" + "\n".join(emails) + "\n", encoding="utf-8")
    first = run(*export, key=sandbox.api_key)
    assert first.returncode == 0, first.stderr
    source.write_text("email\n" + "\n".join(emails[:2]) + "\n", encoding="utf-8")
    second = run(*export, key=sandbox.api_key)
    assert second.returncode == 0, second.stderr
    assert "1 leaver removed from the list" in second.stdout
    assert "1 leavers" not in second.stdout
