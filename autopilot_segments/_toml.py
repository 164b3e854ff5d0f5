"""Reading TOML files: `tomllib` on Python 3.11+; on 3.10, `tomli` from the `toml` extra.

The runtime dependencies stay requests, attrs, urllib3 and typing-extensions: on Python 3.10 a TOML file
needs `pip install 'autopilot-segments[toml]'`, and says so; JSON mapping files need nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import ConfigurationError

_parser: ModuleType | None
if sys.version_info >= (3, 11):
    import tomllib

    _parser = tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    try:
        import tomli
    except ImportError:
        _parser = None
    else:
        _parser = tomli

__all__ = ["read_toml"]


def read_toml(path: str | os.PathLike[str], *, what: str) -> dict[str, Any]:
    """The parsed file; `ConfigurationError` naming `what` and the file when it cannot be read or parsed.

    The parser's message says where (line and column) and never quotes the file's content.
    """
    where = Path(path)
    try:
        text = where.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"the {what} {where} is not UTF-8 text") from None
    if _parser is None:  # pragma: no cover - Python 3.10 without the toml extra
        raise ConfigurationError(
            f"reading the {what} {where} needs a TOML parser on Python 3.10: "
            "pip install 'autopilot-segments[toml]' (or use a JSON file)"
        )
    try:
        parsed: dict[str, Any] = _parser.loads(text)
    except _parser.TOMLDecodeError as exc:
        raise ConfigurationError(f"the {what} {where} is not valid TOML: {exc}") from None
    return parsed
