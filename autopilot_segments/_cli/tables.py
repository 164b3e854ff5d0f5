"""Account records printed as a table or as JSON."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    pass

from .console import _Console


def _record(item: Any) -> dict[str, Any]:
    """A model as a plain dict (attrs models, or mappings for anything looser)."""
    if attrs.has(type(item)):
        return attrs.asdict(item, recurse=True)
    if isinstance(item, Mapping):
        return dict(item)
    raise TypeError(f"cannot show a {type(item).__name__}")


def _print_records(
    console: _Console, records: Sequence[Mapping[str, Any]], columns: Sequence[str], what: str
) -> None:
    if console.json_mode:
        console.emit_json(list(records))
        return
    if not records:
        console.out(f"(no {what})")
        return
    console.out(_table(columns, [[_cell(r.get(c)) for c in columns] for r in records]))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    lines = [
        "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
    return "\n".join(lines)
