"""The destination seam's value types and `as_destination`."""

from __future__ import annotations

import attrs
import pytest

from autopilot_segments import ConfigurationError
from autopilot_segments._destinations import as_destination
from autopilot_segments._destinations.base import Acknowledgement, Capabilities, Target


def test_acknowledgements_say_stored_only_with_a_contact_id() -> None:
    assert Acknowledgement.ok("c1").stored
    refused = Acknowledgement.refused("not stored")
    assert not refused.stored
    assert refused.reason == "rejected_by_api"
    error = RuntimeError("read failed")
    unconfirmed = Acknowledgement.unconfirmed("could not confirm", error)
    assert not unconfirmed.stored
    assert unconfirmed.reason == "failed"
    assert unconfirmed.error is error


def test_value_types_are_frozen_and_capabilities_validated() -> None:
    target = Target(id="7", title="VIP", created=True)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        target.id = "8"  # type: ignore[misc]
    with pytest.raises(ValueError):
        Capabilities(name="X", max_batch=0, removal_batch=1)


def test_as_destination_refuses_what_it_cannot_wrap() -> None:
    with pytest.raises(ConfigurationError, match="AutopilotClient, an OrttoClient or a Destination"):
        as_destination(object())
