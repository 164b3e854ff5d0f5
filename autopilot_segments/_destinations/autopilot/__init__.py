"""Autopilot: the client (`client.py`), its models (`models.py`), the standard fields (`fields.py`),
and the destination over them (`destination.py`; `lists.py`, `membership.py`, `confirmation.py`,
`preflight.py`).
"""

from __future__ import annotations

from .client import AutopilotClient
from .fields import STANDARD_FIELDS
from .models import (
    BulkUpsertResult,
    Contact,
    ContactList,
    CustomFieldDefinition,
    CustomFieldValue,
    Hook,
    SmartSegment,
    Trigger,
)

__all__ = [
    "STANDARD_FIELDS",
    "AutopilotClient",
    "BulkUpsertResult",
    "Contact",
    "ContactList",
    "CustomFieldDefinition",
    "CustomFieldValue",
    "Hook",
    "SmartSegment",
    "Trigger",
]
