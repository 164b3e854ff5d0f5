"""`FieldMapping`: rows (any mapping of column -> value) to bulk-ready Autopilot contacts or `Rejection`s.

The configuration is checked once, completely, at construction (one `ConfigurationError` lists every
problem); then it is compiled into one small converter closure per field, so that mapping a row is a
loop of dictionary lookups and closure calls.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from .._destinations.autopilot.fields import STANDARD_FIELDS
from .._errors import ConfigurationError
from .._rejections import Rejection
from ..sources import rows_of
from .checks import configuration_problems
from .compiled import MappedContact, compile_mapping, row_mapper
from .dedupe import RowsByEmail
from .fields import CustomField
from .infer import infer_columns

__all__ = ["FieldMapping", "MappedContact"]

Keep = Literal["first", "last"]
_KEEP_CHOICES: Final = ("first", "last")
_MAPPABLE_FIELDS: Final = tuple(f for f in STANDARD_FIELDS if f != "Email")
_CONFIG_KEYS: Final = (
    "email",
    "fields",
    "custom",
    "defaults",
    "unsubscribed",
    "allow_resubscribe",
    "lowercase_local_part",
    "omit_empty",
    "truncate_long_values",
    "keep",
)
_CUSTOM_KEYS: Final = ("name", "type", "source", "default", "formats")
# How many of an input's column names an error message lists before "...".
_SHOWN_COLUMNS: Final = 30


def _as_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def _as_transforms(value: Mapping[str, Callable[[Any], Any]]) -> dict[str, Callable[[Any], Any]]:
    return dict(value)


def _as_tuple(value: Iterable[CustomField]) -> tuple[CustomField, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True, eq=True, hash=False)
class FieldMapping:
    """How source columns become an Autopilot contact. Frozen; checked completely at construction.

    - `email`: the column holding the email address (required).
    - `fields`: `{Autopilot standard field: source column}`, e.g. `{"FirstName": "first_name"}`.
    - `custom`: the custom fields, `[CustomField("Loyalty Points", "integer", source="points")]`.
    - `defaults`: `{standard field: value}` sent when the column's value is empty.
    - `transforms`: `{standard field, "Email" or custom key: callable}` applied to the raw value first.
      Transforms are code, so `to_dict()` leaves them out; pass them again to `from_dict()`.
    - `unsubscribed`: a column of true/false values sent as `unsubscribed`. Sending `false`
      re-subscribes people who opted out, so mapping it requires `allow_resubscribe=True`.
    - `lowercase_local_part`: lower-case the part before the @ too (default; Autopilot matches emails
      case-insensitively). The domain is always lower-cased.
    - `omit_empty`: leave empty values out of the contact (default) so an export never blanks a value
      already in Autopilot. With False, empty standard and string custom fields are sent as "".
    - `truncate_long_values`: cut standard fields longer than 255 characters instead of rejecting the row.
    - `keep`: which of several rows with the same email is exported by `map_rows`: "first" (default,
      streams) or "last" (reads the input twice, so it must be re-iterable).
    """

    email: str
    fields: Mapping[str, str] = attrs.field(factory=dict, converter=_as_dict)
    custom: Sequence[CustomField] = attrs.field(default=(), converter=_as_tuple)
    defaults: Mapping[str, Any] = attrs.field(factory=dict, converter=_as_dict)
    transforms: Mapping[str, Callable[[Any], Any]] = attrs.field(
        factory=dict, converter=_as_transforms, eq=False, repr=False
    )
    unsubscribed: str | None = None
    allow_resubscribe: bool = False
    lowercase_local_part: bool = True
    omit_empty: bool = True
    truncate_long_values: bool = False
    keep: Keep = "first"
    _map_one: Callable[[Mapping[str, Any], int], MappedContact | Rejection] = attrs.field(
        init=False, eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        problems = configuration_problems(self)
        if problems:
            raise ConfigurationError(problems)
        object.__setattr__(self, "_map_one", row_mapper(compile_mapping(self)))

    # --- mapping rows -------------------------------------------------------------------------------

    def map_row(self, row: Mapping[str, Any], row_number: int) -> MappedContact | Rejection:
        """One row as a contact, or a `Rejection` listing every problem found in it (no duplicate check).

        With several problems, the rejection's `reason` and `field` are those of the first one (the email
        is checked first) and its message lists them all.
        """
        return self._map_one(row, row_number)

    def map_rows(self, rows: object) -> Iterator[MappedContact | Rejection]:
        """Every row, in order, numbered from 1, as a contact or a `Rejection`; duplicates are rejected.

        `rows` is an iterable of mappings or a tabular object (a pandas or Polars DataFrame, a pyarrow
        Table, a DuckDB relation, a Spark DataFrame, a DB-API cursor...: see `sources.rows_of`),
        streamed a batch at a time; anything else is a `TypeError` saying what to pass.

        Streams with `keep="first"`. With `keep="last"` the input is read twice (first to find each
        email's last good row), so `rows` must be re-iterable (a list, a data frame, a table...); a
        one-shot iterator, reader or cursor raises `ConfigurationError`.
        """
        rows = rows_of(rows)
        if self.keep == "last":
            if isinstance(rows, Iterator):  # one-shot: iter(rows) is rows; asked without calling iter()
                raise ConfigurationError(
                    "keep='last' reads the rows twice, but a one-shot iterator was given; pass a list or "
                    "another re-iterable object, or use keep='first'"
                )
            return self._map_rows_last_wins(rows)
        return self._map_rows_first_wins(rows)

    @property
    def source_columns(self) -> tuple[str, ...]:
        """Every input column the mapping reads, email first, each once."""
        columns = [self.email, *self.fields.values()]
        if self.unsubscribed is not None:
            columns.append(self.unsubscribed)
        columns.extend(field.column for field in self.custom)
        return tuple(dict.fromkeys(columns))

    def required_columns(self) -> dict[str, str]:
        """The columns every input must have, each with what reads it: `{"email": "the email", ...}`.

        A column whose field has a default (`defaults`, `CustomField(default=...)`) may be absent, so it
        is not required: the default applies (an empty default, e.g. `defaults={"Phone": ""}`, sends
        nothing). That is the way to map a key that rows may leave out, such as in sparse JSON Lines.
        """
        wanted: dict[str, str] = {self.email: "the email"}
        for field, column in self.fields.items():
            if field not in self.defaults or self.defaults[field] is None:
                wanted.setdefault(column, field)
        if self.unsubscribed is not None:
            wanted.setdefault(self.unsubscribed, "unsubscribed")
        for declared in self.custom:
            if declared.default is None:
                wanted.setdefault(declared.column, f"custom field {declared.name!r}")
        return wanted

    def check_columns(self, columns: Iterable[str]) -> None:
        """Raise `ConfigurationError` if `columns` (an input's column names) lack a required column.

        The message names the missing columns, what reads each, and the columns there are (names only,
        never values). `Exporter.export` and `plan`, and `map_rows`, run this on the first row before
        anything else happens; call it yourself to check a source's header up front.
        """
        present = list(dict.fromkeys(str(c) for c in columns))
        known = set(present)
        missing = [(column, what) for column, what in self.required_columns().items() if column not in known]
        if not missing:
            return
        named = ", ".join(f"{column!r} ({what})" for column, what in missing)
        shown = ", ".join(present[:_SHOWN_COLUMNS]) + (", ..." if len(present) > _SHOWN_COLUMNS else "")
        hints = []
        for column, _what in missing:
            close = difflib.get_close_matches(column, present, n=1, cutoff=0.6)
            if not close:
                lowered = {c.lower(): c for c in present}
                close = [lowered[column.lower()]] if column.lower() in lowered else []
            if close:
                hints.append(f"{close[0]!r} for {column!r}")
        hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ConfigurationError(
            f"the mapping reads column(s) {named}, which the first row does not have{hint}; "
            f"the columns are {shown or 'none'}. Fix the column names in the mapping, or give a "
            "field a default if rows may leave its column out"
        )

    def _first_row_checked(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """`rows` unchanged, after `check_columns` on the first row (raises before yielding it).

        A misspelt column is otherwise silent: every row is rejected as missing_email, or a field is
        never sent. The message carries column names only, no personal data.
        """
        iterator = iter(rows)
        for first in iterator:
            if isinstance(first, Mapping):
                self.check_columns(first.keys())
            yield first
            break
        yield from iterator

    def _map_rows_first_wins(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[MappedContact | Rejection]:
        seen = RowsByEmail.for_size(_size_hint(rows))
        setdefault = seen.setdefault
        map_row = self._map_one
        fold = self.lowercase_local_part is False  # Autopilot matches emails case-insensitively
        for number, row in enumerate(self._first_row_checked(rows), 1):
            result = map_row(row, number)
            if type(result) is MappedContact:
                kept = setdefault(result.email.lower() if fold else result.email, number)
                if kept != number:
                    result = _duplicate(number, result.email, kept, "first")
            yield result

    def _map_rows_last_wins(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[MappedContact | Rejection]:
        last = RowsByEmail.for_size(_size_hint(rows))
        map_row = self._map_one
        fold = self.lowercase_local_part is False  # Autopilot matches emails case-insensitively
        for number, row in enumerate(self._first_row_checked(rows), 1):
            result = map_row(row, number)
            if type(result) is MappedContact:
                last.set(result.email.lower() if fold else result.email, number)
        for number, row in enumerate(rows, 1):
            result = map_row(row, number)
            if type(result) is MappedContact:
                kept = last.get(result.email.lower() if fold else result.email)
                if kept is not None and kept != number:
                    result = _duplicate(number, result.email, kept, "last")
            yield result

    # --- serialisation ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data for a JSON or TOML file. Transforms (code) are left out."""
        custom = []
        for field in self.custom:
            item: dict[str, Any] = {"name": field.name, "type": field.type}
            if field.source is not None:
                item["source"] = field.source
            if field.default is not None:
                item["default"] = field.default
            if field.formats:
                item["formats"] = list(field.formats)
            custom.append(item)
        data: dict[str, Any] = {
            "email": self.email,
            "fields": dict(self.fields),
            "custom": custom,
            "defaults": dict(self.defaults),
            "allow_resubscribe": self.allow_resubscribe,
            "lowercase_local_part": self.lowercase_local_part,
            "omit_empty": self.omit_empty,
            "truncate_long_values": self.truncate_long_values,
            "keep": self.keep,
        }
        if self.unsubscribed is not None:  # TOML has no null
            data["unsubscribed"] = self.unsubscribed
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, transforms: Mapping[str, Callable[[Any], Any]] | None = None
    ) -> FieldMapping:
        """A mapping from `to_dict()`-shaped data (e.g. a parsed JSON or TOML file); transforms come
        separately, keyed by standard field name, "Email" or custom field key.

        Every problem (unknown keys, wrong types, and everything the constructor checks) is listed in one
        `ConfigurationError`.
        """
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"a mapping configuration must be a table/object, not {type(data).__name__}"
            )
        for key in data:
            if key not in _CONFIG_KEYS:
                problems.append(_unknown_key_problem(key, _CONFIG_KEYS, "mapping option"))
        custom: list[CustomField] = []
        raw_custom = data.get("custom", ())
        if not isinstance(raw_custom, Sequence) or isinstance(raw_custom, str):
            problems.append(
                "'custom' must be a list of tables with name, type and optionally source, default and formats"
            )
            raw_custom = ()
        for position, item in enumerate(raw_custom, 1):
            if not isinstance(item, Mapping):
                problems.append(f"custom field #{position} must be a table with name and type")
                continue
            for key in item:
                if key not in _CUSTOM_KEYS:
                    problems.append(
                        _unknown_key_problem(key, _CUSTOM_KEYS, f"key in custom field #{position}")
                    )
            if "name" not in item or "type" not in item:
                problems.append(f"custom field #{position} needs both a 'name' and a 'type'")
                continue
            custom.append(
                CustomField(
                    item["name"],
                    item["type"],
                    source=item.get("source"),
                    default=item.get("default"),
                    formats=item.get("formats"),
                )
            )
        options = {key: data[key] for key in _CONFIG_KEYS if key in data and key != "custom"}
        options.setdefault("email", "")
        for table in ("fields", "defaults"):
            if table in options and not isinstance(options[table], Mapping):
                problems.append(f"{table!r} must be a table/object of standard field names")
                del options[table]
        try:
            mapping = cls(custom=custom, transforms=dict(transforms or {}), **options)
        except ConfigurationError as exc:
            raise ConfigurationError([*problems, *exc.problems]) from None
        if problems:
            raise ConfigurationError(problems)
        return mapping

    @classmethod
    def infer(cls, columns: Iterable[str], **options: Any) -> FieldMapping:
        """A mapping proposed from common column names ("e-mail", "first_name", "surname", "zip"...).

        Names are matched case- and separator-insensitively. Custom fields are never guessed; `options`
        are passed on to the constructor. Raises `ConfigurationError` when no column looks like an email.
        """
        columns = list(columns)
        guessed = infer_columns(columns)
        email = guessed.pop("Email", None)
        if email is None:
            shown = ", ".join(repr(c) for c in columns[:20]) or "none"
            raise ConfigurationError(
                f"no email column found among the columns ({shown}); name it 'email' or build the "
                "FieldMapping yourself with email=<column>"
            )
        return cls(email=email, fields=guessed, **options)


def _size_hint(rows: Iterable[object]) -> int:
    try:
        return len(rows)  # type: ignore[arg-type]
    except Exception:
        return 0


def _duplicate(row: int, email: str, kept: int, keep: Keep) -> Rejection:
    which = "first" if keep == "first" else "last"
    return Rejection(
        row=row,
        email=email,
        reason="duplicate_email",
        message=(
            f"the email {email} also appears in row {kept}, which is exported instead (the {which} row "
            "with an email wins); remove or merge the duplicate rows"
        ),
    )


def _unknown_key_problem(key: object, known: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known)}"
    return f"unknown {what} {key!r}{hint}"
