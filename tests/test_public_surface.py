"""The public surface, pinned: moving private modules around must never change what users import.

The names are listed literally, so adding or removing a public name is a deliberate edit here too.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

import autopilot_segments
import autopilot_segments.sandbox
import autopilot_segments.sources

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PACKAGE_ALL = [
    "REJECTION_REASONS",
    "STANDARD_FIELDS",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "AutopilotClient",
    "AutopilotError",
    "BadRequestError",
    "BulkUpsertResult",
    "CheckResult",
    "ClientStats",
    "ConfigurationError",
    "ConflictError",
    "Connection",
    "Contact",
    "ContactList",
    "CustomField",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "EmailError",
    "ExportError",
    "ExportFile",
    "ExportInterrupted",
    "ExportReport",
    "Exporter",
    "FieldMapping",
    "GuardrailError",
    "Hook",
    "MappedContact",
    "NotFoundError",
    "OrttoClient",
    "OrttoDestination",
    "PayloadError",
    "PermissionDeniedError",
    "Progress",
    "RateLimitError",
    "RateLimiter",
    "Rejection",
    "RejectionReason",
    "RetryPolicy",
    "RunRecord",
    "SavedExport",
    "SavedRun",
    "SegmentSpec",
    "ServerError",
    "SmartSegment",
    "SourceError",
    "StateError",
    "Trigger",
    "__version__",
    "load_exports",
    "normalize_email",
]

SANDBOX_ALL = [
    "FAULT_KINDS",
    "FaultPlan",
    "OrttoSandbox",
    "OrttoSettings",
    "RecordedRequest",
    "Sandbox",
    "Settings",
    "sandbox_fixture",
]

SOURCES_ALL = [
    "SourceError",
    "cdm_entities",
    "from_dataframe",
    "open_source",
    "read_any",
    "read_cdm",
    "read_csv",
    "read_excel",
    "read_jsonl",
    "read_parquet",
    "read_sql",
    "rows_of",
    "sample_mapping_path",
    "sample_segment_path",
]

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (autopilot_segments, PACKAGE_ALL),
        (autopilot_segments.sandbox, SANDBOX_ALL),
        (autopilot_segments.sources, SOURCES_ALL),
    ],
    ids=["autopilot_segments", "sandbox", "sources"],
)
def test_all_is_exactly_the_pinned_list(module: object, expected: list[str]) -> None:
    assert list(module.__all__) == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("public_path", "names"),
    [
        ("autopilot_segments", PACKAGE_ALL),
        ("autopilot_segments.sandbox", SANDBOX_ALL),
        ("autopilot_segments.sources", SOURCES_ALL),
    ],
)
def test_every_public_name_imports_from_its_public_path(public_path: str, names: list[str]) -> None:
    module = importlib.import_module(public_path)
    for name in names:
        obj = getattr(module, name)  # what `from <public_path> import <name>` does
        assert obj is not None, name
        home = getattr(obj, "__module__", None)
        if home is not None and home.startswith("autopilot_segments"):
            # The object is defined where it says it is (its private home imports, and holds it).
            assert getattr(importlib.import_module(home), obj.__name__) is obj, name


def test_the_sandbox_classes_keep_their_public_homes() -> None:
    from autopilot_segments.sandbox import FaultPlan, OrttoSandbox, Sandbox

    for cls in (Sandbox, OrttoSandbox, FaultPlan):
        assert cls.__module__.startswith("autopilot_segments.sandbox"), cls


def _pyproject() -> dict[str, object]:
    with PYPROJECT.open("rb") as fh:
        return tomllib.load(fh)


def test_console_entry_point_resolves() -> None:
    scripts = _pyproject()["project"]["scripts"]  # type: ignore[index]
    assert scripts == {"autopilot-segments": "autopilot_segments._cli:main"}
    module_name, _, attribute = scripts["autopilot-segments"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attribute))


def test_pytest_plugin_entry_point_resolves() -> None:
    plugins = _pyproject()["project"]["entry-points"]["pytest11"]  # type: ignore[index]
    assert plugins == {"autopilot_segments_sandbox": "autopilot_segments.sandbox._pytest_plugin"}
    plugin = importlib.import_module(plugins["autopilot_segments_sandbox"])
    for name in ("autopilot_sandbox", "ortto_sandbox", "sandbox_fixture"):
        assert callable(getattr(plugin, name)), name


def test_python_dash_m_entry_points_exist() -> None:
    for name in ("autopilot_segments.__main__", "autopilot_segments.sandbox.__main__"):
        assert importlib.util.find_spec(name) is not None, name
