"""pyarrow Tables, RecordBatches, RecordBatchReaders and Datasets, converted one record batch at a time.

The shared batch conversion (`arrow_batch_rows`) also serves Parquet and DuckDB relations, so every
Arrow-shaped source follows the same value conventions: nulls and float NaN are None, nanosecond
timestamps and durations are truncated to the microsecond `datetime`/`timedelta` can hold (never a
pandas `Timestamp`), decimals are `Decimal`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ._common import Row
from ._text import _check_header


def _pyarrow() -> Any:
    """The pyarrow module: already imported, since an Arrow object was passed in."""
    module = sys.modules.get("pyarrow")
    if module is None:  # Parquet files: the reader imported pyarrow.parquet, which loads pyarrow
        import pyarrow

        return pyarrow
    return module


def arrow_batch_rows(batch: Any, label: str) -> list[Row]:
    """The rows of one RecordBatch as plain-Python dicts (see the module docstring for the conventions)."""
    pa = _pyarrow()
    import pyarrow.compute as pc

    names = _check_header(list(batch.schema.names), label)
    columns = list(batch.columns)
    changed = False
    for i, field in enumerate(batch.schema):
        kind = field.type
        if pa.types.is_floating(kind):
            column = columns[i]
            if column.null_count < len(column) and pc.any(pc.is_nan(column)).as_py():
                columns[i] = pc.if_else(pc.is_nan(column), pa.scalar(None, kind), column)
                changed = True
        elif pa.types.is_timestamp(kind) and kind.unit == "ns":
            columns[i] = columns[i].cast(pa.timestamp("us", kind.tz), safe=False)
            changed = True
        elif pa.types.is_duration(kind) and kind.unit == "ns":
            columns[i] = columns[i].cast(pa.duration("us"), safe=False)
            changed = True
        elif pa.types.is_time64(kind) and kind.unit == "ns":
            columns[i] = columns[i].cast(pa.time64("us"), safe=False)
            changed = True
    if changed or names != batch.schema.names:
        batch = pa.RecordBatch.from_arrays(columns, names=names)
    rows: list[Row] = batch.to_pylist()
    return rows


def _batches_rows(batches: Iterable[Any], label: str) -> Iterator[Row]:
    for batch in batches:
        yield from arrow_batch_rows(batch, label)


def table_rows(table: Any, batch_size: int) -> Iterator[Row]:
    """A Table (or a single RecordBatch), `batch_size` rows at a time: no copy of the whole table."""
    if not hasattr(table, "to_batches"):  # a RecordBatch: zero-copy slices
        batches = (table.slice(start, batch_size) for start in range(0, table.num_rows, batch_size))
        return _batches_rows(batches, "pyarrow RecordBatch")
    return _batches_rows(table.to_batches(max_chunksize=batch_size), "pyarrow table")


def dataset_rows(dataset: Any, batch_size: int) -> Iterator[Row]:
    """A `pyarrow.dataset.Dataset`, scanned fragment by fragment, `batch_size` rows at a time."""
    return _batches_rows(dataset.to_batches(batch_size=batch_size), "pyarrow dataset")


def reader_rows(reader: Any) -> Iterator[Row]:
    """A RecordBatchReader (one-shot), batch by batch; the reader is closed when the rows end or stop."""
    try:
        yield from _batches_rows(reader, "pyarrow RecordBatchReader")
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
