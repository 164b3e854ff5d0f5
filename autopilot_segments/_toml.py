"""Reading TOML files: `tomllib` on Python 3.11+, `tomli` (a dependency on 3.10 only) before that."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ._errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

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
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"the {what} {where} is not valid TOML: {exc}") from None
