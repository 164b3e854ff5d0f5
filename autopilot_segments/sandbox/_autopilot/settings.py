"""The sandbox's behaviour switches: one frozen value, swapped atomically by `Sandbox.configure`."""

from __future__ import annotations

from typing import Literal, get_args

import attrs

from .._faults import FaultPlan
from .._switches import non_negative, one_of, optional_positive

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


@attrs.frozen(kw_only=True)
class Settings:
    """Every switch of the sandbox; see docs/sandbox.md for what each one plays."""

    rate_limit: float | None = attrs.field(default=None, validator=optional_positive)
    retry_after: float | None = attrs.field(default=None, validator=optional_positive)
    latency: float = attrs.field(default=0.0, validator=non_negative)
    bulk_invalid: BulkInvalid = attrs.field(default="reject", validator=one_of(get_args(BulkInvalid)))
    bulk_list: BulkList = attrs.field(default="honoured", validator=one_of(get_args(BulkList)))
    bulk_answer: BulkAnswer = attrs.field(default="map", validator=one_of(get_args(BulkAnswer)))
    duplicate_list: DuplicateList = attrs.field(default="conflict", validator=one_of(get_args(DuplicateList)))
    delete_status: DeleteStatus = attrs.field(default=200, validator=one_of(get_args(DeleteStatus)))
    hook_style: HookStyle = attrs.field(default="new", validator=one_of(get_args(HookStyle)))
    error_style: ErrorStyle = attrs.field(default="json", validator=one_of(get_args(ErrorStyle)))
    faults: FaultPlan | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(FaultPlan))
    )
    record_bodies: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    @classmethod
    def switch_names(cls) -> tuple[str, ...]:
        return tuple(a.name for a in attrs.fields(cls))
