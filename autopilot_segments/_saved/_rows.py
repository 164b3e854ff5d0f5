"""A segment spec's rows: open the file or run the query, and split a source by its filter column.

A filter column splits one source into several segments. The source is read **once** (a query may be
expensive, and need not return the same rows twice), and each segment's rows are spooled to its own
temporary file (pickled one row at a time into a private folder, removed afterwards), so memory stays
flat however large the source and each segment is then streamed into the exporter like any other.
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final

from .._errors import ConfigurationError
from ._model import SegmentSpec

__all__ = ["MAX_FILTER_VALUES", "Partition", "open_rows", "partition"]

# Without a `values` list, more distinct values than this is far more likely the wrong column than
# hundreds of lists wanted (and would hold as many files open).
MAX_FILTER_VALUES: Final = 100


@contextlib.contextmanager
def open_rows(spec: SegmentSpec) -> Iterator[Iterator[Mapping[str, Any]]]:
    """The spec's rows, streamed; the file (or the database connection) closed however the block ends."""
    from ..sources import open_source, read_sql

    if spec.query is not None:
        assert spec.database is not None
        rows = read_sql(spec.query, spec.database.resolve_url())
    else:
        assert spec.source is not None
        rows = open_source(spec.source, entity=spec.entity, encoding=spec.encoding, delimiter=spec.delimiter)
    try:
        yield rows
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()


class Partition:
    """A source split by its filter column: `segments` (title -> spooled rows), in order."""

    def __init__(self, spec: SegmentSpec, folder: Path) -> None:
        self.spec = spec
        self._folder = folder
        self._files: dict[str, IO[bytes]] = {}
        self._paths: dict[str, Path] = {}
        self.rows_read = 0
        self.rows_without_segment = 0
        for value in spec.values or ():
            self._open(value)

    @property
    def values(self) -> list[str]:
        return list(self._paths)

    def rows(self, value: str) -> Iterator[dict[str, Any]]:
        """The rows spooled for `value`, in source order, one at a time."""
        with self._paths[value].open("rb") as fh:
            while True:
                try:
                    # Our own file, written by this process into a private folder a moment ago.
                    yield pickle.load(fh)  # noqa: S301
                except EOFError:
                    return

    def _open(self, value: str) -> IO[bytes]:
        path = self._folder / f"{len(self._paths)}.pickle"
        handle = path.open("wb")
        self._files[value] = handle
        self._paths[value] = path
        return handle

    def _add(self, value: str, row: Mapping[str, Any]) -> None:
        handle = self._files.get(value)
        if handle is None:
            if self.spec.values is not None:
                self.rows_without_segment += 1
                return
            if len(self._files) >= MAX_FILTER_VALUES:
                raise ConfigurationError(
                    f"the filter column {self.spec.filter_column!r} of {self.spec.describe} has more than "
                    f"{MAX_FILTER_VALUES} distinct values: is it the right column? List the segments "
                    "wanted with values = [...]"
                )
            handle = self._open(value)
        pickle.dump(dict(row), handle, protocol=pickle.HIGHEST_PROTOCOL)

    def _fill(self, rows: Iterator[Mapping[str, Any]]) -> None:
        column = self.spec.filter_column
        assert column is not None
        for row in rows:
            self.rows_read += 1
            if self.rows_read == 1 and column not in row:
                shown = ", ".join(map(str, list(row)[:30]))
                raise ConfigurationError(
                    f"{self.spec.describe} has no filter column {column!r}; its columns are {shown}"
                )
            value = row.get(column)
            text = "" if value is None else str(value).strip()
            if not text:
                self.rows_without_segment += 1
                continue
            self._add(text, row)
        for handle in self._files.values():
            handle.close()


@contextlib.contextmanager
def partition(spec: SegmentSpec) -> Iterator[Partition]:
    """Read `spec`'s source once and split it by its filter column; the spool is removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="autopilot-segments-partition-"))  # mode 0700
    try:
        split = Partition(spec, folder)
        try:
            with open_rows(spec) as rows:
                split._fill(rows)
        finally:
            for handle in split._files.values():
                handle.close()
        yield split
    finally:
        shutil.rmtree(folder, ignore_errors=True)
