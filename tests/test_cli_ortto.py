"""`--destination ortto`: the same commands, run as real subprocesses against an Ortto sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from autopilot_segments.sandbox import OrttoSandbox

KEY_ENVS = ("AUTOPILOT_API_KEY", "ORTTO_API_KEY", "ORTTO_BASE_URL", "ORTTO_REGION", "AUTOPILOT_BASE_URL")


@pytest.fixture
def sb() -> Iterator[OrttoSandbox]:
    with OrttoSandbox() as sandbox:
        sandbox.add_custom_field("Tier", "integer")
        sandbox.add_audience("VIP customers", tag="VIP")
        yield sandbox


def run(*args: str, key: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name not in KEY_ENVS}
    if key is not None:
        env["ORTTO_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def segment_file(tmp_path: Path, count: int, *, start: int = 0) -> Path:
    path = tmp_path / f"segment-{start}-{count}.csv"
    lines = ["email,first,tier"] + [f"P{i}@Example.com,First{i},{i % 3}" for i in range(start, start + count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


MAPPING = ["--email-column", "email", "--field", "FirstName=first", "--custom", "Tier:integer=tier"]


def test_ping_fields_and_lists_speak_ortto(sb: OrttoSandbox) -> None:
    common = ["--destination", "ortto", "--base-url", sb.url]
    ping = run("ping", *common, key=sb.api_key)
    assert ping.returncode == 0, ping.stderr
    assert f"OK: {sb.url} accepted the API key" in ping.stdout
    fields = run("fields", *common, "--json", key=sb.api_key)
    assert fields.returncode == 0, fields.stderr
    assert [(f["name"], f["field_id"]) for f in json.loads(fields.stdout)] == [("Tier", "int:cm:tier")]
    lists = run("lists", *common, key=sb.api_key)
    assert lists.returncode == 0, lists.stderr
    assert "VIP customers" in lists.stdout
    assert "VIP" in lists.stdout.split("VIP customers", 1)[1]
    segments = run("segments", *common, key=sb.api_key)
    assert segments.returncode == 2
    assert "Ortto has no smart segments" in segments.stderr
    for result in (ping, fields, lists, segments):
        assert sb.api_key not in result.stdout + result.stderr


def test_the_key_comes_from_ortto_api_key_or_a_key_file(sb: OrttoSandbox, tmp_path: Path) -> None:
    missing = run("ping", "--destination", "ortto", "--base-url", sb.url)
    assert missing.returncode == 2
    assert "ORTTO_API_KEY" in missing.stderr
    key_file = tmp_path / "ortto.key"
    key_file.write_text(sb.api_key + "\n", encoding="utf-8")
    from_file = run("ping", "--destination", "ortto", "--base-url", sb.url, "--api-key-file", str(key_file))
    assert from_file.returncode == 0, from_file.stderr
    wrong = run("ping", "--destination", "ortto", "--base-url", sb.url, key="pk-" + "1" * 40)
    assert wrong.returncode == 4
    assert "1" * 40 not in wrong.stdout + wrong.stderr


def test_ortto_flags_without_the_ortto_destination_are_usage_errors(tmp_path: Path) -> None:
    source = segment_file(tmp_path, 3)
    for flag in (["--region", "eu"], ["--tag", "x"], ["--create-fields"], ["--preserve-tags"]):
        result = run("export", str(source), "--segment", "S", *MAPPING, "--dry-run", *flag)
        assert result.returncode == 2
        assert "--destination ortto" in result.stderr


def test_export_tags_the_segment_and_removes_leavers_with_state(sb: OrttoSandbox, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    common = ["--destination", "ortto", "--base-url", sb.url, "--state", str(state), "--json"]
    first = run(
        "export", str(segment_file(tmp_path, 30)), "--segment", "VIP", *MAPPING, *common, key=sb.api_key
    )
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["exported"] == 30
    assert "VIP customers" in report["list_note"]
    assert len(sb.tagged("VIP")) == 30
    assert sb.people["p3@example.com"]["fields"]["int:cm:tier"] == 0
    assert all(
        "bol::p" not in p["fields"]
        for r in sb.requests
        if r.path == "/person/merge"
        for p in r.body["people"]
    )  # type: ignore[index]
    second = run(
        "export", str(segment_file(tmp_path, 20)), "--segment", "VIP", *MAPPING, *common,
        "--on-leave", "remove", key=sb.api_key,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["exported"], again["unchanged"], again["removed"]) == (0, 20, 10)
    assert sb.tagged("VIP") == {f"p{i}@example.com" for i in range(20)}
    assert len(sb.people) == 30  # leavers lose the tag, nobody is deleted


def test_export_with_a_tag_template_and_a_missing_field(sb: OrttoSandbox, tmp_path: Path) -> None:
    source = segment_file(tmp_path, 5)
    mapping = [*MAPPING, "--custom", "Score:integer=tier"]
    common = ["--destination", "ortto", "--base-url", sb.url, "--tag", "seg: {segment}"]
    refused = run("export", str(source), "--segment", "Gold", *mapping, *common, key=sb.api_key)
    assert refused.returncode == 2
    assert "Score" in refused.stderr
    assert not [r for r in sb.requests if r.path == "/person/merge"]
    created = run(
        "export", str(source), "--segment", "Gold", *mapping, *common, "--create-fields", key=sb.api_key
    )
    assert created.returncode == 0, created.stderr
    assert len(sb.tagged("seg: Gold")) == 5
    assert "Score" in sb.custom_fields.values()


def test_export_into_an_in_process_ortto_sandbox(tmp_path: Path) -> None:
    result = run(
        "export", str(segment_file(tmp_path, 12)), "--segment", "Trial", *MAPPING,
        "--destination", "ortto", "--sandbox", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["exported"] == 12
    assert "nothing is sent to Ortto" in result.stderr


def test_the_sandbox_command_serves_an_ortto_sandbox(tmp_path: Path) -> None:
    key_file = tmp_path / "ortto.key"
    env = {name: value for name, value in os.environ.items() if name not in KEY_ENVS}
    server = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments", "sandbox", "--destination", "ortto", "--json",
         "--api-key-file", str(key_file), "--merge-tags", "replace"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        banner = json.loads(server.stdout.readline())
        assert key_file.read_text(encoding="utf-8").strip() == banner["api_key"]
        assert banner["url"].endswith("/v1")
        source = segment_file(tmp_path, 4)
        exported = run(
            "export", str(source), "--segment", "S", "--email-column", "email", "--destination", "ortto",
            "--base-url", banner["url"], "--api-key-file", str(key_file), "--json", "--preserve-tags",
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert json.loads(exported.stdout)["exported"] == 4
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=10) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
