"""Cutting a stream into batches, and batches into halves, without materialising the stream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

__all__ = ["chunked", "halves"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield consecutive lists of `size` items (the last may be shorter), reading `items` lazily."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def halves(items: Sequence[T]) -> tuple[Sequence[T], Sequence[T]]:
    """Split a sequence of at least two items into two non-empty halves, order kept."""
    if len(items) < 2:
        raise ValueError("only a sequence of two or more items can be halved")
    middle = len(items) // 2
    return items[:middle], items[middle:]
