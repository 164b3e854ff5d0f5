"""What every reader shares: the row type, `SourceError`, and the missing-extra message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._errors import AutopilotError

Row = dict[str, Any]
Columns = Sequence[str] | Mapping[str, str] | None

_SNIFF_BYTES: Final = 16 * 1024
_SNIFF_DELIMITERS: Final = ",;\t|"
_DEFAULT_CHUNK: Final = 10_000


class SourceError(AutopilotError, ValueError):
    """A segment source could not be read: missing file, malformed content, or a missing optional extra."""


def _missing_extra(feature: str, module: str, extra: str) -> SourceError:
    return SourceError(
        f"{feature} needs {module}, which is not installed: pip install 'autopilot-segments[{extra}]'"
    )
