"""The error hierarchy: every exception the library raises derives from `AutopilotError`.

API errors carry what a caller needs to debug a failed call (status, method, URL, Autopilot's message,
the raw body, a request id when the server sent one) and never the API key: the key travels in a
header, and headers are never copied into an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import ExportReport

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "AutopilotError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ExportError",
    "ExportInterrupted",
    "GuardrailError",
    "NotFoundError",
    "PayloadError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "StateError",
    "api_error_class",
]

_BODY_EXCERPT = 300


class AutopilotError(Exception):
    """Root of every error raised by autopilot-segments."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle rebuilds an exception as cls(*self.args), but most of ours take keyword-only
        # arguments: rebuild without __init__ and restore the attributes instead, so errors can cross
        # process boundaries (ProcessPoolExecutor, multiprocessing).
        return (_rebuild_error, (type(self), self.args), self.__dict__)


def _rebuild_error(cls: type[AutopilotError], args: tuple[Any, ...]) -> AutopilotError:
    error = cls.__new__(cls)
    error.args = args
    return error


class ConfigurationError(AutopilotError, ValueError):
    """Wrong configuration, detected before anything is sent.

    `problems` lists every problem found, each phrased as what is wrong and how to fix it.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems: tuple[str, ...] = (problems,) if isinstance(problems, str) else tuple(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} configuration problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(message)


class PayloadError(AutopilotError, ValueError):
    """A value in a request cannot be sent as JSON (a date, NaN, a set...); found before anything is sent.

    The message names where the value is (`contacts[3].custom['date--Joined']`) and what kind of value
    it is, never the value itself: it is usually personal data.
    """


class APIConnectionError(AutopilotError):
    """Autopilot could not be reached, or the connection broke before an answer arrived."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        return f"{self.message} ({self.method} {self.url})"


class APITimeoutError(APIConnectionError):
    """No answer within the configured timeout. The request may still have been applied."""


class APIError(AutopilotError):
    """Autopilot answered with an error status.

    `export_report` is set when an export aborted on this error (a 401/403): what happened until
    then, as a partial `ExportReport` (`complete=False`). None otherwise.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        message: str,
        body: str = "",
        error: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.url = url
        self.message = message
        self.body = body
        self.error = error
        self.request_id = request_id
        self.export_report: ExportReport | None = None

    def __str__(self) -> str:
        reason = f" {self.error}" if self.error else ""
        rid = f", request id {self.request_id}" if self.request_id else ""
        return f"{self.status}{reason}: {self.message} ({self.method} {self.url}{rid})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, method={self.method!r}, "
            f"url={self.url!r}, message={self.message!r}, body={self.body[:_BODY_EXCERPT]!r})"
        )


class BadRequestError(APIError):
    """400: the request was malformed or a contact in it was invalid."""


class AuthenticationError(APIError):
    """401 (or 400 for a missing key header): the API key is missing or not valid."""


class PermissionDeniedError(APIError):
    """403: the key is valid but not allowed to do this."""


class NotFoundError(APIError):
    """404: no such contact, list, segment, trigger or hook."""


class ConflictError(APIError):
    """409: the resource exists already (e.g. a list with that name on some accounts)."""


class RateLimitError(APIError):
    """429: the request rate was exceeded and retries did not get through."""


class ServerError(APIError):
    """5xx: Autopilot failed; retries did not get through."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def api_error_class(status: int) -> type[APIError]:
    """The most specific `APIError` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status, APIError)


class ExportError(AutopilotError):
    """An export stopped early; `report` holds what happened until then, `cause` what stopped it.

    Raised when a batch failed after retries with `stop_on_error=True`, and when the row source raised
    mid-stream (a database connection dropping, a malformed line deep in a file): then `cause` is the
    source's exception and the partial report counts every row Autopilot acknowledged before it.
    """

    def __init__(self, message: str, *, report: ExportReport, cause: BaseException | None = None):
        super().__init__(message)
        self.report = report
        self.cause = cause


class ExportInterrupted(KeyboardInterrupt):
    """Ctrl-C (a `KeyboardInterrupt`) stopped an export; `export_report` holds what was done until then.

    Raised from the original interrupt and still a `KeyboardInterrupt`, so code that catches that keeps
    working. Before it is raised, the batches in flight are waited for: every row Autopilot acknowledged
    is counted `exported` (and recorded in the state, so a re-run with the same state does not send it
    again); rows read but not confirmed are `failed`. Rows never read have no outcome: the report's
    `total_rows` counts the rows read. `export_report.interrupted` is True.
    """

    def __init__(self, message: str, *, export_report: ExportReport) -> None:
        super().__init__(message)
        self.export_report = export_report

    def __reduce__(self) -> tuple[Any, ...]:
        return (_export_interrupted, (str(self), self.export_report))


def _export_interrupted(message: str, export_report: ExportReport) -> ExportInterrupted:
    return ExportInterrupted(message, export_report=export_report)


class GuardrailError(AutopilotError):
    """An export would have done something drastic (empty input, mass removal); nothing was written.

    `details` says what would have happened; pass `force=True` to the export to override.
    """

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = dict(details or {})


class StateError(AutopilotError):
    """The export state file is locked, corrupt, or written by a newer version; it was not changed."""
