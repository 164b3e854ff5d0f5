"""Polars DataFrames (sliced) and LazyFrames (collected in streaming batches)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ._common import Row
from ._text import _check_header


def _slice_rows(frames: Iterable[Any], label: str) -> Iterator[Row]:
    pl = sys.modules["polars"]
    floats = pl.selectors.float()
    for frame in frames:
        _check_header(list(frame.columns), label)
        # NaN is a value in Polars, a missing one everywhere else in this package.
        yield from frame.with_columns(floats.fill_nan(None)).to_dicts()


def frame_rows(frame: Any, batch_size: int) -> Iterator[Row]:
    """A Polars DataFrame, `batch_size` rows at a time (`iter_slices`: zero-copy views)."""
    return _slice_rows(frame.iter_slices(n_rows=batch_size), "Polars DataFrame")


def lazy_rows(frame: Any, batch_size: int) -> Iterator[Row]:
    """A Polars LazyFrame, run by the streaming engine and read a batch at a time.

    Polars versions without `collect_batches` collect the result once (streaming engine) and slice it.
    """
    if hasattr(frame, "collect_batches"):
        return _batches(frame, batch_size)
    return frame_rows(frame.collect(engine="streaming"), batch_size)


def _batches(frame: Any, batch_size: int) -> Iterator[Row]:
    batches = frame.collect_batches(chunk_size=batch_size, lazy=True)
    try:
        yield from _slice_rows(batches, "Polars LazyFrame")
    finally:
        stop = getattr(batches, "stop", None)
        if stop is not None:
            stop()
