"""Spark DataFrames, streamed to the driver one partition at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ._common import Row
from ._text import _check_header


def spark_rows(frame: Any) -> Iterator[Row]:
    """A Spark DataFrame (classic or Spark Connect), partition by partition.

    `toLocalIterator(prefetchPartitions=False)` brings one partition at a time to the driver, so the
    driver holds at most one partition of the segment, never the whole of it. Each pass runs the
    DataFrame's plan again (cache it first if that is costly). Float NaN becomes None, like a null.
    """
    names = _check_header(list(frame.columns), "Spark DataFrame")
    floating = [
        i for i, field in enumerate(frame.schema.fields) if field.dataType.typeName() in ("double", "float")
    ]
    for row in frame.toLocalIterator(prefetchPartitions=False):
        values = list(row)
        for i in floating:
            value = values[i]
            if value is not None and value != value:  # NaN
                values[i] = None
        yield dict(zip(names, values, strict=True))
