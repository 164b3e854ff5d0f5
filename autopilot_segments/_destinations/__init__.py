"""Destinations: the seam (`base.py`) and one sub-package per platform segments are exported to.

`as_destination(client)` is how the engine gets its `Destination`: an object that already is one is
used as it is; a platform's client is wrapped in that platform's destination. Each platform has one
branch in `_wrap` below (the registration point), importing its destination lazily so that one
platform's modules never load another's.
"""

from __future__ import annotations

import sys
from typing import Any

from .._errors import ConfigurationError
from .base import Destination

__all__ = ["as_destination"]


def as_destination(client: object) -> Destination:
    """`client` as a `Destination`: itself if it is one, else wrapped by its platform's destination.

    Raises `ConfigurationError` (saying what to pass) for anything else.
    """
    if isinstance(client, Destination) and hasattr(client, "capabilities"):
        return client
    wrapped = _wrap(client)
    if wrapped is None:
        raise ConfigurationError(
            f"client must be an AutopilotClient, an OrttoClient or a Destination, got {type(client).__name__}"
        )
    return wrapped


def _wrap(client: Any) -> Destination | None:
    """The registration point: one branch per platform client (lazy imports).

    A platform adds its branch here; Autopilot's comes last because it also takes look-alikes
    (any object with `upsert_contacts` and `lists`, as the exporter always has).
    """
    ortto = sys.modules.get(f"{__name__}.ortto.client")  # not loaded: the client is no OrttoClient
    if ortto is not None and isinstance(client, ortto.OrttoClient):
        from .ortto.destination import OrttoDestination

        return OrttoDestination(client)
    if callable(getattr(client, "upsert_contacts", None)) and callable(getattr(client, "lists", None)):
        from .autopilot.destination import AutopilotDestination

        return AutopilotDestination(client)
    return None
