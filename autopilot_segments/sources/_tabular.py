"""`rows_of`: whatever a caller passes as a segment, as an iterable of plain-Python rows.

The one dispatch every entry point (`Exporter.export`, `Exporter.plan`, `FieldMapping.map_rows`) goes
through. The kind of a tabular object is told from its class (module and name, along its MRO), so no
optional library is imported to find out: a pandas DataFrame can only arrive once pandas is loaded.
"""

from __future__ import annotations

import io
import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any, Final

from ._common import _DEFAULT_CHUNK, Row

Opener = Callable[[Any, int], Iterator[Row]]


def _pandas(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._frames import from_dataframe

    return from_dataframe(obj, chunk_size=batch_size)


def _polars_frame(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._polars import frame_rows

    return frame_rows(obj, batch_size)


def _polars_lazy(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._polars import lazy_rows

    return lazy_rows(obj, batch_size)


def _arrow_table(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._arrow import table_rows

    return table_rows(obj, batch_size)


def _arrow_dataset(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._arrow import dataset_rows

    return dataset_rows(obj, batch_size)


def _arrow_reader(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._arrow import reader_rows

    return reader_rows(obj)


def _duckdb_relation(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._dbapi import relation_rows

    return relation_rows(obj, batch_size)


def _spark(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._spark import spark_rows

    return spark_rows(obj)


def _cursor(obj: Any, batch_size: int) -> Iterator[Row]:
    from ._dbapi import cursor_rows

    return cursor_rows(obj, batch_size)


# (top-level module, class name) -> (description, opener, re-iterable, length known)
_KINDS: Final[dict[tuple[str, str], tuple[str, Opener, bool, bool]]] = {
    ("pandas", "DataFrame"): ("pandas DataFrame", _pandas, True, True),
    ("polars", "DataFrame"): ("Polars DataFrame", _polars_frame, True, True),
    ("polars", "LazyFrame"): ("Polars LazyFrame", _polars_lazy, True, False),
    ("pyarrow", "Table"): ("pyarrow Table", _arrow_table, True, True),
    ("pyarrow", "RecordBatch"): ("pyarrow RecordBatch", _arrow_table, True, True),
    ("pyarrow", "Dataset"): ("pyarrow Dataset", _arrow_dataset, True, False),
    ("pyarrow", "RecordBatchReader"): ("pyarrow RecordBatchReader", _arrow_reader, False, False),
    ("duckdb", "DuckDBPyRelation"): ("DuckDB relation", _duckdb_relation, True, False),
    ("_duckdb", "DuckDBPyRelation"): ("DuckDB relation", _duckdb_relation, True, False),
    ("pyspark", "DataFrame"): ("Spark DataFrame", _spark, True, False),
}

_SERIES_HINT: Final = "pass a frame: series.to_frame() (a Series is one column, not rows)"
_HINTS: Final[dict[tuple[str, str], str]] = {
    ("pandas", "Series"): _SERIES_HINT,
    ("polars", "Series"): _SERIES_HINT,
    ("pyarrow", "ChunkedArray"): "pass a pyarrow Table (pyarrow.table({...})), not one column",
    ("pyarrow", "Array"): "pass a pyarrow Table (pyarrow.table({...})), not one column",
    ("pyspark", "Column"): "pass the DataFrame (df.select(...)), not a Column",
    ("sqlalchemy", "Result"): "pass result.mappings() (rows keyed by column), or use sources.read_sql",
}

_ACCEPTED: Final = (
    "pass rows as an iterable of mappings (dicts keyed by column name), a pandas or Polars DataFrame, "
    "a Polars LazyFrame, a pyarrow Table/RecordBatchReader/Dataset, a DuckDB relation, a Spark "
    "DataFrame or a DB-API cursor after execute()"
)
_FILE_HINT: Final = "pass sources.open_source(path) (or read_csv/read_jsonl/read_parquet/read_excel)"

# The one-shot streams rows_of made, so a second rows_of on them (map_rows after export) is free.
_OURS: weakref.WeakSet[Iterator[Row]] = weakref.WeakSet()


class TabularRows(Iterable[Row]):
    """The rows of a re-iterable tabular object: each `iter()` streams them again, a batch at a time."""

    __slots__ = ("_batch_size", "_open", "_source", "kind")

    def __init__(self, kind: str, source: Any, opener: Opener, batch_size: int) -> None:
        self.kind = kind
        self._source = source
        self._open = opener
        self._batch_size = batch_size

    def __iter__(self) -> Iterator[Row]:
        return self._open(self._source, self._batch_size)

    def __repr__(self) -> str:  # never the data: rows may be personal data
        return f"<rows of a {self.kind}>"


class SizedTabularRows(TabularRows):
    """`TabularRows` whose row count is known without reading them (progress bars use it)."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._source)


def _kind_of(obj: Any) -> tuple[str, str] | None:
    for cls in type(obj).__mro__:
        key = (cls.__module__.partition(".")[0], cls.__name__)
        if key in _KINDS or key in _HINTS:
            return key
    return None


def rows_of(obj: object, *, batch_size: int = _DEFAULT_CHUNK) -> Iterable[Row]:
    """The rows of `obj` as an iterable of `dict`s with plain Python values, streamed `batch_size` at a time.

    Accepts an iterable of mappings (returned as is, or wrapped to check its first row), a pandas or
    Polars DataFrame, a Polars LazyFrame (streaming engine), a pyarrow Table, RecordBatch,
    RecordBatchReader or Dataset, a DuckDB relation, a Spark DataFrame (one partition at a time on the
    driver) or a DB-API cursor after `execute()`. Values follow the readers' conventions: missing values
    (null, NaN, NaT, NA) are None; numbers, strings, booleans, `Decimal`, `datetime`, `date` are plain
    Python objects, never numpy or pandas scalars.

    Frames, tables, datasets and relations give a re-iterable (each pass reads them again); readers,
    cursors and iterators give a one-shot iterator. Nothing is imported to recognise a kind. Anything
    else (a path, a string, bytes, a single dict, rows that are not mappings) is a `TypeError` saying
    what to pass instead.
    """
    if isinstance(obj, TabularRows):
        return obj
    if isinstance(obj, Iterator) and _is_ours(obj):
        return obj
    key = _kind_of(obj)
    if key is not None:
        if key in _HINTS:
            raise TypeError(f"cannot read rows from a {key[0]} {key[1]}: {_HINTS[key]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        kind, opener, reiterable, sized = _KINDS[key]
        if not reiterable:
            return _remember(opener(obj, batch_size))
        return (SizedTabularRows if sized else TabularRows)(kind, obj, opener, batch_size)
    _reject_non_rows(obj)
    if _is_cursor(obj):
        return _remember(_cursor(obj, batch_size))
    if isinstance(obj, Iterator):
        return _remember(_checked(obj))
    if isinstance(obj, Sequence):
        if len(obj) > 0:
            _check_row(obj[0], 1)
        return obj  # checked as far as it is cheap to
    assert isinstance(obj, Iterable)
    return _SizedCheckedIterable(obj) if isinstance(obj, Sized) else _CheckedIterable(obj)


def _is_ours(rows: Iterator[Any]) -> bool:
    try:
        return rows in _OURS
    except TypeError:  # an unhashable iterator class
        return False


def _remember(rows: Iterator[Row]) -> Iterator[Row]:
    _OURS.add(rows)
    return rows


def _is_cursor(obj: object) -> bool:
    return callable(getattr(type(obj), "fetchmany", None)) and hasattr(obj, "description")


def _reject_non_rows(obj: object) -> None:
    name = type(obj).__name__
    if isinstance(obj, (str, os.PathLike)):
        raise TypeError(f"got a {name} where rows were expected; to read a file, {_FILE_HINT}")
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"got {name} where rows were expected; write them to a file and {_FILE_HINT}, or parse "
            "them into rows first"
        )
    if isinstance(obj, io.IOBase):
        raise TypeError(f"got an open file ({name}) where rows were expected; {_FILE_HINT}")
    if isinstance(obj, Mapping):
        raise TypeError(
            f"got a single {name} where rows were expected; pass a list of rows ([row]), or for "
            "a mapping of columns to values, a DataFrame built from it"
        )
    if _is_cursor(obj):
        return
    if not isinstance(obj, Iterable):
        raise TypeError(f"got a {name} where rows were expected; {_ACCEPTED}")


def _check_row(row: object, number: int) -> None:
    if not isinstance(row, Mapping):
        raise TypeError(
            f"row {number} is a {type(row).__name__}, not a mapping of column names to values; {_ACCEPTED}"
        )


def _checked(rows: Iterator[Any]) -> Iterator[Row]:
    for first in rows:
        _check_row(first, 1)
        yield first
        break
    yield from rows


class _CheckedIterable(Iterable[Row]):
    """A re-iterable of rows whose first row is checked on each pass."""

    __slots__ = ("_rows",)

    def __init__(self, rows: Iterable[Any]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[Row]:
        return _checked(iter(self._rows))


class _SizedCheckedIterable(_CheckedIterable):
    """A `_CheckedIterable` keeping the `len()` of the rows it wraps."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self._rows)  # type: ignore[arg-type]
