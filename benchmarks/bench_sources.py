"""Rows per second of every segment reader, each side by side with its library's own plain iteration.

    .venv/bin/python benchmarks/bench_sources.py [--rows 200000] [--only csv,parquet] [--repeat 3]

Every reader reads the same synthetic segment (the sample's 10 columns plus an integer and a timestamp
column, `autopilot_segments._synthetic.generate_rows`), written once per format into a temporary
folder, and the rows are consumed one by one without further work. The baseline of each row is the
cheapest way its own library hands out Python rows (csv.DictReader, json.loads per line, to_pylist,
to_dicts, fetchall, openpyxl's values_only iteration, toLocalIterator): the price of the conventions
(None for missing values, plain Python values, streaming in batches) is the ratio between the two.

Adding a reader is one `Reader` entry in READERS: a name, how it is passed, and a function preparing
(ours, baseline) callables from the shared data. Readers whose library is missing are listed as skipped.
Excel and Spark read fewer rows by default (writing a workbook and starting a JVM are slow), see `rows`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import importlib.util
import json
import platform
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autopilot_segments._synthetic import generate_rows
from autopilot_segments.sources import (
    read_cdm,
    read_csv,
    read_excel,
    read_jsonl,
    read_parquet,
    read_sql,
    rows_of,
)

Rows = Callable[[], Iterable[Any]]


@dataclass
class Data:
    """The segment, built lazily in each shape a reader needs, shared by every reader."""

    folder: Path
    n: int
    cache: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        n = self.n
        key = f"rows{n}"
        if key not in self.cache:
            start = dt.datetime(2020, 1, 1)
            rows = []
            for i, row in enumerate(generate_rows(n, seed=1)):
                row["n"] = i
                row["joined"] = start + dt.timedelta(minutes=i)
                rows.append(row)
            self.cache[key] = rows
        return self.cache[key]  # type: ignore[no-any-return]

    def file(self, name: str, write: Callable[[Path, list[dict[str, Any]]], None]) -> Path:
        path = self.folder / f"{self.n}-{name}"
        if not path.exists():
            write(path, self.rows())
        return path

    def arrow(self) -> Any:
        key = f"arrow{self.n}"
        if key not in self.cache:
            import pyarrow as pa

            self.cache[key] = pa.Table.from_pylist(self.rows())
        return self.cache[key]

    def sized(self, n: int) -> Data:
        """The same data cache, for `n` rows."""
        return Data(self.folder, n, self.cache)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)


def write_xlsx(path: Path, rows: list[dict[str, Any]]) -> None:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Segment")
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    book.save(path)


# -- the readers -------------------------------------------------------------------------------------


def csv_reader(data: Data) -> tuple[Rows, Rows]:
    path = data.file("segment.csv", write_csv)

    def baseline() -> Iterable[Any]:
        with open(path, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)

    return (lambda: read_csv(path)), baseline


def gzip_csv_reader(data: Data) -> tuple[Rows, Rows]:
    path = data.file("segment.csv.gz", write_csv)

    def baseline() -> Iterable[Any]:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)

    return (lambda: read_csv(path)), baseline


def jsonl_reader(data: Data) -> tuple[Rows, Rows]:
    path = data.file("segment.jsonl", write_jsonl)

    def baseline() -> Iterable[Any]:
        with open(path, encoding="utf-8") as fh:
            yield from map(json.loads, fh)

    return (lambda: read_jsonl(path)), baseline


def parquet_reader(data: Data) -> tuple[Rows, Rows]:
    import pyarrow.parquet as pq

    path = data.file("segment.parquet", write_parquet)

    def baseline() -> Iterable[Any]:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            yield from batch.to_pylist()

    return (lambda: read_parquet(path)), baseline


def pandas_reader(data: Data) -> tuple[Rows, Rows]:
    frame = data.arrow().to_pandas()
    return (lambda: rows_of(frame)), (lambda: frame.to_dict("records"))


def polars_reader(data: Data) -> tuple[Rows, Rows]:
    import polars as pl

    frame = pl.from_arrow(data.arrow())
    return (lambda: rows_of(frame)), (lambda: frame.iter_rows(named=True))


def polars_lazy_reader(data: Data) -> tuple[Rows, Rows]:
    import polars as pl

    lazy = pl.scan_parquet(data.file("segment.parquet", write_parquet))
    return (lambda: rows_of(lazy)), (lambda: lazy.collect().iter_rows(named=True))


def arrow_reader(data: Data) -> tuple[Rows, Rows]:
    table = data.arrow()
    return (lambda: rows_of(table)), (lambda: table.to_pylist())


def arrow_batch_reader(data: Data) -> tuple[Rows, Rows]:
    import pyarrow as pa

    table = data.arrow()
    batches = table.to_batches(max_chunksize=10_000)

    def reader() -> Any:  # one-shot: a new reader per read
        return pa.RecordBatchReader.from_batches(table.schema, batches)

    def baseline() -> Iterable[Any]:
        for batch in reader():
            yield from batch.to_pylist()

    return (lambda: rows_of(reader())), baseline


def arrow_dataset_reader(data: Data) -> tuple[Rows, Rows]:
    import pyarrow.dataset as pads

    dataset = pads.dataset(data.file("segment.parquet", write_parquet))

    def baseline() -> Iterable[Any]:
        for batch in dataset.to_batches():
            yield from batch.to_pylist()

    return (lambda: rows_of(dataset)), baseline


def duckdb_reader(data: Data) -> tuple[Rows, Rows]:
    import duckdb

    connection = duckdb.connect()
    connection.register("staged", data.arrow())
    connection.execute("CREATE TABLE segment AS SELECT * FROM staged")
    relation = connection.table("segment")

    def baseline() -> Iterable[Any]:
        names = relation.columns
        return (dict(zip(names, record, strict=True)) for record in relation.fetchall())

    return (lambda: rows_of(relation)), baseline


def write_sqlite(path: Path, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    with sqlite3.connect(path) as connection:
        connection.execute(f"CREATE TABLE segment ({', '.join(names)})")
        connection.executemany(
            f"INSERT INTO segment VALUES ({', '.join('?' * len(names))})",  # noqa: S608 - fixed names
            ([v.isoformat() if isinstance(v, dt.datetime) else v for v in row.values()] for row in rows),
        )
    connection.close()


def fetchall_dicts(connection: Any, query: str) -> Iterable[Any]:
    cursor = connection.cursor()
    cursor.execute(query)
    names = [d[0] for d in cursor.description]
    try:
        yield from (dict(zip(names, record, strict=True)) for record in cursor.fetchall())
    finally:
        cursor.close()


def sql_sqlite_reader(data: Data) -> tuple[Rows, Rows]:
    connection = sqlite3.connect(data.file("segment.sqlite", write_sqlite))
    query = "SELECT * FROM segment"
    return (lambda: read_sql(query, connection)), (lambda: fetchall_dicts(connection, query))


def cursor_sqlite_reader(data: Data) -> tuple[Rows, Rows]:
    connection = sqlite3.connect(data.file("segment.sqlite", write_sqlite))
    query = "SELECT * FROM segment"
    return (lambda: rows_of(connection.execute(query))), (lambda: fetchall_dicts(connection, query))


def sql_alchemy_reader(data: Data) -> tuple[Rows, Rows]:
    import sqlalchemy

    path = data.file("segment.sqlite", write_sqlite)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    query = "SELECT * FROM segment"

    def baseline() -> Iterable[Any]:
        with engine.connect() as connection:
            yield from (dict(row) for row in connection.execute(sqlalchemy.text(query)).mappings())

    return (lambda: read_sql(query, engine)), baseline


def sql_duckdb_reader(data: Data) -> tuple[Rows, Rows]:
    import duckdb

    connection = duckdb.connect()
    connection.register("staged", data.arrow())
    connection.execute("CREATE TABLE segment AS SELECT * FROM staged")
    query = "SELECT * FROM segment"
    return (lambda: read_sql(query, connection)), (lambda: fetchall_dicts(connection, query))


def excel_reader(data: Data) -> tuple[Rows, Rows]:
    import openpyxl

    path = data.file("segment.xlsx", write_xlsx)

    def baseline() -> Iterable[Any]:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = book["Segment"].iter_rows(values_only=True)
            names = next(rows)
            yield from (dict(zip(names, values, strict=True)) for values in rows)
        finally:
            book.close()

    return (lambda: read_excel(path)), baseline


def spark_reader(data: Data) -> tuple[Rows, Rows]:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[1]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.read.parquet(str(data.file("segment.parquet", write_parquet))).repartition(8).cache()
    frame.count()  # materialise the cache: both sides read the same cached partitions

    def baseline() -> Iterable[Any]:
        return (row.asDict() for row in frame.toLocalIterator(prefetchPartitions=False))

    return (lambda: rows_of(frame)), baseline


def _cdm_folder(data: Data, kind: str) -> tuple[Path, Path]:
    """The segment's CSV (with its header row) as the one partition of a CDM folder of `kind`."""
    partition = data.file("segment.csv", write_csv)
    root = data.folder / f"{data.n}-cdm-{kind}"
    columns = list(data.rows()[0])
    traits = [
        {
            "traitReference": "is.partition.format.CSV",
            "arguments": [{"name": "columnHeaders", "value": "true"}],
        }
    ]
    if not root.exists():
        (root / "Segment").mkdir(parents=True)
        shutil.copyfile(partition, root / "Segment" / "part1.csv")  # a link out of the folder is refused
        if kind == "model":
            model = {
                "entities": [
                    {
                        "$type": "LocalEntity",
                        "name": "Segment",
                        "attributes": [{"name": c, "dataType": "string"} for c in columns],
                        "partitions": [{"name": "p", "location": "Segment/part1.csv", "cdm:traits": traits}],
                    }
                ]
            }
            (root / "model.json").write_text(json.dumps(model), encoding="utf-8")
        else:
            schema = {
                "definitions": [
                    {
                        "entityName": "Segment",
                        "hasAttributes": [{"name": c, "dataFormat": "String"} for c in columns],
                    }
                ]
            }
            manifest = {
                "manifestName": "m",
                "entities": [
                    {
                        "type": "LocalEntity",
                        "entityName": "Segment",
                        "entityPath": "Segment.cdm.json/Segment",
                        "dataPartitionPatterns": [
                            {"rootLocation": "Segment", "globPattern": "*.csv", "exhibitsTraits": traits}
                        ],
                    }
                ],
            }
            (root / "Segment.cdm.json").write_text(json.dumps(schema), encoding="utf-8")
            (root / "m.manifest.cdm.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root, partition


def cdm_model_reader(data: Data) -> tuple[Rows, Rows]:
    root, partition = _cdm_folder(data, "model")
    return (lambda: read_cdm(root, "Segment")), (lambda: _dict_reader(partition))


def cdm_manifest_reader(data: Data) -> tuple[Rows, Rows]:
    root, partition = _cdm_folder(data, "manifest")
    return (lambda: read_cdm(root, "Segment")), (lambda: _dict_reader(partition))


def _dict_reader(path: Path) -> Iterable[Any]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


@dataclass(frozen=True)
class Reader:
    name: str
    passed_as: str
    prepare: Callable[..., tuple[Rows, Rows]]
    baseline: str
    needs: str | None = None  # the module it needs; skipped when missing
    rows: int | None = None  # fewer rows than --rows (slow to write or to start)


READERS: list[Reader] = [
    Reader("csv", "read_csv(path)", csv_reader, "csv.DictReader"),
    Reader("csv.gz", "read_csv(path) (gzip)", gzip_csv_reader, "csv.DictReader over gzip.open"),
    Reader("jsonl", "read_jsonl(path)", jsonl_reader, "json.loads per line"),
    Reader("parquet", "read_parquet(path)", parquet_reader, "iter_batches + to_pylist", "pyarrow"),
    Reader("pandas", "export(df)", pandas_reader, 'df.to_dict("records")', "pandas"),
    Reader("polars", "export(df)", polars_reader, "df.iter_rows(named=True)", "polars"),
    Reader("polars-lazy", "export(scan_parquet(...))", polars_lazy_reader, "collect + iter_rows", "polars"),
    Reader("pyarrow", "export(table)", arrow_reader, "table.to_pylist()", "pyarrow"),
    Reader("arrow-reader", "export(RecordBatchReader)", arrow_batch_reader, "batch.to_pylist()", "pyarrow"),
    Reader("dataset", "export(dataset)", arrow_dataset_reader, "to_batches + to_pylist", "pyarrow"),
    Reader("duckdb", "export(relation)", duckdb_reader, "fetchall + dict(zip)", "duckdb"),
    Reader("cursor", "export(sqlite3 cursor)", cursor_sqlite_reader, "fetchall + dict(zip)"),
    Reader("sql-sqlite", "read_sql(query, sqlite3)", sql_sqlite_reader, "fetchall + dict(zip)"),
    Reader(
        "sql-alchemy",
        "read_sql(query, engine)",
        sql_alchemy_reader,
        "connection.execute().mappings()",
        "sqlalchemy",
    ),
    Reader("sql-duckdb", "read_sql(query, duckdb)", sql_duckdb_reader, "fetchall + dict(zip)", "duckdb"),
    Reader("cdm", "read_cdm(model.json folder)", cdm_model_reader, "csv.DictReader"),
    Reader("cdm-manifest", "read_cdm(manifest folder)", cdm_manifest_reader, "csv.DictReader"),
    Reader("excel", "read_excel(path)", excel_reader, "openpyxl values_only", "openpyxl", 20_000),
    Reader("spark", "export(spark_df)", spark_reader, "toLocalIterator + asDict", "pyspark", 100_000),
]


def consume(rows: Rows) -> tuple[int, float]:
    start = time.perf_counter()
    count = 0
    for count, _ in enumerate(rows(), 1):  # noqa: B007  the count is the result
        pass
    return count, time.perf_counter() - start


def best_of_both(ours: Rows, baseline: Rows, repeat: int) -> tuple[int, float, int, float]:
    """Best times of the two, their runs interleaved so that a busy machine slows both alike."""
    mine, theirs = [], []
    for _ in range(repeat):
        mine.append(consume(ours))
        theirs.append(consume(baseline))
    return mine[0][0], min(s for _, s in mine), theirs[0][0], min(s for _, s in theirs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many reads (default 3)")
    parser.add_argument("--only", help="comma-separated reader names (default: all)")
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    print(f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat}")
    header = f"{'reader':<12} {'passed as':<26} {'rows':>8} {'rows/s':>10}   {'baseline':<30} {'rows/s':>10}"
    print(f"{header} {'ratio':>6}")
    with tempfile.TemporaryDirectory(prefix="bench-sources-") as tmp:
        shared = Data(Path(tmp), args.rows)
        for reader in READERS:
            if wanted is not None and reader.name not in wanted:
                continue
            if reader.needs and importlib.util.find_spec(reader.needs) is None:
                print(f"{reader.name:<12} skipped: {reader.needs} is not installed")
                continue
            data = shared.sized(min(args.rows, reader.rows or args.rows))
            ours, baseline = reader.prepare(data)
            count, seconds, base_count, base_seconds = best_of_both(ours, baseline, args.repeat)
            assert count == base_count, (reader.name, count, base_count)
            print(
                f"{reader.name:<12} {reader.passed_as:<26} {count:>8,} {count / seconds:>10,.0f}   "
                f"{reader.baseline:<30} {base_count / base_seconds:>10,.0f} {base_seconds / seconds:>6.2f}"
            )


if __name__ == "__main__":
    main()
