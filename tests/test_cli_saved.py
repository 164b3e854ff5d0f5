"""`autopilot-segments run` and `check` over real HTTP against the sandbox: several exports and segments
(a SQL query and a filter column among them), exit codes (the worst of the runs), `--json` on success and
on every error class, `--dry-run` without a single request, and the lock (a second run is refused)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments._cli import ExitCode, main
from autopilot_segments.sandbox import FaultPlan, Sandbox

KEY_ENV = "TEST_CLI_SAVED_KEY"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox() as sb:
        monkeypatch.setenv(KEY_ENV, sb.api_key)
        monkeypatch.setenv("AUTOPILOT_BASE_URL", sb.url)
        yield sb


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rows = ["email,first_name,points,tier"]
    rows += [f"user{i}@example.com,User{i},{i},{('gold', 'silver')[i % 2]}" for i in range(8)]
    write(tmp_path, "customers.csv", "\n".join(rows) + "\n")
    write(
        tmp_path,
        "rejects.csv",
        "email,first_name,points,tier\nok@example.com,Ok,1,gold\nnot-an-email,X,2,gold\n",
    )
    write(tmp_path, "empty.csv", "email,first_name,points,tier\n")
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute("CREATE TABLE c (email TEXT, first_name TEXT, points INTEGER)")
        db.executemany(
            "INSERT INTO c VALUES (?, ?, ?)", [(f"sql{i}@example.com", f"S{i}", i) for i in range(6)]
        )
    db.close()
    write(tmp_path, "exports.toml", """\
        [connections.sandbox]
        api_key_env = "TEST_CLI_SAVED_KEY"
        requests_per_second = 1000
        max_retries = 0

        [databases.shop]
        url = "sqlite:///shop.db"

        [exports.weekly]
        [exports.weekly.mapping]
        email = "email"
        fields = { FirstName = "first_name" }
        custom = [{ name = "Points", type = "integer", source = "points" }]

        [[exports.weekly.segments]]
        name = "Everyone"
        source = "customers.csv"

        [[exports.weekly.segments]]
        name = "From SQL"
        query = "SELECT email, first_name, points FROM c WHERE points >= 3"
        database = "shop"

        [[exports.weekly.segments]]
        source = "customers.csv"
        filter_column = "tier"
        title = "{value} tier"

        [exports.with_rejects]
        mapping = { email = "email" }
        [[exports.with_rejects.segments]]
        name = "Some rejected"
        source = "rejects.csv"

        [exports.empty]
        mapping = { email = "email" }
        [[exports.empty.segments]]
        name = "Empty"
        source = "empty.csv"

        [exports.misspelt]
        mapping = { email = "Email" }
        [[exports.misspelt.segments]]
        name = "Misspelt"
        source = "customers.csv"
    """)  # fmt: skip
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_exports_several_exports_and_segments_and_exits_0(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "run", str(folder / "exports.toml"), "weekly")
    assert code == ExitCode.OK, err
    assert "== export 'weekly': 4 segments exported, exit 0" in out
    titles = {title: list_id for list_id, title in sandbox.lists}
    assert set(titles) == {"Everyone", "From SQL", "gold tier", "silver tier"}
    assert len(sandbox.list_members(titles["From SQL"])) == 3
    assert sandbox.list_members(titles["silver tier"]) == {f"user{i}@example.com" for i in (1, 3, 5, 7)}


def test_run_json_on_success_has_every_segments_report(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = cli(capsys, "run", str(folder / "exports.toml"), "weekly", "--json")
    data = json.loads(out)
    assert code == ExitCode.OK
    assert data["ok"] is True
    assert data["exit_code"] == 0
    segments = data["exports"]["weekly"]["segments"]
    assert {t: s["report"]["exported"] for t, s in segments.items()} == {
        "Everyone": 8, "From SQL": 3, "gold tier": 4, "silver tier": 4,
    }  # fmt: skip


def test_dry_run_plans_everything_without_a_single_request(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)  # and needs no key
    code, out, err = cli(
        capsys, "run", str(folder / "exports.toml"), "weekly", "with_rejects", "--dry-run", "--json"
    )
    data = json.loads(out)
    assert sandbox.requests == []
    assert code == ExitCode.REJECTED_ROWS, err
    assert data["dry_run"] is True
    assert data["exports"]["with_rejects"]["segments"]["Some rejected"]["report"]["dry_run"] is True


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["weekly"], ExitCode.OK),
        (["with_rejects"], ExitCode.REJECTED_ROWS),
        (["empty"], ExitCode.GUARDRAIL),
        (["misspelt"], ExitCode.USAGE),
        (["weekly", "with_rejects", "empty"], ExitCode.GUARDRAIL),  # the worst of the runs
        (["misspelt", "with_rejects"], ExitCode.USAGE),
    ],
)
def test_the_exit_code_is_the_worst_of_the_runs(
    sandbox: Sandbox,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    names: list[str],
    expected: ExitCode,
) -> None:
    code, _out, _err = cli(capsys, "run", str(folder / "exports.toml"), *names)
    assert code == expected


def error_of(data: dict[str, Any], export: str, segment: str) -> dict[str, Any]:
    error: dict[str, Any] = data["exports"][export]["segments"][segment]["error"]
    return error


def test_json_on_every_segment_error_class(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "customers.csv").rename(folder / "gone.csv")
    write(folder, "empty2.csv", "email\n")
    code, out, err = cli(capsys, "run", str(folder / "exports.toml"), "empty", "misspelt", "weekly", "--json")
    data = json.loads(out)
    assert code == ExitCode.GUARDRAIL
    assert data["ok"] is False
    assert data["exit_code"] == 3
    guard = error_of(data, "empty", "Empty")
    assert guard["code"] == "guardrail"
    assert guard["exit_code"] == 3
    assert "--force" in guard["message"]
    usage = error_of(data, "weekly", "Everyone")
    assert usage["code"] == "configuration"
    assert "customers.csv" in usage["message"]
    assert error_of(data, "misspelt", "Misspelt")["code"] == "configuration"
    assert data["exports"]["weekly"]["segments"]["From SQL"]["report"]["exported"] == 3
    assert err == ""  # under --json, errors are in the JSON document


def test_json_auth_and_api_failures(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "e" * 32)
    code, out, _err = cli(capsys, "run", str(folder / "exports.toml"), "weekly", "--json")
    data = json.loads(out)
    assert code == ExitCode.AUTH
    auth = error_of(data, "weekly", "Everyone")
    assert auth["code"] == "auth"
    assert "the API key was refused" in auth["message"]
    assert "e" * 32 not in out
    # Only the first segment's two reads (the preflight and the list look-up, made side by side) were
    # answered 401: the later segments were not tried with a refused key.
    assert sorted(r.path for r in sandbox.requests) == ["/contacts/custom_fields", "/lists"]

    monkeypatch.setenv(KEY_ENV, sandbox.api_key)
    sandbox.configure(faults=FaultPlan(rate=1.0, kinds=("500",), path_prefix="/lists"))
    code, out, _err = cli(capsys, "run", str(folder / "exports.toml"), "with_rejects", "--json")
    failure = error_of(json.loads(out), "with_rejects", "Some rejected")
    assert code == ExitCode.FAILURE
    assert failure["code"] == "failure"
    assert failure["exit_code"] == 5


def test_an_export_without_its_key_is_an_export_level_error(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    code, out, _err = cli(capsys, "run", str(folder / "exports.toml"), "weekly", "--json")
    error = json.loads(out)["exports"]["weekly"]["error"]
    assert code == ExitCode.USAGE
    assert error["code"] == "configuration"
    assert KEY_ENV in error["message"]
    assert sandbox.requests == []


def test_base_url_argument_beats_the_environment(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPILOT_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    code, _out, err = cli(
        capsys, "run", str(folder / "exports.toml"), "with_rejects", "--base-url", sandbox.url
    )
    assert code == ExitCode.REJECTED_ROWS, err
    assert len(sandbox.lists) == 1


def test_check_validates_fields_and_columns_without_writing(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = cli(capsys, "check", str(folder / "exports.toml"), "weekly", "with_rejects")
    assert code == ExitCode.OK
    assert "export 'weekly': OK" in out
    assert "custom field 'Points' (integer) is not in the account yet" in out
    sandbox.add_contacts([{"Email": "seed@example.org", "custom": {"string--Points": "x"}}])
    requests_before = len(sandbox.requests)
    code, out, _err = cli(capsys, "check", str(folder / "exports.toml"), "--json")
    data = json.loads(out)
    assert code == ExitCode.USAGE
    assert data["ok"] is False
    assert data["exports"]["with_rejects"]["ok"] is True
    assert any("the account defines it as string" in p for p in data["exports"]["weekly"]["problems"])
    assert any("'Email' (the email)" in p for p in data["exports"]["misspelt"]["problems"])
    assert any("has no rows" in p for p in data["exports"]["empty"]["problems"])
    assert [r.path for r in sandbox.requests[requests_before:]] == ["/contacts/custom_fields"]  # one call
    assert len(sandbox.lists) == 0


def test_an_unknown_export_name_or_a_bad_file_is_a_usage_error(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "run", str(folder / "exports.toml"), "weekyl")
    assert code == ExitCode.USAGE
    assert out == ""
    assert "no export 'weekyl'; did you mean 'weekly'?" in err
    write(folder, "bad.toml", "[exports.x]\nmaping = 1\n")
    code, _out, err = cli(capsys, "check", str(folder / "bad.toml"))
    assert code == ExitCode.USAGE
    assert "unknown key 'maping'; did you mean 'mapping'?" in err


def test_a_second_run_of_the_same_export_is_refused_while_the_first_runs(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox holds the first run's first request until the test opens the gate: no timing guesses.
    gate = threading.Event()
    with Sandbox(latency=1.0, sleep=lambda _seconds: gate.wait(60)) as sb:
        monkeypatch.setenv(KEY_ENV, sb.api_key)
        path = write(folder, "slow.toml", f"""\
            [connections.c]
            api_key_env = "{KEY_ENV}"
            base_url = "{sb.url}"
            requests_per_second = 1000
            [exports.slow]
            mapping = {{ email = "email" }}
            [[exports.slow.segments]]
            name = "Slow"
            source = "customers.csv"
        """)  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        env.pop("AUTOPILOT_BASE_URL", None)
        first = subprocess.Popen(
            [sys.executable, "-m", "autopilot_segments", "run", str(path), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while not sb.requests:  # the first run holds its lock before its first request
                assert time.monotonic() < deadline, "the first run never started"
                assert first.poll() is None, first.communicate()
                time.sleep(0.01)
            code, out, _err = cli(capsys, "run", str(path), "--json")
            error = json.loads(out)["exports"]["slow"]["error"]
            assert code == ExitCode.USAGE
            assert error["code"] == "configuration"
            assert f"export 'slow' is already running (process {first.pid})" in error["message"]
            code, _out, err = cli(capsys, "run", str(path))
            assert code == ExitCode.USAGE
            assert "already running" in err
            assert len(sb.requests) == 1  # the refused runs sent nothing
            gate.set()
            out_first, err_first = first.communicate(timeout=60)
        finally:
            gate.set()
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == ExitCode.OK, err_first
        assert json.loads(out_first)["exports"]["slow"]["segments"]["Slow"]["report"]["exported"] == 8
        code, _out, err = cli(capsys, "run", str(path))  # the lock went with the first run
        assert code == ExitCode.OK, err


@pytest.mark.parametrize("command", ["run", "check"])
def test_json_on_a_file_level_error_is_the_commands_error_object(
    folder: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    key = "0123456789abcdef0123456789abcdef"
    write(folder, "bad.toml", f'[connections.c]\napi_key = "{key}"\n[exports.x]\nmaping = 1\n')
    code, out, err = cli(capsys, command, str(folder / "bad.toml"), "--json")
    error = json.loads(out)["error"]
    assert code == ExitCode.USAGE
    assert error["code"] == "configuration"
    assert error["exit_code"] == 2
    assert "the API key must never be written into the export file" in error["message"]
    assert "did you mean 'mapping'?" in error["message"]
    assert key not in out + err
    code, out, _err = cli(capsys, command, str(folder / "exports.toml"), "nope", "--json")
    assert code == ExitCode.USAGE
    assert "no export 'nope'" in json.loads(out)["error"]["message"]


def test_the_progress_display_follows_the_segments_one_line_each() -> None:
    import io

    from autopilot_segments import Progress
    from autopilot_segments._cli.commands.saved import _SegmentProgress
    from autopilot_segments._cli.console import _Console

    stream = io.StringIO()
    snapshot = {"exported": 1, "rejected": 0, "api_calls": 1, "elapsed": 1.0, "rate": 1.0}
    with _SegmentProgress("line", _Console(io.StringIO(), stream)) as progress:
        progress.update(Progress(segment="A", rows_seen=1, **snapshot))
        progress.update(Progress(segment="A", rows_seen=2, **snapshot))
        progress.update(Progress(segment="B", rows_seen=1_500, **snapshot))
    lines = stream.getvalue().split("\n")
    assert [line.rsplit("\r", 1)[-1].split(":")[0] for line in lines if line] == ["A", "B"]
    assert "1,500 rows read" in lines[1]


def test_quiet_prints_one_line_per_segment(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "run", str(folder / "exports.toml"), "weekly", "with_rejects", "-q")
    assert code == ExitCode.REJECTED_ROWS, err
    assert out.splitlines() == [
        "Everyone: 8 rows, 8 exported, 0 unchanged, 0 rejected",
        "From SQL: 3 rows, 3 exported, 0 unchanged, 0 rejected",
        "gold tier: 4 rows, 4 exported, 0 unchanged, 0 rejected",
        "silver tier: 4 rows, 4 exported, 0 unchanged, 0 rejected",
        "Some rejected: 2 rows, 1 exported, 0 unchanged, 1 rejected",
    ]


@pytest.mark.parametrize(
    ("signum", "code", "by"),
    [(signal.SIGINT, "interrupted", "Ctrl-C"), (signal.SIGTERM, "terminated", "SIGTERM")],
)
def test_json_on_an_interrupted_run_is_the_interrupt_error_object(
    folder: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: str, by: str
) -> None:
    # The sandbox holds the run's first request (for good): the signal comes while it is in flight.
    gate = threading.Event()
    with Sandbox(latency=1.0, sleep=lambda _seconds: gate.wait(60)) as sb:
        path = write(folder, "slow.toml", f"""\
            [connections.c]
            api_key_env = "{KEY_ENV}"
            base_url = "{sb.url}"
            requests_per_second = 1000
            [exports.slow]
            mapping = {{ email = "email" }}
            [[exports.slow.segments]]
            name = "Slow"
            source = "customers.csv"
        """)  # fmt: skip
        env = dict(os.environ, PYTHONPATH=os.getcwd(), **{KEY_ENV: sb.api_key})
        env.pop("AUTOPILOT_BASE_URL", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "autopilot_segments", "run", str(path), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while not sb.requests:
                assert time.monotonic() < deadline, "the run never started"
                assert process.poll() is None, process.communicate()
                time.sleep(0.01)
            assert len(sb.requests) == 1  # the first read, held open
            process.send_signal(signum)
            try:
                out, err = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # the run waits for its held request to settle
                gate.set()
                out, err = process.communicate(timeout=60)
        finally:
            gate.set()
            if process.poll() is None:
                process.kill()
                process.wait()
    expected = ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED
    assert process.returncode == expected, err
    document = json.loads(out)
    assert set(document) == {"error"}, document
    error = document["error"]
    assert error["code"] == code
    assert error["exit_code"] == int(expected)
    assert f"interrupted by {by}" in error["message"]
    assert err.strip().splitlines() == [f"autopilot-segments: error: {error['message']}"]


def test_a_source_that_fails_mid_stream_is_a_segment_error_with_its_partial_report(
    sandbox: Sandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A saved export streams its file: a malformed line deep in it stops that segment with the report
    # of what Autopilot acknowledged before it (the CLI's `export` reads a file through first instead).
    lines = [json.dumps({"email": f"person{i}@example.com"}) for i in range(1, 251)]
    lines.append('{"email": ')  # line 251: not valid JSON
    write(folder, "broken.jsonl", "\n".join(lines) + "\n")
    write(folder, "broken.toml", f"""\
        [connections.c]
        api_key_env = "{KEY_ENV}"
        requests_per_second = 1000
        [exports.broken]
        mapping = {{ email = "email" }}
        [[exports.broken.segments]]
        name = "Broken"
        source = "broken.jsonl"
    """)  # fmt: skip
    code, out, err = cli(capsys, "run", str(folder / "broken.toml"), "--json")
    assert code == ExitCode.USAGE, err
    error = error_of(json.loads(out), "broken", "Broken")
    assert error["code"] == "configuration"
    assert "reading the rows failed after 250 rows" in error["message"]
    assert "line 251 is not valid JSON" in error["message"]
    assert error["message"].count("line 251") == 1  # the cause is not repeated
    report = error["report"]
    assert report["complete"] is False
    assert report["exported"] == 200  # two full batches were queued and acknowledged
    assert len(report["rejected"]) == 50
    assert len(sandbox.list_members(report["list_id"])) == 200
