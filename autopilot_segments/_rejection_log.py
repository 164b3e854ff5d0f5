"""A compact, append-only sequence of `Rejection`s.

A capped million-row segment has ~900,000 `over_limit` rows, and the report must name each of them.
As objects (a `Rejection` plus its strings) that is ~250 bytes a row; here the text lives in one UTF-8
buffer with offsets, consecutive repeats of a message are stored once, and `Rejection` objects are only
built when read: ~40-60 bytes a row.

That still grows with the rows (a capped 3,000,000-row plan would hold ~170 MB), so only the first
`IN_MEMORY_REJECTIONS` rejections stay in memory; the others spill to an anonymous temporary file (the
same kind as the export's `Spool`: unlinked at once on POSIX, readable only by its owner), written in
blocks of `block` rejections, one JSON line per block, with the block's byte offset kept in memory
(8 bytes per block). Reading never moves a shared file position (`os.pread`), so two readers may
interleave. Memory is then bounded whatever the number of rows.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any, overload

from ._rejections import REJECTION_REASONS, Rejection, RejectionReason

__all__ = ["RejectionLog"]

_REASON_CODES = {reason: code for code, reason in enumerate(REJECTION_REASONS)}

IN_MEMORY_REJECTIONS = 100_000
"""Rejections a log keeps in memory (~6 MB); the others spill to disk. Read when a log is created."""

_BLOCK = 1024
_BUFFER = 1 << 20


class _Spill:
    """Rejections on disk, in blocks: one JSON line per block, a list of
    `[row, reason code, email, message, field code]` where a message equal to the one before it in the
    same block is null.
    """

    __slots__ = ("__weakref__", "_file", "_last_message", "_offsets", "_pending", "block", "count")

    def __init__(self, block: int) -> None:
        # Closed when the log is collected (no ResourceWarning); on POSIX it has no name from the start.
        self._file: IO[bytes] = tempfile.TemporaryFile(mode="w+b", buffering=_BUFFER)  # noqa: SIM115
        weakref.finalize(self, self._file.close)
        self._offsets = array("q", [0])  # where each written block starts; then where the data ends
        self._pending: list[list[Any]] = []
        self._last_message: str | None = None
        self.block = block
        self.count = 0

    def append(self, row: int, reason: int, email: str | None, message: str, field: int) -> None:
        pending = self._pending
        if pending and message == self._last_message:
            pending.append([row, reason, email, None, field])
        else:
            pending.append([row, reason, email, message, field])
            self._last_message = message
        self.count += 1
        if len(pending) == self.block:
            data = json.dumps(pending, separators=(",", ":")).encode("ascii") + b"\n"
            self._file.write(data)
            self._offsets.append(self._offsets[-1] + len(data))
            self._pending = []

    @property
    def blocks(self) -> int:
        """Blocks written, plus one for the pending records if there are any."""
        return len(self._offsets) - 1 + bool(self._pending)

    def read_block(self, index: int) -> list[list[Any]]:
        """The records of block `index` (the last may still be in memory), repeated messages filled in."""
        if index == len(self._offsets) - 1:
            records = [list(record) for record in self._pending]
        else:
            self._file.flush()
            start, end = self._offsets[index], self._offsets[index + 1]
            records = json.loads(os.pread(self._file.fileno(), end - start, start))
        previous = None
        for record in records:
            if record[3] is None:
                record[3] = previous
            previous = record[3]
        return records


class RejectionLog(Sequence[Rejection]):
    """Append-only storage for rejections; reads like a tuple of `Rejection`.

    The first `in_memory` rejections (default: `IN_MEMORY_REJECTIONS`) are kept in memory, the others
    spill to disk in blocks of `block`.
    """

    __slots__ = (
        "_bound",
        "_counts",
        "_email_ends",
        "_email_missing",
        "_emails",
        "_field_codes",
        "_fields",
        "_frozen",
        "_last_message",
        "_message_ends",
        "_message_starts",
        "_messages",
        "_reasons",
        "_rows",
        "_spill",
        "_spill_block",
    )

    def __init__(
        self, rejections: Iterable[Rejection] = (), *, in_memory: int | None = None, block: int = _BLOCK
    ) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._bound = IN_MEMORY_REJECTIONS if in_memory is None else max(0, in_memory)
        self._spill_block = block
        self._spill: _Spill | None = None
        self._counts = [0] * len(REJECTION_REASONS)
        self._rows = array("q")
        self._reasons = bytearray()
        self._emails = bytearray()
        self._email_ends = array("q")
        self._email_missing = bytearray()  # 1 where the rejection has no email at all (None)
        self._messages = bytearray()
        self._message_starts = array("q")
        self._message_ends = array("q")
        self._last_message: str | None = None
        self._fields: list[str | None] = [None]  # a handful of column names: a small table
        self._field_codes = array("H")
        self._frozen = False
        for rejection in rejections:
            self.append(rejection)

    def freeze(self) -> RejectionLog:
        """Refuse further appends (a finished report's rejections never change); returns self."""
        self._frozen = True
        return self

    @property
    def in_memory(self) -> int:
        """How many rejections are held in memory."""
        return len(self._rows)

    @property
    def spilled(self) -> int:
        """How many rejections were written to disk."""
        return 0 if self._spill is None else self._spill.count

    def _field_code(self, field: str | None) -> int:
        fields = self._fields
        if field not in fields:
            fields.append(field)
        return fields.index(field)

    def append(self, rejection: Rejection) -> None:
        if self._frozen:
            raise TypeError("this RejectionLog belongs to a finished report and cannot change")
        code = _REASON_CODES[rejection.reason]
        self._counts[code] += 1
        if len(self._rows) >= self._bound:
            if self._spill is None:
                self._spill = _Spill(self._spill_block)
            field = self._field_code(rejection.field)
            self._spill.append(rejection.row, code, rejection.email, rejection.message, field)
            return
        self._rows.append(rejection.row)
        self._reasons.append(code)
        self._email_missing.append(rejection.email is None)
        if rejection.email is not None:
            self._emails += rejection.email.encode("utf-8", "surrogatepass")
        self._email_ends.append(len(self._emails))
        if rejection.message == self._last_message and self._message_starts:
            self._message_starts.append(self._message_starts[-1])
            self._message_ends.append(self._message_ends[-1])
        else:
            self._message_starts.append(len(self._messages))
            self._messages += rejection.message.encode("utf-8", "surrogatepass")
            self._message_ends.append(len(self._messages))
            self._last_message = rejection.message
        self._field_codes.append(self._field_code(rejection.field))

    def reason_counts(self) -> dict[str, int]:
        """Rejections per reason code, every code present (cheap: no `Rejection` is built)."""
        return {reason: self._counts[code] for reason, code in _REASON_CODES.items()}

    def extend(self, rejections: Iterable[Rejection]) -> None:
        for rejection in rejections:
            self.append(rejection)

    def __len__(self) -> int:
        return len(self._rows) + self.spilled

    def _at(self, index: int) -> Rejection:
        start = self._email_ends[index - 1] if index else 0
        email = None
        if not self._email_missing[index]:
            email = self._emails[start : self._email_ends[index]].decode("utf-8", "surrogatepass")
        message = self._messages[self._message_starts[index] : self._message_ends[index]]
        reason: RejectionReason = REJECTION_REASONS[self._reasons[index]]  # type: ignore[assignment]
        return Rejection(
            row=self._rows[index],
            email=email,
            reason=reason,
            message=message.decode("utf-8", "surrogatepass"),
            field=self._fields[self._field_codes[index]],
        )

    def _from_disk(self, record: list[Any]) -> Rejection:
        row, reason, email, message, field = record
        return Rejection(
            row=row, email=email, reason=REJECTION_REASONS[reason], message=message, field=self._fields[field]
        )

    def __iter__(self) -> Iterator[Rejection]:
        in_memory = len(self._rows)
        spill = self._spill
        count = in_memory + (0 if spill is None else spill.count)
        yield from (self._at(index) for index in range(in_memory))
        if spill is None:
            return
        left = count - in_memory
        for block in range(spill.blocks):
            for record in spill.read_block(block)[:left]:
                yield self._from_disk(record)
                left -= 1
            if left <= 0:
                return

    @overload
    def __getitem__(self, index: int) -> Rejection: ...

    @overload
    def __getitem__(self, index: slice) -> list[Rejection]: ...

    def __getitem__(self, index: int | slice) -> Rejection | list[Rejection]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("rejection index out of range")
        if index < len(self._rows):
            return self._at(index)
        assert self._spill is not None
        block, offset = divmod(index - len(self._rows), self._spill.block)
        return self._from_disk(self._spill.read_block(block)[offset])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __reduce__(self) -> tuple[Any, ...]:
        # The spill file cannot travel: a pickled log carries its rejections (and spills again on load).
        return (_rebuild, (list(self), self._frozen))

    def __repr__(self) -> str:
        return f"RejectionLog({len(self)} rejections, {self.spilled} on disk)"


def _rebuild(rejections: list[Rejection], frozen: bool) -> RejectionLog:
    log = RejectionLog(rejections)
    return log.freeze() if frozen else log
