"""Mapping + validation throughput and memory, side by side with a `json.dumps` baseline.

    .venv/bin/python benchmarks/bench_mapping.py [--rows 200000] [--memory-rows 1000000]

The mapping has 6 columns: email, FirstName, LastName, Company, an integer and a date custom field. Rows
are generated twice: as text (what csv.DictReader yields) and typed (what pandas' to_dict("records")
yields: int, float, datetime). The baseline serialises the same rows with json.dumps (datetimes via
`default=str`). Peak memory of map_rows over a million streamed rows is measured with tracemalloc
(Python allocations; the rows themselves are generated lazily, so it is the mapper's own footprint).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from autopilot_segments import CustomField, FieldMapping, MappedContact

FIRST = ["Ann", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivan", "Jo"]
LAST = ["Smith", "Jones", "Müller", "Nguyen", "García", "Okafor", "Rossi", "Kim", "Brown", "Silva"]
COMPANY = ["Acme Ltd", "Globex", "Initech", "Umbrella plc", "Hooli", ""]
EPOCH = datetime(2015, 1, 1)


def mapping() -> FieldMapping:
    return FieldMapping(
        email="email",
        fields={"FirstName": "first_name", "LastName": "last_name", "Company": "company"},
        custom=[
            CustomField("Loyalty Points", "integer", source="points"),
            CustomField("Signup Date", "date", source="signed_up"),
        ],
    )


def text_rows(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        day = EPOCH + timedelta(days=i % 3000)
        yield {
            "email": f"  Customer.{i}+news@Example{i % 97}.com ",
            "first_name": FIRST[i % 10],
            "last_name": LAST[(i // 10) % 10],
            "company": COMPANY[i % 6],
            "points": str(i % 5000),
            "signed_up": day.strftime("%Y-%m-%d") if i % 2 else day.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


def typed_rows(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {
            "email": f"customer.{i}@example{i % 97}.com",
            "first_name": FIRST[i % 10],
            "last_name": LAST[(i // 10) % 10],
            "company": COMPANY[i % 6] or float("nan"),
            "points": float(i % 5000),
            "signed_up": EPOCH + timedelta(days=i % 3000, seconds=i),
        }


def timed(work: Callable[[], int]) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(3):
        gc.collect()
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_throughput(name: str, rows: list[dict[str, Any]]) -> None:
    fm = mapping()

    def baseline() -> int:
        dumps = json.dumps
        total = 0
        for row in rows:
            total += len(dumps(row, default=str))
        return total

    def mapped() -> int:
        return sum(1 for item in fm.map_rows(rows) if type(item) is MappedContact)

    base_time, _ = timed(baseline)
    map_time, ok = timed(mapped)
    n = len(rows)
    print(
        f"{name:<6} {n:>9,} rows | json.dumps baseline {n / base_time:>10,.0f} rows/s | "
        f"map_rows {n / map_time:>10,.0f} rows/s ({ok:,} contacts) | ratio {map_time / base_time:.2f}x"
    )


def bench_memory(count: int) -> None:
    fm = mapping()
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    ok = sum(1 for item in fm.map_rows(text_rows(count)) if type(item) is MappedContact)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"memory {count:>9,} rows streamed through map_rows: peak {peak / 2**20:.1f} MiB traced "
        f"({ok:,} contacts; {elapsed:.1f} s under tracemalloc)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--memory-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"Python {platform.python_version()} on {platform.machine()}, one core")
    bench_throughput("text", list(text_rows(args.rows)))
    bench_throughput("typed", list(typed_rows(args.rows)))
    if args.memory_rows:
        bench_memory(args.memory_rows)


if __name__ == "__main__":
    main()
