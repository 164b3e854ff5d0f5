"""A disk spool for mapped contacts: the two-pass export writes them once, then reads them back in order.

An export that removes leavers must read every row before it may write anything (the removal guard
rail needs the full count of leavers), yet 1,000,000 rows must not be held in memory. The first pass
appends each mapped contact here; the second pass sends from here.

The spool holds emails and field values in clear, so it lives in an anonymous temporary file: on POSIX
it is unlinked as soon as it is created (nothing is left behind even if the process is killed), on
Windows the OS deletes it when the handle closes. It is readable only by its owner.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any

import attrs

__all__ = ["Spool", "SpooledContact"]

_BUFFER = 1 << 20


@attrs.frozen(kw_only=True)
class SpooledContact:
    """One mapped contact read back from the spool, as it was appended."""

    row: int
    email: str
    payload: dict[str, Any]


@attrs.define(repr=False)
class Spool:
    """Append mapped contacts, then iterate them back in the same order; constant memory.

    Appending ends at the first iteration. Iterating again starts from the beginning; two iterations
    may not be interleaved. Payloads must be JSON values (as any mapped contact's is); they
    come back as they would from a JSON round trip (tuples become lists).
    """

    _file: IO[bytes]
    _count: int = 0
    _writing: bool = True
    _reader_active: bool = False

    @classmethod
    def create(cls, *, directory: str | os.PathLike[str] | None = None) -> Spool:
        """A new empty spool in `directory` (default: the system temp directory)."""
        return cls(file=tempfile.TemporaryFile(mode="w+b", buffering=_BUFFER, dir=directory))

    def append(self, row: int, email: str, payload: Mapping[str, Any]) -> None:
        if not self._writing:
            raise RuntimeError("the spool is being read: appending is over")
        line = json.dumps([row, email, payload], separators=(",", ":"), ensure_ascii=False)
        # json.dumps escapes control characters, so a record never contains a raw newline.
        self._file.write(line.encode("utf-8") + b"\n")
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[SpooledContact]:
        if self._reader_active:
            raise RuntimeError("the spool is already being read")
        self._writing = False
        self._reader_active = True
        try:
            self._file.flush()
            self._file.seek(0)
            for _ in range(self._count):
                row, email, payload = json.loads(self._file.readline())
                yield SpooledContact(row=row, email=email, payload=payload)
        finally:
            self._reader_active = False

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        """Close and delete the spool. Idempotent."""
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Spool(contacts={self._count}, closed={self.closed})"
