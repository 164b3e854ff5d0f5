"""Converting one raw cell to what Autopilot wants: a standard-field string or a typed custom value.

Every converter takes the raw value and returns the value to send, or `OMIT` when the value is empty
(None, NaN, NaT, pandas NA, empty or whitespace-only text), or raises `ValueProblem` with a message for a
marketer ("'abc' is not a whole number; ..."). Rows come from csv, json, pandas or anywhere else, so a
converter must never raise anything else, whatever it is given.

pandas and numpy are never imported: NaN is found with `x != x`, NaT and NA by their type names, numpy
scalars are unwrapped with `.item()`. The common cases (str, int, float) are tested first, by exact type.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "MAX_STANDARD_LENGTH",
    "OMIT",
    "Converter",
    "ValueProblem",
    "boolean_converter",
    "date_converter",
    "float_converter",
    "integer_converter",
    "is_empty",
    "short",
    "text_converter",
]

MAX_STANDARD_LENGTH: Final = 255
# Autopilot is a JavaScript platform: integers beyond 2**53 would silently lose precision there.
MAX_SAFE_INTEGER: Final = 2**53 - 1

_INTEGER_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ISO_DATE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_ISO_DATETIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
    r"\s*(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)
_TRUE_WORDS: Final = frozenset({"true", "yes", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "0"})
_EMPTY_TYPE_NAMES: Final = frozenset({"NaTType", "NAType"})
# numpy floats that are not a Python float: .item() would give float32's binary expansion
# (3.3 -> 3.299999952316284); str() gives the shortest text that reads back as the same value.
_NUMPY_OTHER_FLOATS: Final = frozenset({"float16", "float32", "float96", "float128", "longdouble"})
# JavaScript (Autopilot's platform) and spreadsheets write plain digits in this range; Python's repr
# switches to exponents at 1e16 and below 1e-4.
_PLAIN_DIGITS_RANGE: Final = (1e-7, 1e21)
_CONTAINERS: Final = (list, tuple, set, frozenset, dict, Mapping)
_SHORT_LENGTH: Final = 40
_MAX_DECIMAL_DIGITS: Final = 1000
_MILLISECONDS: Final = tuple(f".{ms:03d}Z" for ms in range(1000))


class _Omit:
    """The marker for "leave this field out of the contact"."""

    _instance: _Omit | None = None

    def __new__(cls) -> _Omit:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final[_Omit] = _Omit()

Converter = Callable[[Any], Any]


class ValueProblem(Exception):
    """A value that cannot be sent; the message is written for the person who owns the data."""


def short(value: object) -> str:
    """A short printable form of a value for messages: long values are cut with an ellipsis."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHORT_LENGTH else text[: _SHORT_LENGTH - 1] + "…"


def _unwrap(value: Any) -> Any:
    """A plain Python value for anything exotic, or OMIT for the empty markers of pandas and numpy."""
    if value is None or type(value).__name__ in _EMPTY_TYPE_NAMES:
        return OMIT
    if isinstance(value, enum.Enum):
        return _unwrap(value.value)
    if type(value).__module__ == "numpy" and callable(getattr(value, "item", None)):
        try:
            name = type(value).__name__
            if name in _NUMPY_OTHER_FLOATS:
                value = float(str(value))
            elif name == "datetime64":
                # .item() of a nanosecond datetime64 (what DataFrame.to_records() holds) is an int
                value = (
                    value.astype("datetime64[us]").item() if value.dtype.str[-4:] == "[ns]" else value.item()
                )
            else:
                value = value.item()
        except Exception:
            return value
        if value is None:  # numpy's NaT
            return OMIT
    if isinstance(value, Decimal) and value.is_nan():  # comparing a signalling NaN raises
        return OMIT
    try:
        if value != value:  # NaN of float, numpy ...
            return OMIT
    except Exception:
        return value
    return value


def is_empty(value: Any) -> bool:
    """True for None, NaN, NaT, pandas NA and empty or whitespace-only text."""
    if isinstance(value, str):
        return not value.strip()
    return _unwrap(value) is OMIT


def _clean_text(text: str) -> str:
    """Trimmed text; a problem for lone surrogates, which cannot be encoded as UTF-8."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueProblem(f"{short(text)} contains characters that are not valid text") from None
    return text.strip()


def _float_text(number: float) -> str:
    if math.isinf(number):
        raise ValueProblem(f"{number!r} is not a finite number")
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))  # 42.0 -> "42": spreadsheets and pandas make floats of whole numbers
    text = repr(number)
    low, high = _PLAIN_DIGITS_RANGE
    if "e" in text and low <= abs(number) < high:
        return format(Decimal(text), "f")  # 1e+20 -> "100000000000000000000", 2.5e-05 -> "0.000025"
    return text


def _iso_utc(moment: datetime) -> str:
    """`2016-11-22T10:30:00.000Z`: aware datetimes converted to UTC, naive ones taken as UTC."""
    # Hand-built from isoformat(), which is several times faster than astimezone() + strftime().
    if moment.tzinfo is not None:
        try:
            offset = moment.utcoffset()
            if offset:
                moment = moment - offset
        except Exception:
            raise ValueProblem(
                f"{moment.isoformat()!r} is out of the range of dates that can be stored"
            ) from None
    return moment.isoformat()[:19] + _MILLISECONDS[moment.microsecond // 1000]


def _as_text(value: Any) -> str | _Omit:
    """Any scalar as text; containers and undecodable bytes are problems."""
    value = _unwrap(value)
    if isinstance(value, _Omit):
        return OMIT
    if isinstance(value, str):
        return _clean_text(str(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, Decimal):
        if value.is_infinite():
            raise ValueProblem(f"{short(value)} is not a finite number")
        if abs(value.adjusted()) > _MAX_DECIMAL_DIGITS:  # written out, it would take seconds and gigabytes
            raise ValueProblem(f"{short(value)} has too many digits to be written out")
        return str(int(value)) if value == value.to_integral_value() else format(value, "f")
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return _clean_text(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueProblem(f"{short(value)} is binary data, not text") from None
    if isinstance(value, _CONTAINERS):
        raise ValueProblem(
            f"{short(value)} holds several values ({type(value).__name__}); give one value, "
            "or join them with a transform"
        )
    try:
        return _clean_text(str(value))
    except ValueProblem:
        raise
    except Exception:
        raise ValueProblem(f"{short(value)} cannot be turned into text") from None


def text_converter(*, max_length: int | None = MAX_STANDARD_LENGTH, truncate: bool = False) -> Converter:
    """Text for standard fields and string custom fields: numbers without float artefacts, trimmed.

    Booleans become "true"/"false", dates ISO-8601. Longer than `max_length` is a problem, or cut if
    `truncate`.
    """

    def fit(text: str) -> str:
        if max_length is None or len(text) <= max_length:
            return text
        if truncate:
            return text[:max_length].rstrip()
        raise ValueProblem(
            f"{short(text)} is {len(text)} characters long; at most {max_length} are allowed "
            "(shorten it, or set truncate_long_values=True)"
        )

    def convert(value: Any) -> Any:
        if type(value) is str:  # the common case first
            text = value.strip() if value.isascii() else _clean_text(value)
            if not text:
                return OMIT
            return text if max_length is None or len(text) <= max_length else fit(text)
        converted = _as_text(value)
        if isinstance(converted, _Omit) or not converted:
            return OMIT
        return fit(converted)

    return convert


def _integer(number: int, shown: Any) -> int:
    if -MAX_SAFE_INTEGER <= number <= MAX_SAFE_INTEGER:
        return number
    raise ValueProblem(
        f"{short(shown)} is too large; whole numbers up to ±{MAX_SAFE_INTEGER} are stored exactly"
    )


def integer_converter() -> Converter:
    """Whole numbers from ints, whole floats (42.0) and numeric text ("42", "42.0", "1e3"); not from bools."""

    def from_text(value: str) -> Any:
        text = value.strip()
        if not text:
            return OMIT
        if _INTEGER_TEXT.fullmatch(text):
            return _integer(int(text), value)
        if _NUMBER_TEXT.fullmatch(text):
            return from_decimal(Decimal(text), value)  # exact: "42.0000000000000001" is not 42
        raise ValueProblem(f"{short(value)} is not a whole number; use digits only, like 42")

    def from_decimal(number: Decimal, shown: Any) -> Any:
        if number.is_infinite() or number != number.to_integral_value():
            raise ValueProblem(f"{short(shown)} is not a whole number; use digits only, like 42")
        if number.adjusted() > 16:  # checked before int(), which is slow for huge exponents
            return _integer(MAX_SAFE_INTEGER + 1, shown)
        return _integer(int(number), shown)

    def from_float(number: float, shown: Any) -> Any:
        if number != number:
            return OMIT
        if math.isinf(number) or not number.is_integer():
            raise ValueProblem(f"{short(shown)} is not a whole number; use digits only, like 42")
        return _integer(int(number), shown)

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            if value.isdigit() and value.isascii() and len(value) < 16:  # fast path: plain digits
                return int(value)
            return from_text(value)
        if kind is int:
            return _integer(value, value)
        if kind is float:
            return from_float(value, value)
        value = _unwrap(value)
        if value is OMIT:
            return OMIT
        if isinstance(value, bool):
            raise ValueProblem(f"{short(value)} is true/false, not a whole number")
        if isinstance(value, int):
            return _integer(int(value), value)
        if isinstance(value, str):
            return from_text(value)
        if isinstance(value, Decimal):
            return from_decimal(value, value)
        if isinstance(value, float):
            return from_float(value, value)
        raise ValueProblem(f"{short(value)} is not a whole number; use digits only, like 42")

    return convert


def float_converter() -> Converter:
    """Finite numbers from ints, floats and numeric text ("3.5", "1e3"); not from bools, NaN or infinity."""

    def finite(number: float, shown: Any) -> float:
        if math.isinf(number):
            raise ValueProblem(f"{short(shown)} is not a finite number")
        return number

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is float:
            return OMIT if value != value else finite(value, value)
        if kind is int:
            return float(value) if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else _big(value)
        value = _unwrap(value)
        if value is OMIT:
            return OMIT
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return OMIT
            if _NUMBER_TEXT.fullmatch(text):
                return finite(float(text), value)
            raise ValueProblem(f"{short(value)} is not a number; use digits with a dot, like 3.5")
        if isinstance(value, bool):
            raise ValueProblem(f"{short(value)} is true/false, not a number")
        if isinstance(value, (int, float, Decimal)):
            try:
                return finite(float(value), value)
            except OverflowError:
                raise ValueProblem(f"{short(value)} is too large a number") from None
        raise ValueProblem(f"{short(value)} is not a number; use digits with a dot, like 3.5")

    def _big(value: int) -> float:
        try:
            return finite(float(value), value)
        except OverflowError:
            raise ValueProblem(f"{short(value)} is too large a number") from None

    return convert


def boolean_converter() -> Converter:
    """True/false from bools, 0/1 and the words true/false/yes/no/1/0 in any case."""

    def convert(value: Any) -> Any:
        if value is True or value is False:
            return value
        value = _unwrap(value)
        if value is OMIT:
            return OMIT
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            word = value.strip().lower()
            if not word:
                return OMIT
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        elif isinstance(value, (int, float, Decimal)) and value in (0, 1):
            return bool(value)
        raise ValueProblem(f"{short(value)} is not true or false; use true/false, yes/no or 1/0")

    return convert


def _date_problem(value: Any) -> ValueProblem:
    return ValueProblem(
        f"{short(value)} is not a date; use ISO-8601, like 2016-11-22 or 2016-11-22T10:30:00Z"
    )


def _parse_iso(value: str) -> str | _Omit:
    text = value.strip()
    if not text:
        return OMIT
    try:
        if len(text) == 10 and _ISO_DATE.fullmatch(text):
            date.fromisoformat(text)  # validates the day of the month
            return text + "T00:00:00.000Z"
        if len(text) > 10 and text[10] in "Tt " and text.isascii():
            try:  # the C parser is fast; Python < 3.11 knows no "Z" and falls through to the pattern
                return _iso_utc(datetime.fromisoformat(text))
            except ValueError:
                pass
        match = _ISO_DATETIME.fullmatch(text)
        if match is None:
            raise _date_problem(value)
        return _iso_utc(_from_groups(match))
    except ValueError:
        raise _date_problem(value) from None


def _from_groups(match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        moment = moment.replace(tzinfo=timezone(offset if sign == "+" else -offset))
    return moment


def date_converter() -> Converter:
    """ISO-8601 UTC text (`2016-11-22T00:00:00.000Z`) from datetimes, dates and ISO-8601 text.

    Naive datetimes (and text without an offset) are taken as UTC; aware ones are converted to UTC.
    pandas Timestamps are datetimes. Numbers are refused: an epoch number's unit is a guess.
    """

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return _parse_iso(value)
        if kind is datetime:
            return _iso_utc(value)
        value = _unwrap(value)
        if value is OMIT:
            return OMIT
        if isinstance(value, datetime):
            return _iso_utc(value)
        if isinstance(value, date):
            return value.isoformat() + "T00:00:00.000Z"
        if isinstance(value, str):
            return _parse_iso(value)
        raise _date_problem(value)

    return convert
