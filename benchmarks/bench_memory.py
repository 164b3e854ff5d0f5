"""Peak memory of `Exporter.plan()` and `Exporter.export()` over millions of rows, beside a baseline.

    .venv/bin/python benchmarks/bench_memory.py [--rows 3000000] [--export-rows 3000000]
        [--baseline PATH] [--skip-export] [--uncapped-export] [--only SCENARIO ...]

Every figure is the peak RSS (VmHWM) of a fresh process that generates its rows lazily (nothing is held
by the benchmark itself), before and after the run, in MiB. Scenarios:

- plan, default cap (100,000): every row mapped and checked, 2,900,000 `over_limit` rows to report;
- plan, no cap: the duplicate table holds every email;
- export, default cap, into a sandbox running in *another* process (its in-memory store does not count)
  with no rate limit and no latency: 1,000 bulk calls, 2,900,000 `over_limit` rows to report;
- with `--uncapped-export`: export of every row (30,000 bulk calls; several minutes).

`--baseline PATH` runs the same scenarios with the package found at PATH (e.g. a `git worktree` of an
earlier commit) and prints both columns; without it the baseline column is the same code with every
rejection kept in memory (`RejectionLog` bound lifted), which is how rejections were stored before they
could spill to disk.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM is reset by exec; ru_maxrss (the fallback) is not on Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(scenario: str, n: int, url: str, key: str, unbounded: bool) -> None:
    """One scenario in this fresh process; prints `before after seconds exported rejected spilled`."""
    from autopilot_segments import AutopilotClient, CustomField, Exporter, FieldMapping
    from autopilot_segments._synthetic import generate_rows

    if unbounded:
        from autopilot_segments import _rejection_log

        _rejection_log.IN_MEMORY_REJECTIONS = sys.maxsize  # the baseline: every rejection in memory

    mapping = FieldMapping(
        email="email",
        fields={"FirstName": "first_name", "LastName": "last_name", "Company": "company"},
        custom=[CustomField("Loyalty Points", "integer", source="loyalty_points")],
    )
    cap = None if scenario.endswith("uncapped") else 100_000
    client = AutopilotClient(key, base_url=url, requests_per_second=1000.0)
    exporter = Exporter(client, mapping, max_profiles=cap)
    before = peak_rss_mib()
    started = time.perf_counter()
    if scenario.startswith("plan"):
        report = exporter.plan(generate_rows(n, seed=7), segment="Memory")
    else:
        report = exporter.export(generate_rows(n, seed=7), segment="Memory")
    elapsed = time.perf_counter() - started
    after = peak_rss_mib()
    assert report.total_rows == n, report.total_rows
    rejected = sum(1 for _ in report.rejected)  # every rejection read back, from memory or disk
    assert rejected == len(report.rejected) == n - report.exported - report.unchanged
    spilled = getattr(report.rejected, "spilled", 0)
    print(f"{before:.1f} {after:.1f} {elapsed:.2f} {report.exported} {rejected} {spilled}")


def run_child(
    scenario: str, n: int, url: str, key: str, *, package: Path, unbounded: bool = False
) -> list[float]:
    command = [sys.executable, __file__, "--child", scenario, str(n), url, key]
    if unbounded:
        command.append("--unbounded")
    env = {**os.environ, "PYTHONPATH": str(package)}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout.split()
    return [float(x) for x in out]


_SERVE = """
import sys
from autopilot_segments.sandbox import Sandbox
# No request bodies kept: an uncapped export would otherwise hold every payload twice.
with Sandbox(record_bodies=False) as sb:
    print(sb.url, sb.api_key, flush=True)
    sys.stdin.read()  # serve until the benchmark closes stdin
"""


class SandboxProcess:
    """The sandbox in its own process, so its store of contacts is not in the measured process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SERVE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self._process.stdout is not None
        self.url, self.key = self._process.stdout.readline().split()

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows for the plans")
    parser.add_argument("--export-rows", type=int, default=3_000_000, help="rows for the exports")
    parser.add_argument("--baseline", type=Path, help="package root of the baseline (default: no spill)")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--no-baseline", action="store_true", help="run only this code (half the time)")
    parser.add_argument("--uncapped-export", action="store_true", help="also export every row (slow)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("plan", "plan uncapped", "export", "export uncapped"),
        help="run only these scenarios",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scenario, n, url, key = args.child
        child(scenario, int(n), url, key, args.unbounded)
        return

    scenarios = [("plan", args.rows), ("plan uncapped", args.rows)]
    if not args.skip_export:
        scenarios.append(("export", args.export_rows))
        if args.uncapped_export:
            scenarios.append(("export uncapped", args.export_rows))
    if args.only:
        scenarios = [
            (name, args.export_rows if name.startswith("export") else args.rows) for name in args.only
        ]
    baseline_name = f"baseline ({args.baseline})" if args.baseline else "baseline (no spill)"
    print(
        f"Python {platform.python_version()} on {platform.machine()}; peak RSS (VmHWM), MiB, before -> after"
    )
    header = (
        f"{'scenario':<16} {'rows':>10} {'exported':>9} {'spilled':>9} | {'this code':>22} | {baseline_name}"
    )
    print(header)
    print("-" * len(header))
    sandbox = SandboxProcess() if any(name.startswith("export") for name, _ in scenarios) else None
    try:
        for scenario, n in scenarios:
            needs_sandbox = scenario.startswith("export")
            url = sandbox.url if sandbox is not None and needs_sandbox else "http://127.0.0.1:9"
            key = sandbox.key if sandbox is not None and needs_sandbox else "0" * 32
            mine = run_child(scenario, n, url, key, package=ROOT)
            if args.no_baseline:
                base = [math.nan] * 3
            elif args.baseline:
                base = run_child(scenario, n, url, key, package=args.baseline)
            else:
                base = run_child(scenario, n, url, key, package=ROOT, unbounded=True)
            print(
                f"{scenario:<16} {n:>10,} {int(mine[3]):>9,} {int(mine[5]):>9,} | "
                f"{mine[0]:5.0f} -> {mine[1]:4.0f} in {mine[2]:6.1f} s | "
                f"{base[0]:5.0f} -> {base[1]:4.0f} in {base[2]:6.1f} s",
                flush=True,
            )
    finally:
        if sandbox is not None:
            sandbox.close()


if __name__ == "__main__":
    main()
