"""Excel workbooks (.xlsx/.xlsm), streamed row by row with openpyxl's read-only mode."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._common import Row, SourceError, _missing_extra
from ._text import _check_header, _existing_file

EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def read_excel(path: str | os.PathLike[str], sheet: str | int | None = None) -> Iterator[Row]:
    """Stream the rows of one worksheet of an `.xlsx`/`.xlsm` workbook as dicts keyed by its header.

    - `sheet`: a sheet name, or a 0-based position; by default the first sheet (in tab order).
    - **Header:** the first row with any non-empty cell (rows above it, e.g. blank lines, are skipped).
      Trailing empty header cells are ignored; names are stripped, must be non-empty and unique.
    - **Values** as Excel stores them: text `str`, numbers `int`/`float`, `TRUE`/`FALSE` `bool`, dates
      and times `datetime` (Excel has no separate date type: a date is a `datetime` at midnight),
      durations `timedelta`. A formula gives its last computed value (None if the workbook was never
      calculated, e.g. written by a script); an error cell (`#N/A`) is its text. Empty cells are None.
    - Fully empty rows are skipped. A row with a value right of the last named column is a
      `SourceError` naming the sheet row.

    Read-only streaming: the sheet's rows are parsed as they are asked for, never held all at once
    (openpyxl does load the workbook's shared-strings table). The legacy `.xls` format is not read:
    save it as `.xlsx`. Needs the `excel` extra (openpyxl).
    """
    try:
        import openpyxl
    except ImportError as exc:
        raise _missing_extra("Reading an Excel workbook", "openpyxl", "excel") from exc
    file = _existing_file(path)
    if file.suffix.lower() == ".xls":
        raise SourceError(f"{file}: the legacy .xls format is not supported; save the workbook as .xlsx")
    if sheet is not None and not isinstance(sheet, (str, int)):
        raise SourceError(f"sheet must be a sheet name or a 0-based position, got {sheet!r}")
    return _excel_rows(openpyxl, file, sheet)


def _excel_rows(openpyxl: Any, file: Path, sheet: str | int | None) -> Iterator[Row]:
    try:
        workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise SourceError(f"{file}: not a readable .xlsx workbook: {exc}") from exc
    try:
        worksheet, name = _worksheet(workbook, file, sheet)
        label = f"{file} (sheet {name!r})"
        records = worksheet.iter_rows(values_only=True)
        header: list[str] | None = None
        width = 0
        for number, record in enumerate(records, 1):
            values = [None if value == "" else value for value in record]
            if not any(value is not None for value in values):
                continue
            if header is None:
                while values and values[-1] is None:
                    values.pop()
                header = _check_header(["" if v is None else str(v) for v in values], label)
                width = len(header)
                continue
            if len(values) > width:
                if any(value is not None for value in values[width:]):
                    raise SourceError(
                        f"{label}: row {number} has a value in column {_extra_column(values, width)}, "
                        f"right of the header's {width} columns"
                    )
                del values[width:]
            elif len(values) < width:
                values.extend([None] * (width - len(values)))
            yield dict(zip(header, values, strict=True))
    finally:
        workbook.close()


def _extra_column(values: list[Any], width: int) -> int:
    return next(i for i in range(width, len(values)) if values[i] is not None) + 1


def _worksheet(workbook: Any, file: Path, sheet: str | int | None) -> tuple[Any, str]:
    names = list(workbook.sheetnames)
    if sheet is None:
        if not names:
            raise SourceError(f"{file}: the workbook has no sheets")
        sheet = names[0]
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise SourceError(
                f"{file}: no sheet at position {sheet} (0-based); it has {len(names)}: {', '.join(names)}"
            )
        sheet = names[sheet]
    if sheet not in names:
        raise SourceError(f"{file}: no sheet {sheet!r}; the sheets are: {', '.join(names)}")
    return workbook[sheet], str(sheet)
