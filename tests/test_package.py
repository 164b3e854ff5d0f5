"""Package-level promises: typed, public names re-exported, one error root."""

from __future__ import annotations

import inspect
from pathlib import Path

import autopilot_segments
from autopilot_segments import AutopilotError, ConfigurationError, Rejection


def test_py_typed_is_shipped() -> None:
    assert (Path(autopilot_segments.__file__).parent / "py.typed").is_file()


def test_every_public_name_resolves() -> None:
    for name in autopilot_segments.__all__:
        assert getattr(autopilot_segments, name) is not None, name


def test_every_exception_class_derives_from_the_root() -> None:
    errors = [
        obj
        for obj in vars(autopilot_segments).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException)
    ]
    assert len(errors) >= 10
    for cls in errors:
        if cls is autopilot_segments.ExportInterrupted:
            # Ctrl-C is no error: it stays a KeyboardInterrupt, so `except Exception` never swallows it.
            assert issubclass(cls, KeyboardInterrupt)
            assert not issubclass(cls, Exception)
            continue
        assert issubclass(cls, AutopilotError), cls


def test_configuration_error_lists_every_problem() -> None:
    err = ConfigurationError(["first thing is wrong", "second thing is wrong"])
    assert isinstance(err, ValueError)
    assert "first thing" in str(err)
    assert "second thing" in str(err)
    assert err.problems == ("first thing is wrong", "second thing is wrong")


def test_rejection_reason_is_validated() -> None:
    Rejection(row=1, email=None, reason="missing_email", message="no email")
    try:
        Rejection(row=1, email=None, reason="nope", message="x")  # type: ignore[arg-type]
    except ValueError:
        pass
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("an unknown reason code was accepted")
