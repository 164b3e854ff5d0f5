"""DB-API cursors (after `execute`) and DuckDB relations, fetched a batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._arrow import reader_rows
from ._common import Row, _missing_extra
from ._text import _check_header


def cursor_rows(cursor: Any, batch_size: int) -> Iterator[Row]:
    """A DB-API 2.0 cursor holding a result: column names from `description`, rows by `fetchmany`.

    A cursor is one-shot: its rows can be read once. Float NaN becomes None, like SQL NULL.
    """
    description = cursor.description
    if description is None:
        raise TypeError(
            "the DB-API cursor has no result set: call cursor.execute(query) before passing it "
            "(or use sources.read_sql)"
        )
    names = _check_header([str(column[0]) for column in description], "query result")
    return _fetch(cursor, names, batch_size)


def _fetch(cursor: Any, names: list[str], batch_size: int) -> Iterator[Row]:
    while True:
        batch = cursor.fetchmany(batch_size)
        if not batch:
            return
        for record in batch:
            values = [None if type(v) is float and v != v else v for v in record]
            yield dict(zip(names, values, strict=True))


def relation_rows(relation: Any, batch_size: int) -> Iterator[Row]:
    """A DuckDB relation, run once per pass and read as Arrow record batches (needs pyarrow)."""
    try:
        import pyarrow  # noqa: F401  the relation's reader is a pyarrow object
    except ImportError as exc:
        raise _missing_extra("Reading a DuckDB relation", "pyarrow", "duckdb") from exc
    # A relation turns unknown attributes into column projections, so look the methods up on the class.
    # The newer name first: duckdb >= 1.4 deprecates fetch_record_batch.
    for method in ("to_arrow_reader", "fetch_record_batch"):
        if callable(getattr(type(relation), method, None)):
            return _arrow_relation(relation, method, batch_size)
    raise TypeError(
        f"this DuckDB relation ({type(relation).__module__}.{type(relation).__name__}) has neither "
        "to_arrow_reader nor fetch_record_batch; pass relation.to_arrow_reader() instead"
    )


def _arrow_relation(relation: Any, method: str, batch_size: int) -> Iterator[Row]:
    reader = getattr(relation, method)(batch_size)
    yield from reader_rows(reader)
