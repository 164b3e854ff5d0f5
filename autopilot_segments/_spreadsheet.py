"""Cells a spreadsheet would evaluate as a formula ("CSV injection"), neutralised the OWASP way.

A rejections file holds values taken from the source (emails, column names, Autopilot's messages quoting
them), and it is meant to be opened in Excel or LibreOffice. A cell such as `=cmd|' /C calc'!A0` or
`=HYPERLINK(...)` would run as a formula there. Following the OWASP rule, a cell whose text starts with
`=`, `+`, `-`, `@`, a tab or a carriage return (also after leading spaces, tabs or line breaks, and the
full-width forms of those signs) gets a single quote in front, which spreadsheets show as text.

That includes text such as `-5`: telling a number from a formula is exactly what an attacker exploits, so
every such cell is prefixed. Numbers the library writes itself (row numbers) are not text and stay as
they are; JSON output is never changed.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["spreadsheet_cell"]

_TRIGGERS: Final = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_LEADING: Final = " \t\r\n"


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a CSV cell that no spreadsheet evaluates: text at risk gets a leading `'`."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in _TRIGGERS:
        return "'" + value
    stripped = value.lstrip(_LEADING)
    if stripped and stripped[0] in _TRIGGERS:
        return "'" + value
    return value
