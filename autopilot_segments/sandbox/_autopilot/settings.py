"""The sandbox's behaviour switches: one frozen value, swapped atomically by `Sandbox.configure`."""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import attrs

from .._faults import FaultPlan

__all__ = [
    "BulkAnswer",
    "BulkInvalid",
    "BulkList",
    "DeleteStatus",
    "DuplicateList",
    "ErrorStyle",
    "HookStyle",
    "Settings",
]

BulkInvalid = Literal["reject", "drop"]
BulkList = Literal["honoured", "ignored"]
BulkAnswer = Literal["map", "ids_only"]
DuplicateList = Literal["conflict", "create"]
DeleteStatus = Literal[200, 204]
HookStyle = Literal["new", "old"]
ErrorStyle = Literal["json", "code", "empty", "html"]


def _optional_positive(_instance: Any, attribute: Any, value: float | None) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 and math.isfinite(value))
    ):
        raise ValueError(f"{attribute.name} must be a positive number or None, got {value!r}")


def _non_negative(_instance: Any, attribute: Any, value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value >= 0 and math.isfinite(value))
    ):
        raise ValueError(f"{attribute.name} must be a non-negative number, got {value!r}")


def _one_of(choices: tuple[Any, ...]) -> Any:
    def check(_instance: Any, attribute: Any, value: Any) -> None:
        if value not in choices or isinstance(value, bool):
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )

    return check


@attrs.frozen(kw_only=True)
class Settings:
    """Every switch of the sandbox; see docs/sandbox.md for what each one plays."""

    rate_limit: float | None = attrs.field(default=None, validator=_optional_positive)
    retry_after: float | None = attrs.field(default=None, validator=_optional_positive)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    bulk_invalid: BulkInvalid = attrs.field(default="reject", validator=_one_of(get_args(BulkInvalid)))
    bulk_list: BulkList = attrs.field(default="honoured", validator=_one_of(get_args(BulkList)))
    bulk_answer: BulkAnswer = attrs.field(default="map", validator=_one_of(get_args(BulkAnswer)))
    duplicate_list: DuplicateList = attrs.field(
        default="conflict", validator=_one_of(get_args(DuplicateList))
    )
    delete_status: DeleteStatus = attrs.field(default=200, validator=_one_of(get_args(DeleteStatus)))
    hook_style: HookStyle = attrs.field(default="new", validator=_one_of(get_args(HookStyle)))
    error_style: ErrorStyle = attrs.field(default="json", validator=_one_of(get_args(ErrorStyle)))
    faults: FaultPlan | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(FaultPlan))
    )
    record_bodies: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    @classmethod
    def switch_names(cls) -> tuple[str, ...]:
        return tuple(a.name for a in attrs.fields(cls))
