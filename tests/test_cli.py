"""The `autopilot-segments` command, run as a real subprocess against a sandbox in the test process."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from autopilot_segments import __version__
from autopilot_segments.sandbox import Sandbox

KEY_ENV = "AUTOPILOT_API_KEY"
WRONG_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def command_env(key: str | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    if key is not None:
        env[KEY_ENV] = key
    return env


def run(
    *args: str, key: str | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *args],
        capture_output=True,
        text=True,
        env=command_env(key),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def run_together(*commands: Sequence[str], key: str | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands started at once, to keep the wall time of the suite down."""
    started = [
        (
            list(command),
            subprocess.Popen(
                [sys.executable, "-m", "autopilot_segments", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=command_env(key),
            ),
        )
        for command in commands
    ]
    results = []
    for command, process in started:
        stdout, stderr = process.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("autopilot-segments: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_key_absent(key: str, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert key not in result.stdout
        assert key not in result.stderr


def write_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_help_lists_every_command_and_exit_code_and_version_prints() -> None:
    helped, export_help, version = run_together(("--help",), ("export", "--help"), ("--version",))
    assert helped.returncode == 0
    for command in ("ping", "lists", "segments", "fields", "export", "demo", "sandbox"):
        assert command in helped.stdout
    for code in range(6):
        assert f"\n  {code}  " in helped.stdout
    assert export_help.returncode == 0
    # Every export flag issue 6 names, plus the key file (the only way besides the environment).
    for flag in (
        "--segment",
        "--email-column",
        "--field",
        "--custom",
        "--mapping",
        "--state",
        "--on-leave",
        "--dry-run",
        "--max-profiles",
        "--rate",
        "--report",
        "--rejections",
        "--base-url",
        "--sandbox",
        "--json",
        "--debug",
        "--api-key-file",
    ):
        assert f"  {flag} " in export_help.stdout, flag
    assert "--api-key " not in export_help.stdout
    assert version.returncode == 0
    assert version.stdout.strip() == f"autopilot-segments {__version__}"


@pytest.mark.skipif(sys.platform == "win32", reason="the script is autopilot-segments.exe there")
def test_the_console_script_is_the_same_command() -> None:
    script = Path(sys.executable).with_name("autopilot-segments")
    assert script.exists(), "the package is installed without its console script"
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"autopilot-segments {__version__}"


def test_read_commands_print_tables_and_json(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.add_contacts(
        [{"Email": "ada@example.com", "custom": {"integer--Loyalty--Points": 7, "string--Tier": "gold"}}]
    )
    list_id = sandbox.create_list("Newsletter subscribers")
    segment_id = sandbox.add_smart_segment("Engaged readers", ["ada@example.com"])
    key_file = tmp_path / "key"
    key_file.write_text(sandbox.api_key + "\n", encoding="utf-8")
    connection = ("--base-url", sandbox.url, "--api-key-file", str(key_file))

    ping, lists_json, lists_table, segments, fields = run_together(
        ("ping", *connection),
        ("lists", "--json", *connection),
        ("lists", *connection),
        ("segments", "--json", *connection),
        ("fields", "--json", *connection),
    )
    assert ping.returncode == 0, ping.stderr
    assert ping.stdout.startswith(f"OK: {sandbox.url} accepted the API key")

    assert lists_json.returncode == 0, lists_json.stderr
    assert {"list_id": list_id, "title": "Newsletter subscribers"} in json.loads(lists_json.stdout)

    header, rule, *rows = lists_table.stdout.splitlines()
    assert header.split() == ["LIST_ID", "TITLE"]
    assert set(rule) <= {"-", " "}
    assert any(row.startswith(list_id) and row.endswith("Newsletter subscribers") for row in rows)

    assert segments.returncode == 0, segments.stderr
    assert json.loads(segments.stdout) == [{"segment_id": segment_id, "title": "Engaged readers"}]

    assert fields.returncode == 0, fields.stderr
    by_name = {f["name"]: f["field_type"] for f in json.loads(fields.stdout)}
    assert by_name["Loyalty Points"] == "integer"
    assert by_name["Tier"] == "string"
    assert_key_absent(sandbox.api_key, ping, lists_json, lists_table, segments, fields)


def test_export_from_flags_reports_rejections_and_exits_1(sandbox: Sandbox, tmp_path: Path) -> None:
    source = write_csv(
        tmp_path / "customers.csv",
        [
            {"email": "Grace.Hopper@Example.com", "first": "Grace", "points": "120"},
            {"email": "not-an-email", "first": "Nobody", "points": "3"},
            {"email": "grace.hopper@example.com", "first": "Grace again", "points": "5"},
            {"email": "alan@example.org", "first": "Alan", "points": "lots"},
            {"email": "edsger@example.net", "first": "Edsger", "points": "42"},
        ],
    )
    report_path, rejections_path = tmp_path / "report.json", tmp_path / "rejected.csv"
    result = run(
        "export",
        str(source),
        "--segment",
        "CLI flags test",
        "--email-column",
        "email",
        "--field",
        "FirstName=first",
        "--custom",
        "Loyalty Points:integer=points",
        "--base-url",
        sandbox.url,
        "--report",
        str(report_path),
        "--rejections",
        str(rejections_path),
        "--json",
        key=sandbox.api_key,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(report_path.read_text(encoding="utf-8")) == report
    assert (report["total_rows"], report["exported"]) == (5, 2)
    assert {r["reason"] for r in report["rejected"]} == {"invalid_email", "duplicate_email", "invalid_value"}
    with rejections_path.open(encoding="utf-8", newline="") as fh:
        assert sorted(int(r["row"]) for r in csv.DictReader(fh)) == [2, 3, 4]

    (list_id,) = [lid for lid, title in sandbox.lists if title == "CLI flags test"]
    assert sandbox.list_members(list_id) == {"grace.hopper@example.com", "edsger@example.net"}
    grace = sandbox.contacts["grace.hopper@example.com"]
    assert grace["FirstName"] == "Grace"
    assert {"kind": "Loyalty Points", "value": 120} in [
        {"kind": f["kind"], "value": f["value"]} for f in grace["custom_fields"]
    ]
    assert_key_absent(sandbox.api_key, result)


def test_export_with_mapping_file_and_key_file_exits_0(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "segment.jsonl"
    source.write_text(
        "\n".join(json.dumps({"mail": f"user{i}@example.com", "city": "Oslo"}) for i in range(150)) + "\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"email": "mail", "fields": {"MailingCity": "city"}}), encoding="utf-8")
    key_file = tmp_path / "key"
    key_file.write_text(sandbox.api_key, encoding="utf-8")
    result = run(
        "export",
        str(source),
        "--segment",
        "CLI mapping test",
        "--mapping",
        str(mapping),
        "--base-url",
        sandbox.url,
        "--api-key-file",
        str(key_file),
        "--rate",
        "1000",
    )
    assert result.returncode == 0, result.stderr
    assert "150 rows: 150 exported" in result.stdout
    (list_id,) = [lid for lid, title in sandbox.lists if title == "CLI mapping test"]
    assert len(sandbox.list_members(list_id)) == 150
    assert sandbox.contacts["user149@example.com"]["MailingCity"] == "Oslo"


def test_dry_run_needs_no_key_and_writes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", [{"email": f"dry{i}@example.com"} for i in range(3)])
    requests_before = len(sandbox.requests)
    result = run(
        "export", str(source), "--segment", "Dry", "--email-column", "email", "--base-url", sandbox.url,
        "--dry-run", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["exported"] == 3
    assert len(sandbox.requests) == requests_before
    assert "Dry" not in [title for _, title in sandbox.lists]


def test_export_sandbox_flag_exports_into_a_private_sandbox(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", [{"email": "try@example.com"}, {"email": ""}])
    result = run("export", str(source), "--segment", "Trial", "--email-column", "email", "--sandbox")
    assert result.returncode == 1, result.stderr
    # stderr is not a terminal here, so no progress bar: the note is all there is.
    (note,) = result.stderr.splitlines()
    assert note.startswith("--sandbox: exporting into a local in-process sandbox")
    assert "2 rows: 1 exported" in result.stdout
    assert "missing_email 1" in result.stdout


def test_guard_rails_exit_3_until_forced(sandbox: Sandbox, tmp_path: Path) -> None:
    everyone = write_csv(tmp_path / "all.csv", [{"email": f"member{i}@example.com"} for i in range(10)])
    two_left = write_csv(tmp_path / "few.csv", [{"email": f"member{i}@example.com"} for i in range(2)])
    empty = tmp_path / "empty.csv"
    empty.write_text("email\n", encoding="utf-8")
    common = ("--segment", "Guarded", "--email-column", "email", "--base-url", sandbox.url, "--rate", "1000",
              "--state", str(tmp_path / "exports.db"))  # fmt: skip

    first = run("export", str(everyone), *common, key=sandbox.api_key)
    assert first.returncode == 0, first.stderr
    (list_id,) = [lid for lid, title in sandbox.lists if title == "Guarded"]
    assert len(sandbox.list_members(list_id)) == 10

    emptied = run("export", str(empty), *common, key=sandbox.api_key)
    assert emptied.returncode == 3
    assert "--force" in assert_one_error_line(emptied)

    mass_removal = run("export", str(two_left), *common, "--on-leave", "remove", key=sandbox.api_key)
    assert mass_removal.returncode == 3
    assert "--force" in assert_one_error_line(mass_removal)
    assert len(sandbox.list_members(list_id)) == 10  # the guard rails wrote nothing

    forced = run(
        "export", str(two_left), *common, "--on-leave", "remove", "--force", "--json", key=sandbox.api_key
    )
    assert forced.returncode == 0, forced.stderr
    forced_report = json.loads(forced.stdout)
    assert forced_report["removed"] == 8
    assert (forced_report["exported"], forced_report["unchanged"]) == (0, 2)  # the state knew them
    assert sandbox.list_members(list_id) == {"member0@example.com", "member1@example.com"}
    assert_key_absent(sandbox.api_key, first, emptied, mass_removal, forced)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_gets_a_progress_bar(tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    source = write_csv(tmp_path / "s.csv", [{"email": f"p{i}@example.com"} for i in range(250)])
    controller, terminal = pty.openpty()
    # A sized terminal, as a real one is (tqdm draws nothing on a 0x0 one).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "autopilot_segments", "export", str(source), "--segment", "Bar",
             "--email-column", "email", "--sandbox"],
            stdout=subprocess.PIPE, stderr=terminal, env=command_env(None), text=True,
        )  # fmt: skip
        os.close(terminal)
        stdout, _ = process.communicate(timeout=60)
        screen = b""
        with contextlib.suppress(OSError):  # EIO once the child is gone and the buffer is drained
            while chunk := os.read(controller, 65536):
                screen += chunk
    finally:
        os.close(controller)
    assert process.returncode == 0
    assert "250 rows: 250 exported" in stdout
    # The file is read through before the export (so the total is known), then the bar fills up and
    # shows the outcomes so far.
    assert re.search(
        r"\rBar: 100%\|.*\| 250/250 \[.*exported=250, rejected=0\]", screen.decode("utf-8", "replace")
    )


def test_usage_errors_exit_2_with_one_line(sandbox: Sandbox, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", [{"email": "a@example.com"}])
    key_file = tmp_path / "key"
    key_file.write_text(sandbox.api_key, encoding="utf-8")
    conflicting, no_key, plain_flag = run_together(
        ("export", str(source), "--segment", "X", "--mapping", "m.json", "--email-column", "email",
         "--api-key-file", str(key_file)),
        ("ping", "--base-url", sandbox.url),
        ("ping", "--base-url", sandbox.url, "--api-key", sandbox.api_key),
    )  # fmt: skip
    assert conflicting.returncode == 2
    assert "--mapping cannot be combined with --email-column" in conflicting.stderr

    assert no_key.returncode == 2
    assert "AUTOPILOT_API_KEY" in assert_one_error_line(no_key)

    assert plain_flag.returncode == 2
    assert "there is no --api-key option" in plain_flag.stderr
    assert_key_absent(sandbox.api_key, conflicting, no_key, plain_flag)


def test_a_key_file_saved_with_a_byte_order_mark_works(sandbox: Sandbox, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    # Windows Notepad's "UTF-8 with BOM", and a CRLF line end.
    key_file.write_bytes(b"\xef\xbb\xbf" + sandbox.api_key.encode() + b"\r\n")
    result = run("ping", "--api-key-file", str(key_file), "--base-url", sandbox.url)
    assert result.returncode == 0, result.stderr
    assert_key_absent(sandbox.api_key, result)


def test_wrong_key_exits_4_and_the_key_is_never_printed(sandbox: Sandbox) -> None:
    plain, debug = run_together(
        ("lists", "--base-url", sandbox.url), ("ping", "--base-url", sandbox.url, "--debug"), key=WRONG_KEY
    )
    assert plain.returncode == 4
    assert "401" in assert_one_error_line(plain)

    assert debug.returncode == 4
    assert "Traceback" in debug.stderr  # --debug shows it...
    assert "DEBUG" in debug.stderr  # ...and logs the requests
    assert_key_absent(WRONG_KEY, plain, debug)


def test_debug_logging_of_a_successful_run_hides_the_key(sandbox: Sandbox) -> None:
    result = run("ping", "--base-url", sandbox.url, "--debug", key=sandbox.api_key)
    assert result.returncode == 0, result.stderr
    assert "GET /v1/account" in result.stderr or "/account" in result.stderr
    assert_key_absent(sandbox.api_key, result)


def test_unreachable_api_exits_5(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    # The socket is closed now: nothing listens on that port.
    result = run(
        "ping", "--base-url", f"http://127.0.0.1:{closed_port}/v1", "--max-retries", "0", "--timeout", "2",
        key=WRONG_KEY,
    )  # fmt: skip
    assert result.returncode == 5
    assert_one_error_line(result)
    assert_key_absent(WRONG_KEY, result)


def test_demo_exports_the_sample_and_says_where_the_rejections_went(tmp_path: Path) -> None:
    rejections_jsonl = tmp_path / "rejected.jsonl"
    human, as_json = run_together(("demo",), ("demo", "--json", "--rejections", str(rejections_jsonl)))
    # The sample deliberately holds bad rows: a correct demo finishes with rejections, says they are on
    # purpose, and exits 0 (it did what it set out to do; `set -e` scripts and CI may run it).
    assert human.returncode == 0, human.stderr
    assert "The rejections are on purpose" in human.stdout
    # ... and says what they illustrate: each kind of bad row the sample holds, and the exit code.
    assert "missing, invalid and duplicate emails and non-numeric loyalty points" in human.stdout
    assert "a real export with rejected rows exits 1" in human.stdout
    assert human.stderr == ""  # stderr is not a terminal: no progress display of any kind
    assert "Segment 'VIP customers'" in human.stdout
    assert "3,000 rows:" in human.stdout
    written = [line for line in human.stdout.splitlines() if "rejected rows written to" in line]
    assert len(written) == 1
    path = Path(written[0].rsplit(" to ", 1)[1])
    with path.open(encoding="utf-8", newline="") as fh:
        rejected = list(csv.DictReader(fh))
    assert int(written[0].split()[0].replace(",", "")) == len(rejected) > 0
    assert f"{len(rejected):,} rejected" in human.stdout

    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert "The rejections are on purpose" in as_json.stderr
    assert report["segment"] == "VIP customers"
    assert report["total_rows"] == report["exported"] + report["unchanged"] + len(report["rejected"])
    assert len(report["rejected"]) == len(rejected)  # the same sample, the same outcome
    assert len(rejections_jsonl.read_text(encoding="utf-8").splitlines()) == len(report["rejected"])
    assert "rejected rows written to" in as_json.stderr  # notes leave stdout clean for the JSON


def test_sandbox_command_serves_prints_its_key_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    key_file = tmp_path / "sandbox.key"
    env = {name: value for name, value in os.environ.items() if name != KEY_ENV}
    server = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments", "sandbox", "--json", "--api-key-file", str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        banner = json.loads(server.stdout.readline())
        assert key_file.read_text(encoding="utf-8").strip() == banner["api_key"]
        pinged = run("ping", "--base-url", banner["url"], "--api-key-file", str(key_file))
        assert pinged.returncode == 0, pinged.stderr
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_malformed_record_deep_in_the_file_stops_the_export_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    lines = ["email,name", *(f"early{i}@example.com,N" for i in range(300))]
    lines[251] = "bad@example.com,an unquoted, comma"  # three batches of good rows come first
    source = tmp_path / "broken.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(
        "export", str(source), "--segment", "Half-written?", "--email-column", "email", "--base-url",
        sandbox.url, "--rate", "1000", key=sandbox.api_key,
    )  # fmt: skip
    assert result.returncode == 2
    assert "early0@example.com" not in sandbox.contacts
    assert "Half-written?" not in [title for _, title in sandbox.lists]
    line = assert_one_error_line(result)
    assert "line 252" in line
    assert "nothing was sent" in line


def test_an_export_whose_rows_fail_exits_5_and_keeps_its_report(tmp_path: Path) -> None:
    source = write_csv(tmp_path / "s.csv", [{"email": f"fail{i}@example.com"} for i in range(3)])
    report_path, rejections_path = tmp_path / "report.json", tmp_path / "rejected.csv"
    with Sandbox() as sandbox:  # its own: the faults must not reach the other tests
        # Every bulk upsert fails with a 500 and retries are off: the rows fail for a transient reason.
        sandbox.inject("500", times=50, method="POST", path_prefix="/contacts")
        result = run(
            "export", str(source), "--segment", "Failing", "--email-column", "email", "--base-url",
            sandbox.url, "--max-retries", "0", "--report", str(report_path), "--rejections",
            str(rejections_path), "--debug", key=sandbox.api_key,
        )  # fmt: skip
    assert result.returncode == 5, result.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["exported"] == 0
    assert {r["reason"] for r in report["rejected"]} == {"failed"}
    assert len(rejections_path.read_text(encoding="utf-8").splitlines()) == 1 + 3
    assert "DEBUG" in result.stderr
    assert_key_absent(sandbox.api_key, result)
    for written in (report_path, rejections_path):
        assert sandbox.api_key not in written.read_text(encoding="utf-8")


def test_the_base_url_comes_from_the_flag_else_the_environment(sandbox: Sandbox, tmp_path: Path) -> None:
    # argument > AUTOPILOT_BASE_URL > default, as for AutopilotClient(): the README's commands can be
    # pointed at a sandbox without editing anything.
    source = write_csv(tmp_path / "one.csv", [{"email": "ada@example.com"}])
    export = ("export", str(source), "--segment", "Base URL", "--email-column", "email", "--no-progress")
    nowhere = "http://127.0.0.1:9/v1"  # nothing listens there
    env = {**command_env(sandbox.api_key), "AUTOPILOT_BASE_URL": sandbox.url}
    from_environment = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *export],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert from_environment.returncode == 0, from_environment.stderr
    env["AUTOPILOT_BASE_URL"] = nowhere
    from_flag = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *export, "--base-url", sandbox.url],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert from_flag.returncode == 0, from_flag.stderr
    assert [title for _id, title in sandbox.lists].count("Base URL") == 1
    unreachable = subprocess.run(
        [sys.executable, "-m", "autopilot_segments", "ping", "--max-retries", "0", "--timeout", "2"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert unreachable.returncode == 5
    assert "127.0.0.1:9" in unreachable.stderr  # the environment's URL was the one tried
