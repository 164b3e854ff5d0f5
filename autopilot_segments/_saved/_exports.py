"""`load_exports`, `ExportFile` and `SavedExport`: the saved objects of an export file, in Python."""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs

from .._destinations.autopilot.client import AutopilotClient
from .._destinations.ortto.destination import OrttoDestination
from .._errors import AutopilotError, ConfigurationError
from .._mapping.mapping import FieldMapping
from .._progress import ProgressCallback
from ._check import check_export
from ._lock import lock_path_for
from ._model import Connection, Database, ExportSettings, SegmentSpec
from ._parse import parse_export_file
from ._result import CheckResult, SavedRun
from ._run import Client, make_client, run_export

__all__ = ["ExportFile", "SavedExport", "load_exports"]


@attrs.frozen(kw_only=True)
class SavedExport:
    """One `[exports.NAME]` of an export file: a connection, a mapping, options and segments.

    `run()` exports every segment (or plans them with `dry_run=True`) and returns a `SavedRun`;
    `check()` validates it against the account and the sources without writing anything.
    """

    name: str
    file: Path
    connection: Connection
    settings: ExportSettings
    segments: tuple[SegmentSpec, ...]

    @property
    def mapping(self) -> FieldMapping:
        return self.settings.mapping

    @property
    def lock_path(self) -> Path:
        """The file whose lock a run holds (next to the state file, else in the temporary folder)."""
        return lock_path_for(self.file, self.name, self.settings.state)

    def run(
        self,
        *,
        dry_run: bool = False,
        full: bool = False,
        force: bool = False,
        client: Client | None = None,
        base_url: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> SavedRun:
        """Export every segment, one after the other, through one client (its rate limit shared).

        `dry_run=True` plans instead and makes no API call at all. `full`/`force` are passed to
        `Exporter.export`. `client` (e.g. shared by several exports) replaces the one the connection
        would make; `base_url` overrides `AUTOPILOT_BASE_URL` and the file's. Raises `StateError` at once
        if another run of this export holds its lock, `ConfigurationError` if the key is missing; a
        failing segment is recorded in `SavedRun.errors` and the others still run (a 401/403 skips them).
        """
        return run_export(
            self,
            client=client,
            base_url=base_url,
            dry_run=dry_run,
            full=full,
            force=force,
            on_progress=on_progress,
        )

    def check(self, *, client: Client | None = None, base_url: str | None = None) -> CheckResult:
        """Compare the mapping's custom fields with the account's (one API call) and check every
        source's columns (the first row of each); writes nothing."""
        if client is not None:
            return self._check_with(client)
        with make_client(self.connection, base_url=base_url) as own:
            return self._check_with(own)

    def _check_with(self, client: Client) -> CheckResult:
        if isinstance(client, AutopilotClient):
            return check_export(self, client.custom_fields())
        # Ortto: what the destination says of the mapping (fields it lacks or holds other values in).
        conflicts = OrttoDestination(client).field_conflicts(self.mapping)
        result = check_export(self, [])
        return attrs.evolve(result, problems=(*conflicts, *result.problems))


@attrs.frozen(kw_only=True)
class ExportFile(Mapping[str, SavedExport]):
    """An export file: its connections, databases and exports (a read-only mapping of name -> export)."""

    path: Path
    connections: Mapping[str, Connection]
    databases: Mapping[str, Database]
    exports: Mapping[str, SavedExport]

    def __getitem__(self, name: str) -> SavedExport:
        try:
            return self.exports[name]
        except KeyError:
            raise KeyError(_unknown_export(name, self.exports, self.path)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.exports)

    def __len__(self) -> int:
        return len(self.exports)

    def select(self, names: Iterable[str] | None = None) -> list[SavedExport]:
        """The exports named (all when None, in file order); `ConfigurationError` for an unknown name."""
        if names is None:
            return list(self.exports.values())
        wanted = list(dict.fromkeys(names))
        unknown = [_unknown_export(n, self.exports, self.path) for n in wanted if n not in self.exports]
        if unknown:
            raise ConfigurationError(unknown)
        return [self.exports[n] for n in wanted]

    def run(
        self,
        names: Iterable[str] | None = None,
        *,
        dry_run: bool = False,
        full: bool = False,
        force: bool = False,
        base_url: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, SavedRun]:
        """Run the named exports (all when None) one after the other, one client per connection shared
        by all of them (one rate limit). An export that cannot start (locked, no key) is recorded in
        its `SavedRun.error` and the others still run."""
        selected = self.select(names)
        clients: dict[str, Client] = {}
        results: dict[str, SavedRun] = {}
        try:
            for export in selected:
                try:
                    client = None
                    if not dry_run:
                        client = clients.get(export.connection.name)
                        if client is None:
                            client = make_client(export.connection, base_url=base_url)
                            clients[export.connection.name] = client
                    results[export.name] = export.run(
                        dry_run=dry_run,
                        full=full,
                        force=force,
                        client=client,
                        base_url=base_url,
                        on_progress=on_progress,
                    )
                except AutopilotError as error:
                    results[export.name] = SavedRun(export=export.name, dry_run=dry_run, error=error)
        finally:
            for client in clients.values():
                client.close()
        return results

    def check(
        self, names: Iterable[str] | None = None, *, base_url: str | None = None
    ) -> dict[str, CheckResult]:
        """`SavedExport.check` for the named exports (all when None): one custom-field read per connection."""
        selected = self.select(names)
        definitions: dict[str, list[object]] = {}
        results: dict[str, CheckResult] = {}
        for export in selected:
            name = export.connection.name
            if name not in definitions:
                with make_client(export.connection, base_url=base_url) as client:
                    definitions[name] = list(client.custom_fields())
            results[export.name] = check_export(export, definitions[name])  # type: ignore[arg-type]
        return results


def _unknown_export(name: str, exports: Mapping[str, SavedExport], path: Path) -> str:
    close = difflib.get_close_matches(name, list(exports), n=1)
    hint = (
        f"did you mean {close[0]!r}?" if close else f"its exports: {', '.join(map(repr, exports)) or 'none'}"
    )
    return f"{path} has no export {name!r}; {hint}"


def load_exports(path: str | os.PathLike[str]) -> ExportFile:
    """Read and check an export file (TOML); `ConfigurationError` listing every problem, each with the
    file, the table and what to fix. Nothing is opened or sent: keys are read when an export runs."""
    where = Path(path)
    parsed = parse_export_file(where)
    exports = {
        name: SavedExport(name=name, file=where, connection=conn, settings=settings, segments=segments)
        for name, (conn, settings, segments) in parsed.exports.items()
    }
    return ExportFile(path=where, connections=parsed.connections, databases=parsed.databases, exports=exports)
