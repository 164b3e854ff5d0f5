"""How a CDM CSV partition is written: the `is.partition.format.CSV` trait and `fileFormatSettings`.

As in Microsoft's CDM object model, the trait's arguments (`cdm:traits` in a model.json,
`exhibitsTraits` in a manifest) take precedence, argument by argument, over the `fileFormatSettings`
of a model.json partition (whose missing arguments the settings fill in). Every value is checked: an
unknown quote style, a two-character delimiter or an unknown encoding is a `SourceError`, never a
silent default.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Final, Literal

import attrs

from ._common import SourceError

CSV_TRAIT: Final = "is.partition.format.CSV"
PARQUET_TRAIT: Final = "is.partition.format.parquet"

QuoteStyle = Literal["csv", "none"]
CsvStyle = Literal["quote_after_delimiter", "quote_always"]

_QUOTE_STYLES: Final[dict[str, QuoteStyle]] = {"quotestyle.csv": "csv", "quotestyle.none": "none"}
_CSV_STYLES: Final[dict[str, CsvStyle]] = {
    "csvstyle.quoteafterdelimiter": "quote_after_delimiter",
    "csvstyle.quotealways": "quote_always",
}
_NEWLINES: Final = ("\n", "\r\n", "\r")
_ENCODING_ALIASES: Final = {"unicode": "utf-16", "bigendianunicode": "utf-16-be"}  # .NET names
_ARGUMENTS: Final = (
    "columnHeaders",
    "delimiter",
    "quoteStyle",
    "csvStyle",
    "encoding",
    "newline",
    "quote",
    "escape",
)


@attrs.frozen
class CsvFormat:
    """The reading settings of one partition, already checked."""

    column_headers: bool = False
    delimiter: str = ","
    quote_style: QuoteStyle = "csv"
    csv_style: CsvStyle = "quote_after_delimiter"
    encoding: str = "utf-8-sig"
    quote: str = '"'
    escape: str | None = None


def _trait_name(trait: Any) -> str | None:
    if isinstance(trait, str):
        return trait
    if isinstance(trait, Mapping):
        reference = trait.get("traitReference")
        if isinstance(reference, str):
            return reference
        if isinstance(reference, Mapping) and isinstance(reference.get("traitName"), str):
            return str(reference["traitName"])
    return None


def trait_arguments(traits: Any, name: str, label: str) -> dict[str, Any] | None:
    """The named arguments of every `name` trait in `traits` (first one wins per argument), or None."""
    if traits is None:
        return None
    if not isinstance(traits, Sequence) or isinstance(traits, str):
        raise SourceError(f"{label}: the traits are not a list")
    found: dict[str, Any] | None = None
    for trait in traits:
        if _trait_name(trait) != name:
            continue
        found = {} if found is None else found
        arguments = trait.get("arguments") if isinstance(trait, Mapping) else None
        for argument in arguments or ():
            if not isinstance(argument, Mapping) or "name" not in argument:
                raise SourceError(
                    f"{label}: the {name} trait has an argument without a name ({argument!r}); "
                    'its meaning would be a guess, so give it as {{"name": ..., "value": ...}}'
                )
            found.setdefault(str(argument["name"]), argument.get("value"))
    return found


def has_trait(traits: Any, name: str) -> bool:
    return (
        isinstance(traits, Sequence)
        and not isinstance(traits, str)
        and any(_trait_name(t) == name for t in traits)
    )


def _settings_arguments(settings: Any, label: str) -> dict[str, Any]:
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise SourceError(f"{label}: fileFormatSettings is not an object")
    kind = settings.get("$type")
    if kind is not None and kind != "CsvFormatSettings":
        raise SourceError(
            f"{label}: fileFormatSettings of type {kind!r} cannot be read; only CsvFormatSettings can"
        )
    return {key: value for key, value in settings.items() if key != "$type"}


def csv_format(
    traits: Any, settings: Sequence[Any] = (), *, label: str, defaults: CsvFormat | None = None
) -> CsvFormat:
    """The checked format: trait arguments first, then each `fileFormatSettings` in turn, then defaults."""
    merged: dict[str, Any] = {}
    for source in (
        trait_arguments(traits, CSV_TRAIT, label) or {},
        *(_settings_arguments(s, label) for s in settings),
    ):
        for key, value in source.items():
            if value is not None and value != "":
                merged.setdefault(key, value)
    unknown = [key for key in merged if key not in _ARGUMENTS]
    if unknown:
        raise SourceError(
            f"{label}: CSV format argument(s) {', '.join(map(repr, unknown))} are not supported "
            f"(supported: {', '.join(_ARGUMENTS)}); reading the partition without them would be a guess"
        )
    base = defaults or CsvFormat()
    newline = merged.get("newline")
    if newline is not None and newline not in _NEWLINES:
        raise SourceError(f"{label}: newline {newline!r} is not supported; use \\n, \\r\\n or \\r")
    quote_style = _choice(merged, "quoteStyle", _QUOTE_STYLES, base.quote_style, label)
    csv_style = _choice(merged, "csvStyle", _CSV_STYLES, base.csv_style, label)
    return CsvFormat(
        column_headers=_boolean(merged.get("columnHeaders"), base.column_headers, label),
        delimiter=_character(merged, "delimiter", base.delimiter, label),
        quote_style=quote_style,
        csv_style=csv_style,
        encoding=_encoding(merged.get("encoding"), base.encoding, label),
        quote=_character(merged, "quote", base.quote, label),
        escape=_character(merged, "escape", base.escape, label) if "escape" in merged else base.escape,
    )


def _boolean(value: Any, default: bool, label: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"  # the object model's string booleans: "false" is false
    raise SourceError(f"{label}: columnHeaders must be true or false, not {value!r}")


def _character(merged: Mapping[str, Any], key: str, default: Any, label: str) -> Any:
    value = merged.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise SourceError(f"{label}: {key} must be a single character, not {value!r}")
    return value


def _choice(merged: Mapping[str, Any], key: str, choices: Mapping[str, Any], default: Any, label: str) -> Any:
    value = merged.get(key)
    if value is None:
        return default
    text = str(value).strip().lower()
    prefix = next(iter(choices)).split(".", 1)[0] + "."
    found = choices.get(text if text.startswith(prefix) else prefix + text)
    if found is None:
        names = ", ".join(sorted({c.split(".", 1)[1] for c in choices}))
        raise SourceError(f"{label}: {key} {value!r} is not supported; use one of {names}")
    return found


def _encoding(value: Any, default: str, label: str) -> str:
    if value is None:
        return default
    name = str(value).strip()
    name = _ENCODING_ALIASES.get(name.lower().replace("-", ""), name)
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        raise SourceError(f"{label}: encoding {value!r} is not known") from None
    return "utf-8-sig" if codec == "utf-8" else codec  # a UTF-8 byte-order mark is tolerated


# --------------------------------------------------------------------------------------- reading


def records(fh: IO[str], fmt: CsvFormat) -> Any:
    """A `csv.reader`-like iterator of cell lists (with `line_num`) reading `fh` in `fmt`."""
    if fmt.quote_style == "none":
        return csv.reader(fh, delimiter=fmt.delimiter, quoting=csv.QUOTE_NONE, escapechar=fmt.escape)
    if fmt.csv_style == "quote_always":
        return QuoteAlwaysReader(fh, fmt.delimiter, fmt.quote, fmt.escape)
    return csv.reader(
        fh, delimiter=fmt.delimiter, quotechar=fmt.quote, escapechar=fmt.escape, doublequote=True
    )


class QuoteAlwaysReader:
    """`CsvStyle.QuoteAlways`: a quote is significant wherever it appears in a field, not only first.

    `a"b,c"d` is the one cell `ab,cd`; inside quotes a doubled quote is a literal quote; line breaks
    inside quotes belong to the value. A blank line is an empty record (`[]`), as with `csv.reader`.
    """

    def __init__(self, fh: IO[str], delimiter: str, quote: str, escape: str | None) -> None:
        self._fh = fh
        self._delimiter = delimiter
        self._quote = quote
        self._escape = escape
        self._special = re.compile("[" + re.escape(quote + delimiter) + "\r\n]")
        self.line_num = 0

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        line = self._fh.readline()
        if not line:
            raise StopIteration
        self.line_num += 1
        if self._quote not in line and (self._escape is None or self._escape not in line):
            text = line.rstrip("\r\n")
            return text.split(self._delimiter) if text else []  # the common case: nothing quoted
        if self._escape is not None:
            return self._slow(line)
        return self._scan(line)

    def _scan(self, line: str) -> list[str]:
        """A record with quotes: jump from one special character to the next with `str.find`."""
        quote, delimiter = self._quote, self._delimiter
        special = self._special
        cells: list[str] = []
        buffer: list[str] = []
        quoted = False
        i = 0
        while True:
            if quoted:
                j = line.find(quote, i)
                if j < 0:
                    buffer.append(line[i:])
                    line = self._fh.readline()
                    if not line:
                        raise csv.Error("unexpected end of data: a quoted value is not closed")
                    self.line_num += 1
                    i = 0
                    continue
                buffer.append(line[i:j])
                if line.startswith(quote, j + 1):
                    buffer.append(quote)
                    i = j + 2
                else:
                    quoted = False
                    i = j + 1
                continue
            match = special.search(line, i)
            if match is None:
                buffer.append(line[i:])
                break
            j = match.start()
            buffer.append(line[i:j])
            ch = line[j]
            if ch == quote:
                quoted = True
                i = j + 1
            elif ch == delimiter:
                cells.append("".join(buffer))
                buffer = []
                i = j + 1
            else:  # the line break ends the record
                break
        cells.append("".join(buffer))
        return cells

    def _slow(self, line: str) -> list[str]:
        """A record with an escape character: character by character."""
        cells: list[str] = []
        buffer: list[str] = []
        quoted = False
        touched = False  # anything but the line break seen: a blank line is []
        quote, delimiter, escape = self._quote, self._delimiter, self._escape
        while True:
            i, n = 0, len(line)
            while i < n:
                ch = line[i]
                if escape is not None and ch == escape and i + 1 < n:
                    buffer.append(line[i + 1])
                    touched = True
                    i += 2
                    continue
                if quoted:
                    if ch == quote:
                        if i + 1 < n and line[i + 1] == quote:
                            buffer.append(quote)
                            i += 2
                            continue
                        quoted = False
                    else:
                        buffer.append(ch)
                elif ch == quote:
                    quoted = touched = True
                elif ch == delimiter:
                    cells.append("".join(buffer))
                    buffer = []
                    touched = True
                elif ch in "\r\n":
                    break
                else:
                    buffer.append(ch)
                    touched = True
                i += 1
            if not quoted:
                break
            line = self._fh.readline()
            if not line:
                raise csv.Error("unexpected end of data: a quoted value is not closed")
            self.line_num += 1
        if not touched:
            return []
        cells.append("".join(buffer))
        return cells
