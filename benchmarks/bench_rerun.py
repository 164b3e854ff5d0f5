"""Incremental re-runs: the first export of a segment against re-runs of it with an export state.

    .venv/bin/python benchmarks/bench_rerun.py [--contacts 100000] [--rate 20] [--latency 0.02]

One sandbox plays Autopilot with a rate limit (429 beyond it) and a small latency per request; the
client's limiter is set to the same rate. With one state file, in one process, side by side:

- first run: every contact is new (the list is created; bulk upserts of 100);
- re-run, unchanged: the same rows again (the baseline the target is measured against);
- re-run, 1% changed: the same rows, every 100th with a new `loyalty_points`;
- re-run, unchanged, `on_leave="remove"`: the two-pass export (spool + seen set) with nobody leaving.

Targets: an unchanged re-run makes at most 1% of the first run's API calls and takes at most 10% of its
time. A stateless re-run is not run: on an existing list whose contacts are all members already, its
membership probes are inconclusive and it adds every contact with one call each (about `contacts`
calls more than a first run; see docs/exporter.md), i.e. hours at 20 r/s for 100,000 contacts.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autopilot_segments import AutopilotClient, CustomField, Exporter, ExportReport, FieldMapping
from autopilot_segments._synthetic import generate_rows
from autopilot_segments.sandbox import Sandbox


def mapping() -> FieldMapping:
    return FieldMapping(
        email="email",
        fields={"FirstName": "first_name", "LastName": "last_name", "Company": "company"},
        custom=[CustomField("Loyalty Points", "integer", source="loyalty_points")],
    )


def rows(n: int, *, change_every: int = 0) -> Iterator[dict[str, Any]]:
    for i, row in enumerate(generate_rows(n, seed=7)):
        if change_every and i % change_every == 0:
            row = {**row, "loyalty_points": 1_000_000 + i}
        yield row


def run(exporter: Exporter, n: int, **options: Any) -> tuple[ExportReport, float]:
    started = time.perf_counter()
    report = exporter.export(rows(n, **options), segment="Benchmark re-runs")
    return report, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s (sandbox and client)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request in the sandbox")
    args = parser.parse_args()
    n = args.contacts
    print(f"Python {platform.python_version()}, {platform.machine()}; {n:,} contacts, ", end="")
    print(f"{args.rate:g} r/s, {args.latency:g} s latency", flush=True)

    results: list[tuple[str, ExportReport, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(rate_limit=args.rate, latency=args.latency, record_bodies=False) as sb,
    ):
        state = Path(tmp) / "exports.db"
        client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=args.rate)

        def exporter(**options: Any) -> Exporter:
            return Exporter(client, mapping(), max_profiles=None, state=state, **options)

        scenarios: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
            ("first run (all new)", {}, {}),
            ("re-run, unchanged", {}, {}),
            ("re-run, 1% changed", {}, {"change_every": 100}),
            ("re-run, unchanged, on_leave=remove", {"on_leave": "remove"}, {"change_every": 100}),
        ]
        for label, exporter_options, row_options in scenarios:
            print(f"running: {label} ...", file=sys.stderr, flush=True)
            report, elapsed = run(exporter(**exporter_options), n, **row_options)
            assert report.exported + report.unchanged == n, report.summary()
            results.append((label, report, elapsed))
        assert len(sb.list_members(results[0][1].list_id or "")) == len(sb.contacts) == n
        too_many = sum(1 for r in sb.requests if r.status == 429)
        state_mb = state.stat().st_size / 1e6

    first_calls, first_time = results[0][1].api_calls, results[0][2]
    print()
    print("| run | exported | unchanged | removed | API calls | of first run | time | of first run |")
    print("|---|---|---|---|---|---|---|---|")
    for label, report, elapsed in results:
        print(
            f"| {label} | {report.exported:,} | {report.unchanged:,} | {report.removed:,} | "
            f"{report.api_calls:,} | {report.api_calls / first_calls:.2%} | {elapsed:.2f} s | "
            f"{elapsed / first_time:.2%} |"
        )
    print()
    print(f"429s seen by the sandbox: {too_many}; state file: {state_mb:.1f} MB")
    unchanged = results[1]
    calls_ok = unchanged[1].api_calls <= 0.01 * first_calls
    time_ok = unchanged[2] <= 0.10 * first_time
    print(f"target: unchanged re-run <= 1% of the calls: {'met' if calls_ok else 'MISSED'}; ", end="")
    print(f"<= 10% of the time: {'met' if time_ok else 'MISSED'}")


if __name__ == "__main__":
    main()
