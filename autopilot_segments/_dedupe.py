"""Remembering which normalised emails were seen, and in which row, in a few bytes per email.

A set of a million email strings costs well over 100 MB in CPython; this table keeps a 64-bit hash and a
32-bit row number per email in two flat arrays (open addressing, linear probing, at most half full):
24 MiB for a million emails, 36 MiB at the peak while it doubles. Row numbers above 2**32 - 1 do not
fit (OverflowError): no segment is that large. The hash is Python's own string hash (64-bit SipHash,
randomised per process). Two different emails share a hash with probability about n^2 / 2^65: roughly
3 in 100 million for a million emails; such a pair would be reported as a duplicate.
"""

from __future__ import annotations

from array import array
from typing import Final

import attrs

__all__ = ["RowsByEmail"]

_INITIAL_CAPACITY: Final = 1024
_EMPTY: Final = 0  # never a stored hash: a hash of 0 is stored as 1


def _capacity_for(expected: int) -> int:
    capacity = _INITIAL_CAPACITY
    while capacity < 2 * expected:
        capacity *= 2
    return capacity


def _zeros(typecode: str, capacity: int) -> array[int]:
    return array(typecode, [0]) * capacity  # no temporary buffer: the tables are the peak memory


@attrs.define
class RowsByEmail:
    """A compact map from a normalised email to one row number (>= 1).

    Build it with `RowsByEmail.for_size(n)` when the number of emails is known: growing the table
    rehashes every entry in Python.
    """

    _keys: array[int] = attrs.field(factory=lambda: _zeros("q", _INITIAL_CAPACITY))
    _rows: array[int] = attrs.field(factory=lambda: _zeros("I", _INITIAL_CAPACITY))
    _count: int = 0

    @classmethod
    def for_size(cls, expected: int) -> RowsByEmail:
        """A table that holds `expected` emails without growing."""
        capacity = _capacity_for(expected)
        return cls(_zeros("q", capacity), _zeros("I", capacity))

    def __len__(self) -> int:
        return self._count

    # `setdefault` and `set` repeat the probe loop instead of sharing a `_slot()` helper on purpose:
    # one of them runs for every input row, and a call per row costs more than the repetition.

    def setdefault(self, email: str, row: int) -> int:
        """The row stored for `email`; stores `row` first if there is none."""
        key = hash(email) or 1
        keys = self._keys
        mask = len(keys) - 1
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self._rows[slot]
            if found == _EMPTY:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._rows[slot] = row
        self._count += 1
        if self._count * 2 > len(keys):
            self._grow()
        return row

    def set(self, email: str, row: int) -> None:
        """Store `row` for `email`, replacing any row stored before."""
        key = hash(email) or 1
        keys = self._keys
        mask = len(keys) - 1
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                self._rows[slot] = row
                return
            if found == _EMPTY:
                break
            slot = (slot + 1) & mask
        keys[slot] = key
        self._rows[slot] = row
        self._count += 1
        if self._count * 2 > len(keys):
            self._grow()

    def get(self, email: str) -> int | None:
        """The row stored for `email`, or None."""
        key = hash(email) or 1
        keys = self._keys
        mask = len(keys) - 1
        slot = key & mask
        while True:
            found = keys[slot]
            if found == key:
                return self._rows[slot]
            if found == _EMPTY:
                return None
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        old_keys, old_rows = self._keys, self._rows
        capacity = len(old_keys) * 2
        keys = _zeros("q", capacity)
        rows = _zeros("I", capacity)
        mask = capacity - 1
        for key, row in zip(old_keys, old_rows, strict=True):
            if key != _EMPTY:
                slot = key & mask
                while keys[slot] != _EMPTY:
                    slot = (slot + 1) & mask
                keys[slot] = key
                rows[slot] = row
        self._keys, self._rows = keys, rows
