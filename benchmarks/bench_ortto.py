"""The Ortto export against its floor, side by side with a one-person-per-call loop.

    .venv/bin/python benchmarks/bench_ortto.py [--rates 10 30] [--seconds 60] [--latency 0.15]
                                               [--naive-people 300]

For each rate (requests/second, enforced by the Ortto sandbox and by the client's limiter), against one
sandbox per run with `--latency` seconds added to every answer:

- `Exporter(OrttoClient(...), mapping)` with its default concurrency: a tag per segment, merges of
  100 people (the audience read, the custom-field read and the merges all count);
- a naive loop doing one `person/merge` per person (what several CDPs' Ortto destinations do), run
  on `--naive-people` people and extrapolated to the export's people.

The floor is people / 100 / rate seconds: every request a full merge of 100, nothing else. The export
gets `--seconds` x rate x 100 people, so its floor is `--seconds` (about 1 minute by default).
Printed: people, seconds, people/s, share of the floor (floor / time: 100% is the floor), 429s seen,
and the most request starts the sandbox saw in any one second (never above the rate).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Iterator
from typing import Any

from autopilot_segments import CustomField, Exporter, FieldMapping, OrttoClient
from autopilot_segments._synthetic import generate_rows
from autopilot_segments.sandbox import OrttoSandbox

SEGMENT = "Benchmark segment"


def mapping() -> FieldMapping:
    return FieldMapping(
        email="email",
        fields={"FirstName": "first_name", "LastName": "last_name", "MailingCity": "city"},
        custom=[CustomField("Loyalty Points", "integer", source="loyalty_points")],
    )


def rows(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    return generate_rows(n, seed=seed)


def sandbox(rate: float, latency: float) -> OrttoSandbox:
    sb = OrttoSandbox(rate_limit=rate, latency=latency, record_bodies=False).start()
    sb.add_custom_field("Loyalty Points", "integer")
    sb.add_audience("Benchmark audience", tag=SEGMENT)
    return sb


def busiest_second(sb: OrttoSandbox) -> int:
    starts = sorted(r.at for r in sb.requests)
    best, low = 0, 0
    for high, at in enumerate(starts):
        while starts[low] <= at - 1.0:
            low += 1
        best = max(best, high - low + 1)
    return best


def run_export(people: int, rate: float, latency: float) -> dict[str, Any]:
    sb = sandbox(rate, latency)
    try:
        with OrttoClient(sb.api_key, base_url=sb.url, requests_per_second=rate) as client:
            exporter = Exporter(client, mapping(), max_profiles=None)
            began = time.perf_counter()
            report = exporter.export(rows(people), segment=SEGMENT)
            elapsed = time.perf_counter() - began
        assert report.exported == people, report.summary()
        assert len(sb.tagged(SEGMENT)) == people
        return {
            "people": people,
            "seconds": elapsed,
            "calls": report.api_calls,
            "rate_limited": sum(1 for r in sb.requests if r.status == 429),
            "max_per_second": busiest_second(sb),
        }
    finally:
        sb.stop()


def run_naive(people: int, rate: float, latency: float) -> dict[str, Any]:
    """One merge per person, one after the other, each waiting for its answer (as a naive client does)."""
    sb = sandbox(rate, latency)
    try:
        with OrttoClient(sb.api_key, base_url=sb.url, requests_per_second=rate) as client:
            fields = client.custom_fields()
            points = next(f.field_id for f in fields if f.name == "Loyalty Points")
            began = time.perf_counter()
            for row in rows(people):
                person = {
                    "str::email": str(row["email"]).lower(),
                    "str::first": row["first_name"],
                    "str::last": row["last_name"],
                    points: int(row["loyalty_points"]),
                }
                client.merge_people([{"fields": person, "tags": [SEGMENT]}])
            elapsed = time.perf_counter() - began
        return {
            "people": people,
            "seconds": elapsed,
            "rate_limited": sum(1 for r in sb.requests if r.status == 429),
        }
    finally:
        sb.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--seconds", type=float, default=60.0, help="the export's floor, in seconds")
    parser.add_argument("--latency", type=float, default=0.15, help="seconds added to every answer")
    parser.add_argument("--naive-people", type=int, default=300)
    args = parser.parse_args(argv)
    print(
        f"Python {platform.python_version()} on {platform.machine()}; sandbox latency {args.latency:g} s; "
        f"export floor {args.seconds:g} s per rate"
    )
    header = (
        f"{'run':<34} {'rate':>5} {'people':>8} {'seconds':>9} {'people/s':>9} {'floor':>8} "
        f"{'of floor':>9} {'429s':>5} {'max/s':>6}"
    )
    print(header)
    print("-" * len(header))
    for rate in args.rates:
        people = int(args.seconds * rate * 100)
        floor = people / 100 / rate
        export = run_export(people, rate, args.latency)
        print(
            f"{'Exporter -> Ortto (auto concurrency)':<34} {rate:>5g} {people:>8,} {export['seconds']:>9.1f} "
            f"{people / export['seconds']:>9,.0f} {floor:>8.1f} {floor / export['seconds']:>9.0%} "
            f"{export['rate_limited']:>5} {export['max_per_second']:>6}"
        )
        naive = run_naive(args.naive_people, rate, args.latency)
        per_person = naive["seconds"] / naive["people"]
        projected = per_person * people
        print(
            f"{'one merge per person (projected)':<34} {rate:>5g} {people:>8,} {projected:>9.1f} "
            f"{1 / per_person:>9,.0f} {floor:>8.1f} {floor / projected:>9.1%} {naive['rate_limited']:>5}"
        )
        print(
            f"  -> the export is {projected / export['seconds']:,.0f}x faster than one merge per person "
            f"(measured on {naive['people']:,} people: {naive['seconds']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
