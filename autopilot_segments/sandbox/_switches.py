"""Validators shared by both sandboxes' switch values (attrs field validators)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["non_negative", "one_of", "optional_positive"]


def optional_positive(_instance: Any, attribute: Any, value: float | None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{attribute.name} must be a positive number or None, got {value!r}")


def non_negative(_instance: Any, attribute: Any, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value >= 0 and math.isfinite(value))
    ):
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


def one_of(choices: tuple[Any, ...]) -> Any:
    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if value not in choices or isinstance(value, bool):
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )

    return check
