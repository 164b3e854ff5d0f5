"""CDM folder reading and date parsing throughput, side by side with the standard library.

    python benchmarks/bench_cdm.py [--rows 300000]

Writes one ten-column entity as a CDM folder (a model.json, and a manifest with a partition pattern)
in a temporary directory and counts the rows `read_cdm` yields, next to `csv.reader` reading the same
file (the floor: no dictionaries, no conversion). Each CSV style is measured: `QuoteAfterDelimiter`
(read by the csv module) and `QuoteAlways` (read by the reader's own tokenizer, since quotes count
anywhere in a field). Then the `date` custom field's converter, with and without explicit formats,
next to `datetime.fromisoformat` / `datetime.strptime` on the same texts.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from autopilot_segments._mapping.dates import date_converter
from autopilot_segments.sources import read_cdm

COLUMNS = ["email", "first", "last", "company", "city", "country", "points", "score", "vip", "joined"]
TYPES = ["string", "string", "string", "string", "string", "string", "int64", "double", "boolean", "dateTime"]


def write_rows(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        for i in range(count):
            writer.writerow(
                [
                    f"customer.{i}@example.com",
                    "Ann",
                    "Müller",
                    "Acme, Ltd" if i % 3 == 0 else "Globex",
                    "Oslo",
                    "NO",
                    i % 5000,
                    f"{i % 100}.5",
                    "true" if i % 2 else "false",
                    "2023-06-15T12:03:02.0000000Z",
                ]
            )


def model_folder(root: Path, count: int, csv_style: str) -> Path:
    (root / "Contact").mkdir(parents=True)
    write_rows(root / "Contact" / "part1.csv", count)
    partition = {
        "name": "part1",
        "location": "https://acct.dfs.core.windows.net/lake/Contact/part1.csv",
        "fileFormatSettings": {"$type": "CsvFormatSettings", "columnHeaders": False, "csvStyle": csv_style},
    }
    attributes = [{"name": n, "dataType": t} for n, t in zip(COLUMNS, TYPES, strict=True)]
    model = {
        "entities": [
            {"$type": "LocalEntity", "name": "Contact", "attributes": attributes, "partitions": [partition]}
        ]
    }
    (root / "model.json").write_text(json.dumps(model), encoding="utf-8")
    return root


def manifest_folder(root: Path, count: int) -> Path:
    (root / "Contact" / "2023").mkdir(parents=True)
    write_rows(root / "Contact" / "2023" / "part1.csv", count)
    schema = {
        "definitions": [
            {
                "entityName": "Contact",
                "hasAttributes": [{"name": n, "dataFormat": t} for n, t in zip(COLUMNS, TYPES, strict=True)],
            }
        ]
    }
    manifest = {
        "manifestName": "m",
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": "Contact",
                "entityPath": "Contact.cdm.json/Contact",
                "dataPartitionPatterns": [{"rootLocation": "Contact", "globPattern": "/**/*.csv"}],
            }
        ],
    }
    (root / "Contact.cdm.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / "m.manifest.cdm.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def rate(count_rows: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = count_rows()
    return rows, rows / (time.perf_counter() - started)


def count(items: Iterable[Any]) -> int:
    return sum(1 for _ in items)


def baseline(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        return count(csv.reader(fh))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300_000)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {args.rows:,} rows of {len(COLUMNS)} columns\n")
    print(f"{'reader':<58} {'rows/s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        after = model_folder(Path(tmp) / "after", args.rows, "CsvStyle.QuoteAfterDelimiter")
        always = model_folder(Path(tmp) / "always", args.rows, "CsvStyle.QuoteAlways")
        manifest = manifest_folder(Path(tmp) / "manifest", args.rows)
        cases = [
            (
                "csv.reader (stdlib baseline: lists, no conversion)",
                lambda: baseline(after / "Contact" / "part1.csv"),
            ),
            ("read_cdm model.json, CsvStyle.QuoteAfterDelimiter", lambda: count(read_cdm(after, "Contact"))),
            ("read_cdm model.json, CsvStyle.QuoteAlways", lambda: count(read_cdm(always, "Contact"))),
            ("read_cdm manifest + glob partition pattern", lambda: count(read_cdm(manifest, "Contact"))),
        ]
        for label, run in cases:
            rows, per_second = rate(run)
            assert rows == args.rows, (label, rows)
            print(f"{label:<58} {per_second:>10,.0f}")

    texts = [(datetime(2015, 1, 1) + timedelta(minutes=7 * i)) for i in range(args.rows)]
    iso = [t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z") for t in texts]
    us = [f"{t.month}/{t.day}/{t.year} {t.strftime('%I:%M:%S %p')}" for t in texts]
    default, dataverse = date_converter(), date_converter(["dataverse"])
    us_only = date_converter(["%m/%d/%Y %I:%M:%S %p"])
    print(f"\n{'dates':<58} {'values/s':>10}")
    date_cases: list[tuple[str, Callable[[], int]]] = [
        (
            "datetime.fromisoformat (stdlib baseline, ISO)",
            lambda: count(datetime.fromisoformat(t) for t in iso),
        ),
        ("date field, no formats (ISO)", lambda: count(default(t) for t in iso)),
        ("date field, formats=['dataverse'], ISO text", lambda: count(dataverse(t) for t in iso)),
        (
            "datetime.strptime (stdlib baseline, en-US)",
            lambda: count(datetime.strptime(t, "%m/%d/%Y %I:%M:%S %p") for t in us),
        ),
        ("date field, formats=['%m/%d/%Y %I:%M:%S %p'], en-US text", lambda: count(us_only(t) for t in us)),
        ("date field, formats=['dataverse'], en-US text", lambda: count(dataverse(t) for t in us)),
    ]
    for label, run in date_cases:
        _, per_second = rate(run)
        print(f"{label:<58} {per_second:>10,.0f}")


if __name__ == "__main__":
    main()
