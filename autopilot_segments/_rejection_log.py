"""A compact, append-only sequence of `Rejection`s.

A capped million-row segment has ~900,000 `over_limit` rows, and the report must name each of them.
As objects (a `Rejection` plus its strings) that is ~250 bytes a row; here the text lives in one UTF-8
buffer with offsets, consecutive repeats of a message are stored once, and `Rejection` objects are only
built when read: ~40-60 bytes a row.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from ._rejections import REJECTION_REASONS, Rejection, RejectionReason

__all__ = ["RejectionLog"]

_REASON_CODES = {reason: code for code, reason in enumerate(REJECTION_REASONS)}


class RejectionLog(Sequence[Rejection]):
    """Append-only storage for rejections; reads like a tuple of `Rejection`."""

    __slots__ = (
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
    )

    def __init__(self, rejections: Iterable[Rejection] = ()) -> None:
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

    def append(self, rejection: Rejection) -> None:
        if self._frozen:
            raise TypeError("this RejectionLog belongs to a finished report and cannot change")
        self._rows.append(rejection.row)
        self._reasons.append(_REASON_CODES[rejection.reason])
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
        if rejection.field not in self._fields:
            self._fields.append(rejection.field)
        self._field_codes.append(self._fields.index(rejection.field))

    def reason_counts(self) -> dict[str, int]:
        """Rejections per reason code, every code present (cheap: no `Rejection` is built)."""
        return {reason: self._reasons.count(code) for reason, code in _REASON_CODES.items()}

    def extend(self, rejections: Iterable[Rejection]) -> None:
        for rejection in rejections:
            self.append(rejection)

    def __len__(self) -> int:
        return len(self._rows)

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

    def __iter__(self) -> Iterator[Rejection]:
        return (self._at(index) for index in range(len(self._rows)))

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
        return self._at(index)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"RejectionLog({len(self)} rejections)"
