"""Counted nouns for messages: `1 row`, `2 rows`, `1,000 API calls` (thousands separators included)."""

from __future__ import annotations

__all__ = ["counted"]

_IRREGULAR = {"retry": "retries", "was": "were", "is": "are"}


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` with thousands separators and the noun in the form `n` wants.

    The plural is `plural` when given, else a known irregular form (`retry` -> `retries`), else the
    singular with an `s`. Only the last word of a phrase is inflected: `counted(2, "API call")`.
    """
    if n == 1:
        return f"{n:,} {singular}"
    if plural is None:
        head, _, last = singular.rpartition(" ")
        last = _IRREGULAR.get(last, last + "s")
        plural = f"{head} {last}" if head else last
    return f"{n:,} {plural}"
