"""Saved exports: splitting one source by a filter column, peak memory and speed against grouping in memory.

Run: .venv/bin/python benchmarks/bench_partition.py [--rows 1000000] [--values 10]

A CSV of N rows (email, first_name, last_name, points, tier with `--values` distinct tiers) is written to
a temporary folder. Each variant runs in its own subprocess, so peak RSS figures do not bleed into each
other; it notes its RSS, splits the file by `tier` and reads every segment's rows back once (what the
exporter does), and reports rows per second and the peak RSS growth (VmHWM, reset at the start; Linux):
- the saved exports' partition (`autopilot_segments._saved._rows.partition`): the source read once,
  each segment spooled to its own temporary file, one row at a time;
- baseline: the naive way, `dict[tier, list[row]]` in memory, then each list read.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _write_source(path: Path, rows: int, values: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "first_name", "last_name", "points", "tier"])
        for i in range(rows):
            writer.writerow([f"user{i}@example.com", f"First{i}", f"Last{i}", i % 1000, f"tier{i % values}"])


def _variant(name: str, source: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from autopilot_segments._saved._model import SegmentSpec
    from autopilot_segments._saved._rows import partition
    from autopilot_segments.sources import read_csv

    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    start_rss = _status_mb("VmRSS")
    started = time.perf_counter()
    seen = 0
    if name == "partition":
        spec = SegmentSpec(source=source, filter_column="tier")
        with partition(spec) as split:
            for value in split.values:
                seen += sum(1 for _ in split.rows(value))
    else:
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in read_csv(source):
            groups.setdefault(str(row["tier"]), []).append(row)
        for rows in groups.values():
            seen += sum(1 for _ in rows)
    elapsed = time.perf_counter() - started
    return {
        "variant": name,
        "rows": seen,
        "rows_per_s": seen / elapsed,
        "peak_growth_mb": _status_mb("VmHWM") - start_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--values", type=int, default=10)
    parser.add_argument("--variant", choices=["partition", "in-memory"], help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(_variant(args.variant, Path(args.source))))
        return
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "customers.csv"
        _write_source(source, args.rows, args.values)
        size = source.stat().st_size / 1e6
        print(f"{args.rows:,} rows, {args.values} tier values, {size:.0f} MB of CSV")
        print(f"{'variant':<12} {'rows/s':>10} {'peak RSS growth':>16}")
        for variant in ("partition", "in-memory"):
            out = subprocess.run(
                [sys.executable, __file__, "--variant", variant, "--source", str(source)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            result = json.loads(out)
            assert result["rows"] == args.rows, result
            print(f"{variant:<12} {result['rows_per_s']:>10,.0f} {result['peak_growth_mb']:>13,.1f} MB")


if __name__ == "__main__":
    main()
