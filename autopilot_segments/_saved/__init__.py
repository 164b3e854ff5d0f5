"""Saved exports: connections and exports in a TOML file kept in version control, run on demand or on a
schedule (`load_exports`, the `run` and `check` commands). See docs/saved-exports.md."""

from ._check import custom_field_findings
from ._exports import ExportFile, SavedExport, load_exports
from ._model import Connection, Database, ExportSettings, SegmentSpec
from ._result import CheckResult, SavedRun

__all__ = [
    "CheckResult",
    "Connection",
    "Database",
    "ExportFile",
    "ExportSettings",
    "SavedExport",
    "SavedRun",
    "SegmentSpec",
    "custom_field_findings",
    "load_exports",
]
