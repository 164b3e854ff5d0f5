"""Running a saved export: its lock, one client per connection, each segment through one `Exporter`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .._destinations.autopilot.client import AutopilotClient
from .._destinations.ortto.client import OrttoClient
from .._errors import AuthenticationError, ConfigurationError, PermissionDeniedError
from .._export import Exporter
from .._progress import ProgressCallback
from .._report import ExportReport
from ._lock import run_lock
from ._model import Connection, SegmentSpec
from ._result import SavedRun
from ._rows import open_rows, partition

if TYPE_CHECKING:
    from ._exports import SavedExport

__all__ = ["Client", "make_client", "run_export"]

Client = AutopilotClient | OrttoClient
# Stands in for a key in a dry run without one: plan() sends nothing, so the key is never used.
_PLACEHOLDER_KEY = "0" * 32
_ORTTO_PLACEHOLDER_KEY = "pk-" + "0" * 32


def make_client(
    connection: Connection, *, base_url: str | None = None, placeholder_key: bool = False
) -> Client:
    """A client for `connection`. Base URL: `base_url` > `AUTOPILOT_BASE_URL` (Ortto: `ORTTO_BASE_URL`)
    > the file's > default (Ortto: the connection's region, else `ORTTO_REGION`, else default)."""
    ortto = connection.destination == "ortto"
    key = (_ORTTO_PLACEHOLDER_KEY if ortto else _PLACEHOLDER_KEY) if placeholder_key else connection.api_key()
    options: dict[str, Any] = {}
    url = base_url or (None if _env_base_url(ortto) else connection.base_url)
    if url:
        options["base_url"] = url
    if ortto:
        if connection.region is not None and "base_url" not in options and not _env_base_url(ortto):
            options["region"] = connection.region
        return OrttoClient(
            key,
            requests_per_second=connection.requests_per_second,
            timeout=(min(5.0, connection.timeout), connection.timeout),
            max_retries=connection.max_retries,
            **options,
        )
    return AutopilotClient(
        key,
        requests_per_second=connection.requests_per_second,
        timeout=(min(5.0, connection.timeout), connection.timeout),
        max_retries=connection.max_retries,
        **options,
    )


def _env_base_url(ortto: bool = False) -> bool:
    import os

    from .._destinations.autopilot.client import BASE_URL_ENV
    from .._destinations.ortto.client import BASE_URL_ENV as ORTTO_BASE_URL_ENV

    return bool(os.environ.get(ORTTO_BASE_URL_ENV if ortto else BASE_URL_ENV, "").strip())


def run_export(
    export: SavedExport,
    *,
    client: Client | None = None,
    base_url: str | None = None,
    dry_run: bool = False,
    full: bool = False,
    force: bool = False,
    on_progress: ProgressCallback | None = None,
) -> SavedRun:
    with run_lock(export.lock_path, f"export {export.name!r}"), contextlib.ExitStack() as stack:
        if client is None:
            # A dry run makes no API call: without a key at hand it needs none, except with a state
            # (kept per account, and the account is known by its key).
            placeholder = dry_run and export.settings.state is None and not export.connection.has_key
            client = make_client(export.connection, base_url=base_url, placeholder_key=placeholder)
            stack.callback(client.close)
        return _run_segments(export, client, dry_run=dry_run, full=full, force=force, on_progress=on_progress)
    raise AssertionError("unreachable")  # pragma: no cover


def _exporter(export: SavedExport, client: Client, on_progress: ProgressCallback | None) -> Exporter:
    settings = export.settings
    options: dict[str, Any] = {"max_profiles": settings.max_profiles, "concurrency": settings.concurrency}
    if settings.state is not None:
        options["state"] = settings.state
        options["on_leave"] = settings.on_leave
    if settings.max_removal_fraction is not None:
        options["max_removal_fraction"] = settings.max_removal_fraction
    return Exporter(client, settings.mapping, on_progress=on_progress, **options)


def _run_segments(
    export: SavedExport,
    client: Client,
    *,
    dry_run: bool,
    full: bool,
    force: bool,
    on_progress: ProgressCallback | None,
) -> SavedRun:
    exporter = _exporter(export, client, on_progress)
    reports: dict[str, ExportReport] = {}
    errors: dict[str, BaseException] = {}
    notes: list[str] = []
    refused: BaseException | None = None  # a 401/403: every later segment would be refused too

    def export_one(title: str, rows: Iterable[Mapping[str, Any]]) -> None:
        nonlocal refused
        if title in reports or title in errors:
            errors[title + " (again)"] = ConfigurationError(
                f"two segments of export {export.name!r} are titled {title!r}; each list needs its own"
            )
            return
        if refused is not None:
            errors[title] = refused
            return
        try:
            if dry_run:
                reports[title] = exporter.plan(rows, segment=title)
            else:
                reports[title] = exporter.export(rows, segment=title, full=full, force=force)
        except (AuthenticationError, PermissionDeniedError) as error:
            refused = error
            errors[title] = error
        except Exception as error:  # one segment failing does not stop the others
            errors[title] = error

    for spec in export.segments:
        for title, rows in _segments_of(spec, notes, errors):
            export_one(title, rows)
    return SavedRun(export=export.name, dry_run=dry_run, reports=reports, errors=errors, notes=tuple(notes))


def _segments_of(
    spec: SegmentSpec, notes: list[str], errors: dict[str, BaseException]
) -> Iterator[tuple[str, Iterable[Mapping[str, Any]]]]:
    """Each (title, rows) of `spec`, opened lazily one at a time; a source that fails is an error."""
    if spec.filter_column is None:
        assert spec.name is not None
        try:
            with open_rows(spec) as rows:
                yield spec.name, rows
        except GeneratorExit:
            raise
        except Exception as error:
            if spec.name not in errors:
                errors[spec.name] = error
        return
    label = f"{spec.filter_column} of {spec.describe}"
    try:
        with partition(spec) as split:
            if split.rows_without_segment:
                wanted = "or not one of the values listed" if spec.values is not None else ""
                notes.append(
                    f"{split.rows_without_segment:,} of the {split.rows_read:,} rows of {spec.describe} "
                    f"are in no segment: their {spec.filter_column!r} is empty {wanted}".rstrip()
                )
            for value in split.values:
                yield spec.title_for(value), split.rows(value)
    except GeneratorExit:
        raise
    except Exception as error:
        errors[label] = error
