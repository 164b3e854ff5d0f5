"""The command line's own output under `--debug`, and the rejections file a marketer opens (issue 9, 8 and 9).

Each case runs the real `autopilot-segments` command as a subprocess against a sandbox.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from autopilot_segments.sandbox import Sandbox

# An address in any form a log line could hold it: as is, %40-encoded, or encoded twice.
_ANY_EMAIL = re.compile(r"(@|%40|%2540)[a-z0-9-]+\.(com|org|example)", re.IGNORECASE)


def run(sb: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autopilot_segments", *args, "--base-url", sb.url, "--no-progress"],
        capture_output=True,
        text=True,
        env={**os.environ, "AUTOPILOT_API_KEY": sb.api_key},
        timeout=120,
        check=False,
    )


def write_csv(path: Path, emails: list[str]) -> Path:
    path.write_text("email,first\n" + "".join(f"{e},F\n" for e in emails), encoding="utf-8")
    return path


def test_debug_output_of_an_export_with_probes_adds_and_removals_holds_no_email(tmp_path: Path) -> None:
    emails = [f"Person.{i}@Example.com" for i in range(40)]
    state = tmp_path / "state.db"
    common = ["--segment", "VIP", "--email-column", "email", "--field", "FirstName=first", "--debug"]
    # An account whose bulk upserts ignore `_autopilot_list`: members are probed and added one by one.
    with Sandbox(bulk_list="ignored") as sb:
        list_id = sb.create_list("VIP")
        sb.add_contacts([{"Email": "earlier@example.org"}])
        sb.inject("503", times=2, path_prefix="/list/")  # urllib3 logs its retries of those paths too
        first = run(sb, "export", str(write_csv(tmp_path / "a.csv", emails)), *common, "--state", str(state))
        assert first.returncode == 0, first.stderr
        # The next run: five leave (removed from the list by email), one is new (added by email).
        second = run(
            sb, "export", str(write_csv(tmp_path / "b.csv", [*emails[5:], "new.one@example.org"])), *common,
            "--state", str(state), "--on-leave", "remove", "--max-removal-fraction", "1",
        )  # fmt: skip
        assert second.returncode == 0, second.stderr
        members = sb.list_members(list_id)
        paths = [r.raw_path for r in sb.requests]
        calls = [f"{r.method} {r.raw_path}" for r in sb.requests]
    assert members == {e.lower() for e in emails[5:]} | {"new.one@example.org"}
    # The runs really made calls whose paths hold an email (the membership probe on the existing list;
    # adds and removals go by contact id) and calls that add and remove members.
    assert any("/list/" in p and "/contact/" in p and "@" in p for p in paths)
    assert any(r.startswith("POST /v1/list/") for r in calls)
    assert any(r.startswith("DELETE /v1/list/") for r in calls)
    for result in (first, second):
        output = result.stdout + result.stderr
        assert "DEBUG" in result.stderr
        assert "urllib3" in result.stderr  # the transport's own lines were shown...
        leaks = [line for line in output.splitlines() if _ANY_EMAIL.search(line)]
        assert leaks == []
    assert "<email>" in first.stderr  # the probe's lines, with the address in the path replaced
    assert "DELETE" in second.stderr


FORMULAS = ["=cmd|' /C calc'!A0", "+1+cmd|' /C calc'!A0", "@SUM(1+1)", ' =HYPERLINK("http://x.example")']


def test_the_rejections_file_of_an_export_never_starts_a_formula(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "first"])
        writer.writerow(["ok@example.com", "F"])
        for value in FORMULAS:
            writer.writerow([value, "F"])  # not an address: rejected as invalid_email, value kept
    rejections, jsonl = tmp_path / "rejected.csv", tmp_path / "rejected.jsonl"
    with Sandbox() as sb:
        result = run(
            sb, "export", str(source), "--segment", "S", "--email-column", "email",
            "--rejections", str(rejections),
        )  # fmt: skip
        assert result.returncode == 1, result.stderr  # exported, some rows rejected
        assert "ok@example.com" in sb.contacts
    with rejections.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["email"] for row in rows] == ["'" + value.strip() for value in FORMULAS]
    assert {row["reason"] for row in rows} == {"invalid_email"}
    # JSON Lines stay verbatim (they are read by programs, not evaluated by spreadsheets).
    with Sandbox() as sb:
        result = run(
            sb, "export", str(source), "--segment", "S", "--email-column", "email", "--rejections", str(jsonl)
        )
        assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [line["email"] for line in lines] == [value.strip() for value in FORMULAS]
