"""A `FieldMapping` compiled into one small converter closure per field, and the per-row function.

Mapping a row is then a loop of dictionary lookups and closure calls; every problem of a row is collected
into one `Rejection`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._rejections import Rejection, RejectionReason
from .coerce import (
    OMIT,
    Converter,
    ValueProblem,
    boolean_converter,
    float_converter,
    integer_converter,
    short,
    text_converter,
)
from .dates import date_converter
from .emails import EmailError, fast_normalize_email, normalize_email

if TYPE_CHECKING:
    from .mapping import FieldMapping

__all__ = ["MappedContact", "base_converter", "compile_mapping", "row_mapper"]


@attrs.frozen
class MappedContact:
    """A row that maps to a valid contact: `payload` is the bulk-ready Autopilot contact (with "Email")."""

    row: int
    email: str
    payload: dict[str, Any]


@attrs.frozen
class _Problem:
    reason: RejectionReason
    column: str | None
    message: str


# One compiled field: (source column, key in the payload or in "custom", converter).
_Step = tuple[str, str, Converter]


def _with_transform(convert: Converter, transform: Callable[[Any], Any]) -> Converter:
    name = getattr(transform, "__name__", type(transform).__name__)

    def step(value: Any) -> Any:
        try:
            value = transform(value)
        except Exception as exc:
            raise ValueProblem(
                f"the transform {name} failed on {short(value)} ({type(exc).__name__}: {short(str(exc))})"
            ) from None
        return convert(value)

    return step


def _with_default(convert: Converter, default: Any) -> Converter:
    def step(value: Any) -> Any:
        result = convert(value)
        return default if result is OMIT else result

    return step


def _blank_when_empty(convert: Converter) -> Converter:
    def step(value: Any) -> Any:
        result = convert(value)
        return "" if result is OMIT else result

    return step


def _constant(value: Any) -> Converter:
    def step(_raw: Any) -> Any:
        return value

    return step


def base_converter(field_type: str, formats: Sequence[str] = ()) -> Converter:
    if field_type == "integer":
        return integer_converter()
    if field_type == "float":
        return float_converter()
    if field_type == "boolean":
        return boolean_converter()
    if field_type == "date":
        return date_converter(formats)
    return text_converter(max_length=None)


class _EmailProblem(Exception):
    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@attrs.frozen
class _Compiled:
    email_column: str
    email: Converter
    standard: tuple[_Step, ...]
    custom: tuple[_Step, ...]


def _unexpected(value: Any, exc: Exception) -> str:
    return f"{short(value)} could not be converted ({type(exc).__name__}); check the value"


def row_mapper(compiled: _Compiled) -> Callable[[Mapping[str, Any], int], MappedContact | Rejection]:
    """The per-row function: everything it needs is bound in closure cells, the fastest lookups."""
    email_column = compiled.email_column
    to_email = compiled.email
    standard = compiled.standard
    custom_steps = compiled.custom

    def map_one(row: Mapping[str, Any], row_number: int) -> MappedContact | Rejection:
        get = row.get
        problems: list[_Problem] | None = None
        email: str | None = None
        try:
            email = to_email(get(email_column))
        except _EmailProblem as exc:
            problems = [exc.problem]
        except Exception as exc:  # a safety net, as for the other columns
            message = f"column {email_column!r}: the email {_unexpected(get(email_column), exc)}"
            problems = [_Problem("invalid_email", email_column, message)]
        payload: dict[str, Any] = {"Email": email}
        for column, key, convert in standard:
            try:
                value = convert(get(column))
            except ValueProblem as exc:
                problems = _add(problems, column, str(exc))
                continue
            except Exception as exc:  # a safety net: one odd value must never stop an export
                problems = _add(problems, column, _unexpected(get(column), exc))
                continue
            if value is not OMIT:
                payload[key] = value
        if custom_steps:
            custom: dict[str, Any] = {}
            for column, key, convert in custom_steps:
                try:
                    value = convert(get(column))
                except ValueProblem as exc:
                    problems = _add(problems, column, str(exc))
                    continue
                except Exception as exc:
                    problems = _add(problems, column, _unexpected(get(column), exc))
                    continue
                if value is not OMIT:
                    custom[key] = value
            if custom:
                payload["custom"] = custom
        if problems is not None:
            return _rejection(
                row_number, email if email is not None else _raw_email(row, email_column), problems
            )
        return MappedContact(row_number, email, payload)  # type: ignore[arg-type]

    return map_one


def _add(problems: list[_Problem] | None, column: str, what: str) -> list[_Problem]:
    problem = _Problem("invalid_value", column, f"column {column!r}: {what}")
    if problems is None:
        return [problem]
    problems.append(problem)
    return problems


def _rejection(row: int, email: str | None, problems: list[_Problem]) -> Rejection:
    first = problems[0]
    if len(problems) == 1:
        message = first.message
    else:
        message = f"{len(problems)} problems: " + "; ".join(
            f"({n}) {p.message}" for n, p in enumerate(problems, 1)
        )
    return Rejection(row=row, email=email, reason=first.reason, message=message, field=first.column)


def _raw_email(row: Mapping[str, Any], column: str) -> str | None:
    raw = row.get(column)
    return raw.strip() or None if isinstance(raw, str) else None


_fast_email = fast_normalize_email


def _email_converter(mapping: FieldMapping) -> Converter:
    column = mapping.email
    lowercase = mapping.lowercase_local_part
    transform = mapping.transforms.get("Email")

    def missing() -> _EmailProblem:
        return _EmailProblem(
            _Problem(
                "missing_email",
                column,
                f"column {column!r}: the email address is missing; fill it in or remove the row",
            )
        )

    def invalid(raw: Any, what: str) -> _EmailProblem:
        return _EmailProblem(
            _Problem(
                "invalid_email",
                column,
                f"column {column!r}: the email {short(raw)} is not valid: {what}; correct the address",
            )
        )

    text = text_converter(max_length=None)
    fast = _fast_email if lowercase and transform is None else None

    def convert(raw: Any) -> str:
        if fast is not None and type(raw) is str:
            email = fast(raw)
            if email is not None:
                return email
        if transform is not None:
            try:
                raw = transform(raw)
            except Exception as exc:
                raise invalid(raw, f"the transform failed ({type(exc).__name__})") from None
        if type(raw) is not str:
            try:
                as_text = text(raw)
            except ValueProblem:
                raise invalid(raw, "it is not text") from None
            if as_text is OMIT:
                raise missing()
            if not isinstance(raw, (str, bytes)):
                raise invalid(raw, "it is not text")
            raw = as_text
        try:
            return normalize_email(raw, lowercase_local_part=lowercase)
        except EmailError as exc:
            if not raw.strip():
                raise missing() from None
            raise invalid(raw.strip(), str(exc)) from None

    return convert


def compile_mapping(mapping: FieldMapping) -> _Compiled:
    truncate = mapping.truncate_long_values
    standard: list[_Step] = []
    for field, column in mapping.fields.items():
        convert = text_converter(truncate=truncate)
        default = mapping.defaults.get(field)
        if default is not None:
            convert = _with_default(convert, text_converter(truncate=truncate)(default))
        elif not mapping.omit_empty:
            convert = _blank_when_empty(convert)
        transform = mapping.transforms.get(field)
        if transform is not None:
            convert = _with_transform(convert, transform)
        standard.append((column, field, convert))
    for field, default in mapping.defaults.items():
        if field not in mapping.fields and default is not None:
            # A default without a column: every contact gets the constant.
            value = text_converter(truncate=truncate)(default)
            standard.append(("\0no column", field, _constant(value)))
    if mapping.unsubscribed is not None:
        standard.append((mapping.unsubscribed, "unsubscribed", boolean_converter()))
    custom: list[_Step] = []
    for declared in mapping.custom:
        convert = base_converter(declared.type, declared.formats)
        if declared.default is not None:
            convert = _with_default(convert, convert(declared.default))
        elif not mapping.omit_empty and declared.type == "string":
            convert = _blank_when_empty(convert)
        transform = declared.transform or mapping.transforms.get(declared.key)
        if transform is not None:
            convert = _with_transform(convert, transform)
        custom.append((declared.column, declared.key, convert))
    return _Compiled(mapping.email, _email_converter(mapping), tuple(standard), tuple(custom))
