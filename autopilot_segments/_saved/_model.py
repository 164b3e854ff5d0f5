"""The value objects of an export file: connections, databases, segment sources and saved exports."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from .._errors import ConfigurationError
from .._mapping.mapping import FieldMapping

__all__ = ["Connection", "Database", "SegmentSpec"]

OnLeave = Literal["keep", "remove"]
Destination = Literal["autopilot", "ortto"]


@attrs.frozen(kw_only=True)
class Connection:
    """Where an export sends its contacts: the key's origin (never the key), the base URL, the rate.

    Exactly one of `api_key_env` (an environment variable's name) and `api_key_file` (a file holding
    only the key) is set. `base_url` None means: `AUTOPILOT_BASE_URL` if set, else Autopilot's API.
    `destination` is "autopilot" (default) or "ortto"; for Ortto, `region` ("default", "au", "eu",
    None: `ORTTO_REGION`, else default) picks the host unless `base_url` (or `ORTTO_BASE_URL`) is set.
    """

    name: str
    api_key_env: str | None = None
    api_key_file: Path | None = None
    base_url: str | None = None
    destination: Destination = "autopilot"
    region: str | None = None
    requests_per_second: float = 5.0
    timeout: float = 30.0
    max_retries: int = 5

    def api_key(self) -> str:
        """Read the key now; `ConfigurationError` saying what to set (never echoing a value)."""
        where = f"connection {self.name!r}"
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text(encoding="utf-8-sig").strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"{where}: cannot read the API key file {self.api_key_file}: {exc.strerror or exc}"
                ) from None
            except UnicodeDecodeError:
                raise ConfigurationError(
                    f"{where}: the API key file {self.api_key_file} is not text"
                ) from None
            if not key or any(ch.isspace() for ch in key):
                raise ConfigurationError(
                    f"{where}: the API key file {self.api_key_file} must hold only the key, on one line"
                )
            return key
        assert self.api_key_env is not None
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise ConfigurationError(
                f"{where}: no API key: the environment variable {self.api_key_env} is not set (or empty)"
            )
        return key

    @property
    def has_key(self) -> bool:
        """Whether a key is at hand, without reading or checking it."""
        if self.api_key_file is not None:
            return self.api_key_file.is_file()
        return bool(os.environ.get(self.api_key_env or "", "").strip())


@attrs.frozen(kw_only=True)
class Database:
    """A database that SQL segments query: a SQLAlchemy URL, given without a password or read from
    an environment variable (`url_env`) so that no password is written into the export file."""

    name: str
    url: str | None = None
    url_env: str | None = None

    def resolve_url(self) -> str:
        if self.url is not None:
            return self.url
        assert self.url_env is not None
        url = os.environ.get(self.url_env, "").strip()
        if not url:
            raise ConfigurationError(
                f"database {self.name!r}: the environment variable {self.url_env} is not set (or empty)"
            )
        return url


@attrs.frozen(kw_only=True)
class SegmentSpec:
    """Where one segment's rows come from (or several segments', split by `filter_column`).

    A file (`source`, opened with `sources.open_source`; `entity`, `encoding`, `delimiter` as there)
    or a SQL `query` on a named `database`. With `filter_column`, each distinct value of that column
    is a segment, titled `title` with `{value}` replaced (only the `values` listed, when given).
    """

    name: str | None = None
    source: Path | None = None
    entity: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    query: str | None = None
    database: Database | None = None
    filter_column: str | None = None
    values: tuple[str, ...] | None = None
    title: str = "{value}"

    @property
    def describe(self) -> str:
        """The source in a few words, for messages (never a database URL)."""
        if self.query is not None:
            assert self.database is not None
            return f"the query on database {self.database.name!r}"
        return str(self.source)

    def title_for(self, value: str) -> str:
        return self.title.replace("{value}", value)


def _frozen_mapping(value: Mapping[str, Database]) -> Mapping[str, Database]:
    return dict(value)


@attrs.frozen(kw_only=True)
class ExportSettings:
    """An export's options for the `Exporter` (the cap, the state, the leaver policy...)."""

    mapping: FieldMapping
    state: Path | None = None
    on_leave: OnLeave = "keep"
    max_removal_fraction: float | None = None
    max_profiles: int | None = 100_000
    concurrency: int | None = None
