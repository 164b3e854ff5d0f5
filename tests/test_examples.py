"""The examples run and do what they say: the script as a subprocess, the notebook's code cells in order."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from autopilot_segments import REJECTION_REASONS, ExportReport
from autopilot_segments.sources import sample_segment_path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUMMARY_ROWS = re.compile(
    r"^(?P<total>[\d,]+) rows: (?P<exported>[\d,]+) exported, (?P<unchanged>[\d,]+) unchanged, "
    r"(?P<rejected>[\d,]+) rejected",
    re.MULTILINE,
)


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_export_sample_script_exports_and_writes_the_rejections(tmp_path: Path) -> None:
    rejections = tmp_path / "rejected.csv"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "export_sample.py"), str(rejections)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    counts = SUMMARY_ROWS.search(result.stdout)
    assert counts is not None, result.stdout
    total, exported, unchanged, rejected = (
        number(counts[name]) for name in ("total", "exported", "unchanged", "rejected")
    )
    with sample_segment_path().open(encoding="utf-8", newline="") as fh:
        assert total == sum(1 for _ in csv.DictReader(fh))
    assert exported > 0
    assert total == exported + unchanged + rejected
    with rejections.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == rejected > 0
    assert {row["reason"] for row in rows} <= set(REJECTION_REASONS)
    assert f"{rejected:,} rejected rows written to {rejections}" in result.stdout


def load_notebook() -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads((EXAMPLES / "quickstart.ipynb").read_text(encoding="utf-8"))
    return notebook


def test_quickstart_notebook_is_valid_nbformat_4() -> None:
    notebook = load_notebook()
    assert notebook["nbformat"] == 4
    assert notebook["metadata"]["kernelspec"]["language"] == "python"
    ids = [cell["id"] for cell in notebook["cells"]]
    assert len(ids) == len(set(ids))
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code")
        assert isinstance(cell["metadata"], dict)
        assert all(isinstance(line, str) for line in cell["source"])
        if cell["cell_type"] == "code":
            # Committed without outputs, so the diff of a re-run notebook stays readable.
            assert cell["outputs"] == []
            assert cell["execution_count"] is None


def test_quickstart_notebook_cells_run_in_order_against_the_sandbox() -> None:
    namespace: dict[str, Any] = {"__name__": "__quickstart__"}
    code_cells = [cell for cell in load_notebook()["cells"] if cell["cell_type"] == "code"]
    assert len(code_cells) >= 4
    try:
        for number_, cell in enumerate(code_cells, 1):
            # Running the notebook's own code is the point of this test.
            source = compile("".join(cell["source"]), f"<quickstart cell {number_}>", "exec")
            exec(source, namespace)  # noqa: S102
    finally:
        if "sandbox" in namespace:
            namespace["sandbox"].stop()

    report = namespace["report"]
    assert isinstance(report, ExportReport)
    assert report.exported > 0
    assert report.rejected
    assert len(namespace["members"]) == report.exported  # the list holds exactly what was exported
    html = report._repr_html_()
    assert "<table" in html
    assert f"{report.exported:,}" in html
    frame = namespace["rejections"]
    assert len(frame) == len(report.rejected)
    assert set(frame["reason"]) <= set(REJECTION_REASONS)
    assert not namespace["sandbox"].running
