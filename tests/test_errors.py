"""Errors keep everything a caller needs, survive pickling, and never hold the key."""

from __future__ import annotations

import pickle

import pytest

from autopilot_segments import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    AutopilotError,
    ConfigurationError,
    GuardrailError,
    ServerError,
    StateError,
)
from autopilot_segments._errors import api_error_class


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError(
            status=401,
            method="POST",
            url="https://api2.autopilothq.com/v1/contacts",
            message="Provided autopilotapikey not valid.",
            body='{"error":"Unauthorized"}',
            error="Unauthorized",
            request_id="req-1",
        ),
        ServerError(status=503, method="GET", url="https://x.example/v1/lists", message="down"),
        APIConnectionError("connection refused", method="GET", url="https://x.example/v1/account"),
        APITimeoutError("no answer", method="POST", url="https://x.example/v1/contacts"),
        ConfigurationError(["first problem", "second problem"]),
        GuardrailError("would remove 90%", details={"reason": "mass_removal", "would_remove": 9}),
        StateError("locked"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_survives_a_pickle_round_trip(error: AutopilotError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just written
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


def test_api_error_fields_and_class_by_status() -> None:
    error = api_error_class(429)(status=429, method="POST", url="u", message="slow down", body="b")
    assert isinstance(error, APIError)
    assert (error.status, error.method, error.url, error.message, error.body) == (
        429,
        "POST",
        "u",
        "slow down",
        "b",
    )
    assert error.export_report is None
    assert api_error_class(502) is ServerError
    assert api_error_class(418) is APIError
