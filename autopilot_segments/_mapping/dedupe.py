"""Remembering which normalised emails were seen, and in which row, in a few bytes per email.

A set of a million email strings costs well over 100 MB in CPython; this table keeps a 64-bit hash and a
32-bit row number per email in flat arrays (open addressing, linear probing). Row numbers above
2**32 - 1 do not fit (OverflowError): no segment is that large. The hash is Python's own string hash
(64-bit SipHash, randomised per process). Two different emails share a hash with probability about
n^2 / 2^65: roughly 3 in 100 million for a million emails; such a pair would be reported as a duplicate.

Growth without a peak: a single table that doubles holds the old and the new table at once (1.5x its
final size) and sits between one and two times the room it needs. Here the table is cut into
`_SHARDS` independent shards (chosen by the hash's low bits); a shard that reaches 3/4 full is rebuilt
alone at half full (1.5x its size), so growing costs 1/64 of the table at a time and the whole table
stays between half and 3/4 full: 16 to 24 bytes per email (a 3,000,000-email table: 48-72 MB). With
`for_size(n)`, the table is sized for `n` emails up front and does not grow at all.
"""

from __future__ import annotations

import math
from array import array
from typing import Final

import attrs

__all__ = ["RowsByEmail"]

_SHARD_BITS: Final = 6
_SHARDS: Final = 1 << _SHARD_BITS
_SHARD_MASK: Final = _SHARDS - 1
_MIN_SHARD: Final = 16
_EMPTY: Final = 0  # never a stored hash: a hash of 0 is stored as 1
_MAX_LOAD: Final = 0.75  # a shard this full is rebuilt ...
_GROWN_LOAD: Final = 0.5  # ... this full, 1.5x as large
_SIZED_LOAD: Final = 0.55  # for_size(): room for the expected emails, with slack for uneven shards


def _zeros(typecode: str, capacity: int) -> array[int]:
    return array(typecode, [0]) * capacity  # no temporary buffer: the tables are the peak memory


def _limit(capacity: int) -> int:
    """Entries a shard of `capacity` slots may hold before it is rebuilt."""
    return int(capacity * _MAX_LOAD)


@attrs.define
class RowsByEmail:
    """A compact map from a normalised email to one row number (>= 1).

    Build it with `RowsByEmail.for_size(n)` when the number of emails is known: growing a shard
    rehashes its entries in Python.
    """

    _keys: list[array[int]] = attrs.field(factory=lambda: [_zeros("q", _MIN_SHARD) for _ in range(_SHARDS)])
    _rows: list[array[int]] = attrs.field(factory=lambda: [_zeros("I", _MIN_SHARD) for _ in range(_SHARDS)])
    _room: list[int] = attrs.field(factory=lambda: [_limit(_MIN_SHARD)] * _SHARDS)  # free entries per shard
    _count: int = 0

    @classmethod
    def for_size(cls, expected: int) -> RowsByEmail:
        """A table that holds `expected` emails without growing (unless the hash is very uneven)."""
        capacity = max(_MIN_SHARD, math.ceil(expected / _SHARDS / _SIZED_LOAD))
        return cls(
            [_zeros("q", capacity) for _ in range(_SHARDS)],
            [_zeros("I", capacity) for _ in range(_SHARDS)],
            [_limit(capacity)] * _SHARDS,
        )

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """The bytes the table's arrays hold."""
        return sum(
            len(k) * k.itemsize + len(r) * r.itemsize for k, r in zip(self._keys, self._rows, strict=True)
        )

    # `setdefault` and `set` repeat the probe loop instead of sharing a `_slot()` helper on purpose:
    # one of them runs for every input row, and a call per row costs more than the repetition.

    def setdefault(self, email: str, row: int) -> int:
        """The row stored for `email`; stores `row` first if there is none."""
        key = hash(email) or 1
        shard = key & _SHARD_MASK
        keys = self._keys[shard]
        size = len(keys)
        slot = (key >> _SHARD_BITS) % size
        while True:
            found = keys[slot]
            if found == key:
                return self._rows[shard][slot]
            if found == _EMPTY:
                break
            slot += 1
            if slot == size:
                slot = 0
        keys[slot] = key
        self._rows[shard][slot] = row
        self._stored(shard)
        return row

    def set(self, email: str, row: int) -> None:
        """Store `row` for `email`, replacing any row stored before."""
        key = hash(email) or 1
        shard = key & _SHARD_MASK
        keys = self._keys[shard]
        size = len(keys)
        slot = (key >> _SHARD_BITS) % size
        while True:
            found = keys[slot]
            if found == key:
                self._rows[shard][slot] = row
                return
            if found == _EMPTY:
                break
            slot += 1
            if slot == size:
                slot = 0
        keys[slot] = key
        self._rows[shard][slot] = row
        self._stored(shard)

    def get(self, email: str) -> int | None:
        """The row stored for `email`, or None."""
        key = hash(email) or 1
        shard = key & _SHARD_MASK
        keys = self._keys[shard]
        size = len(keys)
        slot = (key >> _SHARD_BITS) % size
        while True:
            found = keys[slot]
            if found == key:
                return self._rows[shard][slot]
            if found == _EMPTY:
                return None
            slot += 1
            if slot == size:
                slot = 0

    def _stored(self, shard: int) -> None:
        self._count += 1
        self._room[shard] -= 1
        if self._room[shard] <= 0:
            self._grow(shard)

    def _grow(self, shard: int) -> None:
        old_keys, old_rows = self._keys[shard], self._rows[shard]
        entries = _limit(len(old_keys)) - self._room[shard]
        capacity = max(len(old_keys) + 1, math.ceil(entries / _GROWN_LOAD))
        keys = _zeros("q", capacity)
        rows = _zeros("I", capacity)
        for key, row in zip(old_keys, old_rows, strict=True):
            if key != _EMPTY:
                slot = (key >> _SHARD_BITS) % capacity
                while keys[slot] != _EMPTY:
                    slot += 1
                    if slot == capacity:
                        slot = 0
                keys[slot] = key
                rows[slot] = row
        self._keys[shard], self._rows[shard] = keys, rows
        self._room[shard] = _limit(capacity) - entries
