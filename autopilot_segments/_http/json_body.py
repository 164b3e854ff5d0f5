"""Request bodies as strict JSON, serialised by the client itself before anything is sent.

`requests`' own `json=` raises its exceptions while preparing the request, and those hold the prepared
request, API key header included. Here a value JSON cannot carry (a `date`, a `set`, NaN or infinity,
a lone surrogate, a key that is not a string) is a `PayloadError` naming where it is and what kind of
value it is, never the value (usually personal data), before any request exists.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .._errors import PayloadError

__all__ = ["encode_json"]

_SCALARS = (str, int, float, bool, type(None))


def encode_json(body: Any) -> bytes:
    """`body` as compact UTF-8 JSON; `PayloadError` if any value in it is not JSON."""
    problem: str | None = None
    try:
        text = json.dumps(body, allow_nan=False, ensure_ascii=False, separators=(",", ":"), default=_refuse)
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        problem = _find_problem(body, "") or "the request body cannot be written as JSON"
    # Raised outside the except block: the json module's own message may quote the value.
    raise PayloadError(f"{problem}; nothing was sent")


def _refuse(value: Any) -> Any:
    raise TypeError("not JSON")  # located and described by _find_problem, without the value


def _find_problem(value: Any, where: str, depth: int = 0) -> str | None:
    if depth > 50:
        return f"{where or 'the body'} is nested too deeply (or refers to itself)"
    if isinstance(value, float) and not math.isfinite(value):
        what = "NaN" if math.isnan(value) else "an infinite number"
        return f"{where} is {what}, which JSON cannot carry: leave the field out instead"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{where} holds text that is not valid Unicode (a lone surrogate)"
        return None
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, _SCALARS):
                return f"{where or 'the body'} has a key of type {type(key).__name__}; keys must be text"
            found = _find_problem(key, f"{where} key", depth + 1) if isinstance(key, str) else None
            found = found or _find_problem(item, f"{where}.{key}" if where else str(key), depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_problem(item, f"{where}[{index}]", depth + 1)
            if found:
                return found
        return None
    kind = type(value).__name__
    hint = " (an ISO 8601 string)" if kind in ("date", "datetime", "time", "Timestamp") else ""
    return f"{where} holds a {kind}, which is not JSON: convert it to a string or number{hint} first"
