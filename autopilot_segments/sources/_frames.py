"""pandas DataFrames and Parquet files, read one bounded batch at a time."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ._arrow import arrow_batch_rows
from ._common import _DEFAULT_CHUNK, Row, SourceError, _missing_extra
from ._text import _check_header, _existing_file

# --------------------------------------------------------------------------------------------- pandas


def from_dataframe(df: Any, *, chunk_size: int = _DEFAULT_CHUNK) -> Iterator[Row]:
    """Stream the rows of a pandas DataFrame as dicts keyed by column name (the index is ignored).

    NaN, NaT, None and pd.NA become None; numpy scalars become Python values; Timestamps become
    `datetime` (time zone kept), Timedeltas `timedelta`. Rows are converted `chunk_size` at a time, so
    the DataFrame is never copied into dicts all at once. Column names must be unique.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise _missing_extra("Reading a DataFrame", "pandas", "pandas") from exc
    if not isinstance(df, pd.DataFrame):
        raise SourceError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}")
    if chunk_size < 1:
        raise SourceError(f"chunk_size must be >= 1, got {chunk_size!r}")
    names = _check_header([str(c) for c in df.columns], "DataFrame")
    return _dataframe_rows(df, names, chunk_size, _column_converter(pd))


def _column_converter(pd: Any) -> Callable[[Any], list[Any]]:
    """A function turning one column (a Series) into a list of plain Python values."""
    import numpy as np

    timestamp, timedelta, na, nat = pd.Timestamp, pd.Timedelta, pd.NA, pd.NaT
    np_generic, np_datetime64, np_timedelta64 = np.generic, np.datetime64, np.timedelta64
    plain = (str, int, bool)

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind in plain:
            return value
        if kind is float:
            return None if math.isnan(value) else value
        if value is None or value is na or value is nat:
            return None
        if isinstance(value, timestamp):
            return value.to_pydatetime()
        if isinstance(value, timedelta):
            return value.to_pytimedelta()
        if isinstance(value, np_datetime64):
            return None if np.isnat(value) else timestamp(value).to_pydatetime()
        if isinstance(value, np_timedelta64):
            return None if np.isnat(value) else timedelta(value).to_pytimedelta()
        if isinstance(value, np_generic):
            item = value.item()
            return None if isinstance(item, float) and math.isnan(item) else item
        if isinstance(value, float):  # a float subclass
            return None if math.isnan(value) else float(value)
        return value

    def column_values(series: Any) -> list[Any]:
        dtype = series.dtype
        # Column by column, so the common numpy dtypes skip the per-value type dispatch.
        if isinstance(dtype, np.dtype) and dtype.kind in "biu":
            return list(series.tolist())  # never missing, already Python ints/bools
        if isinstance(dtype, np.dtype) and dtype.kind == "f":
            return [None if v != v else v for v in series.tolist()]  # v != v: NaN
        return [convert(v) for v in series.tolist()]

    return column_values


def _dataframe_rows(
    df: Any, names: list[str], chunk_size: int, column_values: Callable[[Any], list[Any]]
) -> Iterator[Row]:
    for start in range(0, len(df), chunk_size):
        chunk = df.iloc[start : start + chunk_size]
        if not names:
            yield from ({} for _ in range(len(chunk)))
            continue
        columns = [column_values(chunk.iloc[:, i]) for i in range(len(names))]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


# -------------------------------------------------------------------------------------------- Parquet


def read_parquet(
    path: str | os.PathLike[str], *, columns: Sequence[str] | None = None, batch_size: int = _DEFAULT_CHUNK
) -> Iterator[Row]:
    """Stream a Parquet file record batch by record batch (`batch_size` rows at a time).

    Values come out as Python objects (`to_pylist`): nulls are None, timestamps `datetime` (time zone
    kept), decimals `Decimal`. `columns` reads only those columns; an unknown one is a `SourceError`.
    """
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise _missing_extra("Reading Parquet", "pyarrow", "parquet") from exc
    if batch_size < 1:
        raise SourceError(f"batch_size must be >= 1, got {batch_size!r}")
    file = _existing_file(path)
    return _parquet_rows(pq, file, list(columns) if columns is not None else None, batch_size)


def _parquet_rows(pq: Any, file: Path, columns: list[str] | None, batch_size: int) -> Iterator[Row]:
    try:
        parquet_file = pq.ParquetFile(file)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError subclasses for a non-Parquet file
        raise SourceError(f"{file}: not a readable Parquet file: {exc}") from exc
    with parquet_file:
        if columns is not None:
            available = parquet_file.schema_arrow.names
            absent = [name for name in columns if name not in available]
            if absent:
                raise SourceError(
                    f"{file}: no column(s) {', '.join(map(repr, absent))}; "
                    f"the columns are {', '.join(available)}"
                )
        for batch in parquet_file.iter_batches(batch_size=batch_size, columns=columns):
            yield from arrow_batch_rows(batch, str(file))
