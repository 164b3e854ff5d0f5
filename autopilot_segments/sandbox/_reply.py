"""What an app hands the HTTP server for one request: shared by the Autopilot and Ortto sandboxes."""

from __future__ import annotations

import attrs

__all__ = ["Reply"]


@attrs.define
class Reply:
    """What to send back; `drop` means close the connection without answering."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = attrs.Factory(dict)
    drop: bool = False
