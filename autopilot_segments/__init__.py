"""Export customer segments to Autopilot and Ortto: typed clients, field mapping, fault-tolerant exporter."""

from __future__ import annotations

import logging

from ._destinations.autopilot.client import AutopilotClient
from ._destinations.autopilot.fields import STANDARD_FIELDS
from ._destinations.autopilot.models import (
    BulkUpsertResult,
    Contact,
    ContactList,
    CustomFieldDefinition,
    CustomFieldValue,
    Hook,
    SmartSegment,
    Trigger,
)
from ._destinations.ortto.client import OrttoClient
from ._destinations.ortto.destination import OrttoDestination
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    AutopilotError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ExportError,
    ExportInterrupted,
    GuardrailError,
    NotFoundError,
    PayloadError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StateError,
)
from ._export import Exporter
from ._http.ratelimit import RateLimiter
from ._http.retry_policy import RetryPolicy
from ._http.stats import ClientStats
from ._mapping.emails import EmailError, normalize_email
from ._mapping.fields import CustomField
from ._mapping.mapping import FieldMapping, MappedContact
from ._progress import Progress
from ._rejections import REJECTION_REASONS, Rejection, RejectionReason
from ._report import ExportReport
from ._saved import (
    CheckResult,
    Connection,
    ExportFile,
    SavedExport,
    SavedRun,
    SegmentSpec,
    load_exports,
)
from ._state import RunRecord
from ._version import __version__
from .sources import SourceError

# Library etiquette: never configure logging for the application, never print "No handler" warnings.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
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
