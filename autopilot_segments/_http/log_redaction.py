"""Email addresses never reach a log line: one `logging.Filter` on the library's and urllib3's loggers.

urllib3 logs every request line at DEBUG (`"GET /v1/contact/person%40example.com HTTP/1.1" 200`), and
our own lines may quote an error that names a contact. The filter rewrites each record's final message
(arguments merged in) and its formatted exception, replacing every run of characters that holds an `@`
(as is, `%40`, or encoded twice, `%2540`) with `<email>`: in a URL path that is the whole segment.
The client installs it when it is created (`install_log_redaction`): once per logger, whatever the
number of clients.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["REDACTION_FILTER", "EmailRedactionFilter", "install_log_redaction", "redact_emails"]

_EMAIL: Final = re.compile(r"""[^\s/"'<>()\[\]{},;|]*(?:@|%40|%2540)[^\s/"'<>()\[\]{},;|]*""", re.IGNORECASE)
_PREFIXES: Final = ("autopilot_segments", "urllib3")
_ALWAYS: Final = ("autopilot_segments", "urllib3", "urllib3.connectionpool", "urllib3.util.retry")


def redact_emails(text: str) -> str:
    """`text` with every word or path segment holding an email replaced by `<email>`."""
    if "@" not in text and "%" not in text:
        return text
    return _EMAIL.sub("<email>", text)


class EmailRedactionFilter(logging.Filter):
    """Rewrites a record so that neither its message nor its exception text holds an email."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_emails(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_emails(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_emails(record.stack_info)
        return True


REDACTION_FILTER: Final = EmailRedactionFilter()


def install_log_redaction() -> None:
    """Put the one filter on urllib3's and the library's loggers (those existing now); idempotent."""
    names = set(_ALWAYS)
    names.update(
        name for name in list(logging.Logger.manager.loggerDict) if name.split(".", 1)[0] in _PREFIXES
    )
    for name in sorted(names):
        logger = logging.getLogger(name)
        if REDACTION_FILTER not in logger.filters:
            logger.addFilter(REDACTION_FILTER)
