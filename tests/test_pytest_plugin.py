"""The pytest plugin as a user meets it: `pytest --fixtures` documents the sandbox fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_pytest_fixtures_shows_what_autopilot_sandbox_is(tmp_path: Path) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("autopilot_sandbox "))
    doc = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        doc.append(line.strip())
    text = " ".join(doc)
    assert "no docstring available" not in text
    assert "Sandbox" in text
    assert "autopilot_sandbox.url" in text
    assert "autopilot_sandbox.api_key" in text
