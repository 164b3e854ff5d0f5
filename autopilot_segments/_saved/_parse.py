"""Reading an export file: TOML tables into `Connection`, `Database`, `SegmentSpec` and `SavedExport`.

Every problem is collected, each with the file, the table it is in and what to fix, and raised as one
`ConfigurationError` at load time: nothing is opened or sent before the whole file is known to be good.
"""

from __future__ import annotations

import difflib
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .._errors import ConfigurationError
from .._mapping.mapping import FieldMapping
from .._toml import read_toml
from ._model import Connection, Database, ExportSettings, SegmentSpec

__all__ = ["ParsedFile", "parse_export_file"]

_TOP_KEYS: Final = ("connections", "databases", "exports")
_CONNECTION_KEYS: Final = (
    "destination",
    "region",
    "api_key_env",
    "api_key_file",
    "base_url",
    "requests_per_second",
    "timeout",
    "max_retries",
)
_DATABASE_KEYS: Final = ("url", "url_env")
_EXPORT_KEYS: Final = (
    "connection",
    "mapping",
    "state",
    "on_leave",
    "max_removal_fraction",
    "max_profiles",
    "concurrency",
    "segments",
)
_SEGMENT_KEYS: Final = (
    "name",
    "source",
    "entity",
    "encoding",
    "delimiter",
    "query",
    "database",
    "filter_column",
    "values",
    "title",
)
# Keys someone would use to put the key itself into the file.
_LITERAL_KEY_NAMES: Final = ("api_key", "apikey", "key", "autopilotapikey", "token", "secret", "password")
_LOOKS_LIKE_KEY = re.compile(r"[0-9a-fA-F]{32}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_EXPORT_PROFILES_DEFAULT: Final = 100_000


class ParsedFile:
    """What `parse_export_file` found: the connections, databases and the exports' parts."""

    def __init__(
        self,
        path: Path,
        connections: dict[str, Connection],
        databases: dict[str, Database],
        exports: dict[str, tuple[Connection, ExportSettings, tuple[SegmentSpec, ...]]],
    ) -> None:
        self.path = path
        self.connections = connections
        self.databases = databases
        self.exports = exports


class _Problems:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{self.path}: [{where}] {what}")

    def unknown_keys(self, table: Mapping[str, Any], known: Sequence[str], where: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                self.add(where, f"unknown key {key!r}; {hint}")


def parse_export_file(path: Path) -> ParsedFile:
    data = read_toml(path, what="export file")
    problems = _Problems(path)
    base = path.parent
    problems.unknown_keys(data, _TOP_KEYS, "top level")
    connections = {
        name: conn
        for name, table in _tables(data, "connections", problems).items()
        if (conn := _connection(name, table, base, problems)) is not None
    }
    databases = {
        name: db
        for name, table in _tables(data, "databases", problems).items()
        if (db := _database(name, table, base, problems)) is not None
    }
    raw_exports = _tables(data, "exports", problems)
    if not raw_exports and "exports" not in data:
        problems.add("top level", "no exports: add at least one [exports.NAME] table")
    if not connections and "connections" not in data:
        problems.add(
            "top level", 'no connections: add [connections.NAME] with api_key_env = "AUTOPILOT_API_KEY"'
        )
    exports = {}
    for name, table in raw_exports.items():
        parsed = _export(name, table, base, connections, databases, problems)
        if parsed is not None:
            exports[name] = parsed
    if problems.items:
        raise ConfigurationError(problems.items)
    return ParsedFile(path, connections, databases, exports)


def _tables(data: Mapping[str, Any], key: str, problems: _Problems) -> dict[str, Mapping[str, Any]]:
    raw = data.get(key, {})
    if not isinstance(raw, Mapping):
        problems.add(key, f"{key!r} must be a table of named tables, e.g. [{key}.NAME]")
        return {}
    tables = {}
    for name, table in raw.items():
        if not isinstance(table, Mapping):
            problems.add(f"{key}.{name}", f"must be a table, e.g. [{key}.{name}] with its keys below it")
            continue
        tables[str(name)] = table
    return tables


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    problems: _Problems,
    *,
    expected: str,
    check: Callable[[Any], bool] | None = None,
) -> Any:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        problems.add(where, f"{key} must be {expected}, not a boolean")
        return None
    if not isinstance(value, kind) or (check is not None and not check(value)):
        problems.add(where, f"{key} must be {expected}")
        return None
    return value


def _non_empty(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _connection(name: str, table: Mapping[str, Any], base: Path, problems: _Problems) -> Connection | None:
    where = f"connections.{name}"
    before = len(problems.items)
    for key in table:
        if str(key).lower().replace("-", "_") in _LITERAL_KEY_NAMES:
            # Never echo the value: it may be the key itself.
            problems.add(
                where,
                f"{key!r}: the API key must never be written into the export file (it would end up in "
                'version control): use api_key_env = "AUTOPILOT_API_KEY" (an environment variable\'s '
                'name) or api_key_file = "PATH" (a file holding only the key) instead',
            )
    problems.unknown_keys(
        {k: v for k, v in table.items() if str(k).lower().replace("-", "_") not in _LITERAL_KEY_NAMES},
        _CONNECTION_KEYS,
        where,
    )
    for key, value in table.items():
        if isinstance(value, str) and _LOOKS_LIKE_KEY.search(value) and key != "base_url":
            problems.add(
                where,
                f"{key}: the value looks like an API key itself; the file must only say where the key "
                "comes from (an environment variable's name, or a key file's path)",
            )
    env = _get(
        table, "api_key_env", str, where, problems,
        expected='an environment variable\'s name, e.g. "AUTOPILOT_API_KEY"',
        check=lambda v: bool(_ENV_NAME.fullmatch(v)) and not _LOOKS_LIKE_KEY.search(v),
    )  # fmt: skip
    key_file = _get(table, "api_key_file", str, where, problems, expected="a path", check=_non_empty)
    if env is not None and key_file is not None:
        problems.add(where, "give either api_key_env or api_key_file, not both")
    if env is None and key_file is None and "api_key_env" not in table and "api_key_file" not in table:
        problems.add(
            where,
            'say where the API key comes from: api_key_env = "AUTOPILOT_API_KEY" or api_key_file = "PATH"',
        )
    base_url = _get(table, "base_url", str, where, problems, expected="a URL string", check=_non_empty)
    destination = _get(
        table, "destination", str, where, problems, expected='"autopilot" or "ortto"',
        check=lambda v: v in ("autopilot", "ortto"),
    )  # fmt: skip
    region = _get(
        table, "region", str, where, problems, expected='"default", "au" or "eu" (Ortto\'s regions)',
        check=lambda v: v in ("default", "au", "eu"),
    )  # fmt: skip
    if region is not None and destination != "ortto":
        problems.add(where, 'region is Ortto\'s: add destination = "ortto" (or drop region)')
    if region is not None and base_url is not None:
        problems.add(where, "give region or base_url, not both (the region only picks Ortto's host)")
    rate = _get(
        table, "requests_per_second", (int, float), where, problems, expected="a number > 0",
        check=lambda v: v > 0,
    )  # fmt: skip
    timeout = _get(
        table, "timeout", (int, float), where, problems, expected="seconds > 0", check=lambda v: v > 0
    )
    retries = _get(
        table, "max_retries", int, where, problems, expected="an integer >= 0", check=lambda v: v >= 0
    )
    if len(problems.items) > before:
        return None
    return Connection(
        name=name,
        api_key_env=env if key_file is None else None,
        api_key_file=None if key_file is None else base / key_file,
        base_url=base_url,
        destination="ortto" if destination == "ortto" else "autopilot",
        region=region,
        requests_per_second=float(rate if rate is not None else (10.0 if destination == "ortto" else 5.0)),
        timeout=float(timeout if timeout is not None else 30.0),
        max_retries=int(retries if retries is not None else 5),
    )


def _database(name: str, table: Mapping[str, Any], base: Path, problems: _Problems) -> Database | None:
    where = f"databases.{name}"
    before = len(problems.items)
    problems.unknown_keys(table, _DATABASE_KEYS, where)
    url = _get(table, "url", str, where, problems, expected="a SQLAlchemy URL string", check=_non_empty)
    url_env = _get(
        table, "url_env", str, where, problems, expected="an environment variable's name",
        check=lambda v: bool(_ENV_NAME.fullmatch(v)),
    )  # fmt: skip
    if (url is None) == (url_env is None) and len(problems.items) == before:
        problems.add(where, 'give either url = "sqlite:///shop.db" or url_env = "SHOP_DB_URL" (one of them)')
    if url is not None:
        try:
            password = urllib.parse.urlsplit(url).password
        except ValueError:
            password = None
        if password:
            problems.add(
                where,
                "url holds a password, which must not be written into the export file: put the whole "
                'URL in an environment variable and say url_env = "NAME" instead',
            )
        url = _resolve_sqlite(url, base)
    if len(problems.items) > before:
        return None
    return Database(name=name, url=url, url_env=url_env)


def _resolve_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path is relative to the export file, like every other path in it."""
    prefix = "sqlite:///"
    if (
        url.startswith(prefix)
        and not url.startswith(prefix + "/")
        and url[len(prefix) :] not in ("", ":memory:")
    ):
        return prefix + str((base / url[len(prefix) :]).resolve())
    return url


def _export(
    name: str,
    table: Mapping[str, Any],
    base: Path,
    connections: Mapping[str, Connection],
    databases: Mapping[str, Database],
    problems: _Problems,
) -> tuple[Connection, ExportSettings, tuple[SegmentSpec, ...]] | None:
    where = f"exports.{name}"
    before = len(problems.items)
    problems.unknown_keys(table, _EXPORT_KEYS, where)
    connection = _export_connection(table, where, connections, problems)
    mapping = _mapping(table.get("mapping"), where, base, problems)
    state = _get(table, "state", str, where, problems, expected="a path", check=_non_empty)
    on_leave = _get(
        table,
        "on_leave",
        str,
        where,
        problems,
        expected='"keep" or "remove"',
        check=lambda v: v in ("keep", "remove"),
    )
    if on_leave == "remove" and state is None:
        problems.add(where, 'on_leave = "remove" needs state = "PATH": the state remembers who was exported')
    fraction = _get(
        table, "max_removal_fraction", (int, float), where, problems, expected="a fraction between 0 and 1",
        check=lambda v: 0 <= v <= 1,
    )  # fmt: skip
    if fraction is not None and on_leave != "remove":
        problems.add(where, 'max_removal_fraction only applies with on_leave = "remove"')
    cap = _get(
        table,
        "max_profiles",
        int,
        where,
        problems,
        expected="an integer >= 0 (0: no cap)",
        check=lambda v: v >= 0,
    )
    concurrency = _get(
        table, "concurrency", int, where, problems, expected="an integer >= 1", check=lambda v: v >= 1
    )
    segments = _segments(table.get("segments"), where, base, databases, problems)
    if len(problems.items) > before or connection is None or mapping is None:
        return None
    settings = ExportSettings(
        mapping=mapping,
        state=None if state is None else base / state,
        on_leave=on_leave or "keep",
        max_removal_fraction=None if fraction is None else float(fraction),
        max_profiles=_MAX_EXPORT_PROFILES_DEFAULT if cap is None else (cap or None),
        concurrency=concurrency,
    )
    return connection, settings, segments


def _export_connection(
    table: Mapping[str, Any], where: str, connections: Mapping[str, Connection], problems: _Problems
) -> Connection | None:
    name = table.get("connection")
    if name is None:
        if len(connections) == 1:
            return next(iter(connections.values()))
        problems.add(
            where,
            "say which connection to use: connection = one of "
            + (", ".join(map(repr, connections)) or "none defined"),
        )
        return None
    if not isinstance(name, str) or name not in connections:
        close = difflib.get_close_matches(str(name), list(connections), n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"defined: {', '.join(map(repr, connections)) or 'none'}"
        )
        problems.add(where, f"connection {name!r} is not defined in [connections]; {hint}")
        return None
    return connections[name]


def _mapping(value: Any, where: str, base: Path, problems: _Problems) -> FieldMapping | None:
    if value is None:
        problems.add(
            where, 'no mapping: mapping = "mapping.toml" (a file) or an inline [exports.NAME.mapping] table'
        )
        return None
    if isinstance(value, str):
        path = base / value
        try:
            data: Any = _read_mapping_file(path)
            if not isinstance(data, Mapping):
                raise ConfigurationError(f"the mapping file {path} must hold a table/object")
            return FieldMapping.from_dict(data)
        except ConfigurationError as exc:
            for problem in exc.problems:
                problems.add(f"{where}.mapping", problem)
            return None
    if isinstance(value, Mapping):
        try:
            return FieldMapping.from_dict(value)
        except ConfigurationError as exc:
            for problem in exc.problems:
                problems.add(f"{where}.mapping", problem)
            return None
    problems.add(where, "mapping must be a file path or an inline table")
    return None


def _read_mapping_file(path: Path) -> Any:
    if path.suffix.lower() == ".toml":
        return read_toml(path, what="mapping file")
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read the mapping file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigurationError(f"the mapping file {path} is not valid JSON: {exc}") from None


def _segments(
    value: Any, where: str, base: Path, databases: Mapping[str, Database], problems: _Problems
) -> tuple[SegmentSpec, ...]:
    if value is None or (isinstance(value, Sequence) and not isinstance(value, str) and not value):
        problems.add(where, f"no segments: add [[{where}.segments]] tables, each with a name and a source")
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        problems.add(where, f"segments must be an array of tables: [[{where}.segments]]")
        return ()
    specs: list[SegmentSpec] = []
    titles: dict[str, int] = {}
    for position, table in enumerate(value, 1):
        here = f"{where}.segments #{position}"
        if not isinstance(table, Mapping):
            problems.add(here, "must be a table with a name and a source")
            continue
        spec = _segment(table, here, base, databases, problems)
        if spec is None:
            continue
        if spec.name is not None:
            if spec.name in titles:
                problems.add(here, f"segment name {spec.name!r} is used twice (also #{titles[spec.name]})")
            titles.setdefault(spec.name, position)
        specs.append(spec)
    return tuple(specs)


def _segment(
    table: Mapping[str, Any], where: str, base: Path, databases: Mapping[str, Database], problems: _Problems
) -> SegmentSpec | None:
    before = len(problems.items)
    problems.unknown_keys(table, _SEGMENT_KEYS, where)

    def text(key: str) -> str | None:
        value: str | None = _get(
            table, key, str, where, problems, expected="a non-empty string", check=_non_empty
        )
        return value

    name, source, query = text("name"), text("source"), text("query")
    database_name, filter_column = text("database"), text("filter_column")
    options = {key: text(key) for key in ("entity", "encoding", "delimiter")}
    title = _get(
        table, "title", str, where, problems, expected='a string with "{value}" in it',
        check=lambda v: "{value}" in v,
    )  # fmt: skip
    values = _get(
        table, "values", list, where, problems, expected="a non-empty array of strings",
        check=lambda v: bool(v) and all(isinstance(x, str) and x for x in v),
    )  # fmt: skip
    if (source is None) == (query is None):
        problems.add(where, 'give one source: source = "PATH" (a file or CDM folder) or query = "SELECT ..."')
    database = None
    if query is not None:
        if database_name is None:
            problems.add(
                where,
                "a query needs database = one of "
                + (", ".join(map(repr, databases)) or "none defined (add a [databases.NAME] table)"),
            )
        elif database_name not in databases:
            close = difflib.get_close_matches(database_name, list(databases), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"defined: {', '.join(map(repr, databases)) or 'none'}"
            )
            problems.add(where, f"database {database_name!r} is not defined in [databases]; {hint}")
        else:
            database = databases[database_name]
        if any(options.values()):
            problems.add(where, "entity, encoding and delimiter apply to files, not to a query")
    elif database_name is not None:
        problems.add(where, "database only applies to a query")
    if filter_column is None:
        if name is None:
            problems.add(where, 'name the segment (the list\'s title): name = "VIP customers"')
        if values is not None or title is not None:
            problems.add(where, "values and title only apply with filter_column")
    elif name is not None:
        problems.add(
            where,
            'with filter_column the column\'s values name the segments: drop name (title = "... {value}" '
            "sets the lists' titles)",
        )
    if len(problems.items) > before:
        return None
    return SegmentSpec(
        name=name,
        source=None if source is None else base / source,
        query=query,
        database=database,
        filter_column=filter_column,
        values=None if values is None else tuple(dict.fromkeys(values)),
        title=title or "{value}",
        **options,
    )
