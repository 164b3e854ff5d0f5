"""The Ortto sandbox's behaviour switches: one frozen value, swapped atomically by `OrttoSandbox.configure`.

Each ambiguity of the public record (docs/ortto.md, "Unknowns") is one switch, so code can be tested
against every answer Ortto might give.
"""

from __future__ import annotations

from typing import Literal, get_args

import attrs

from .._faults import FaultPlan
from .._switches import non_negative, one_of, optional_positive

__all__ = ["AsyncAnswer", "InvalidPerson", "MergeTags", "OrttoSettings", "SkippedStatus"]

# 1. One invalid person in a merge: the whole call fails with 400, or only that person is "invalid".
InvalidPerson = Literal["per_person", "whole_call"]
# 2. What a person skipped by skip_non_existing or merge_strategy 3 is answered with.
SkippedStatus = Literal["ignored", "skipped", "omitted"]
# 3. Whether `tags` on a merge add to the person's tags (documented) or replace them.
MergeTags = Literal["add", "replace"]
# 4. The answer to `async: true`: an acknowledgement without people, the same answer as a sync call,
#    or an empty body.
AsyncAnswer = Literal["accepted", "people", "empty"]


@attrs.frozen(kw_only=True)
class OrttoSettings:
    """Every switch of the Ortto sandbox; see docs/ortto.md for what each one plays."""

    rate_limit: float | None = attrs.field(default=None, validator=optional_positive)
    try_in_seconds: float = attrs.field(default=1.0, validator=non_negative)
    latency: float = attrs.field(default=0.0, validator=non_negative)
    invalid_person: InvalidPerson = attrs.field(
        default="per_person", validator=one_of(get_args(InvalidPerson))
    )
    skipped_status: SkippedStatus = attrs.field(default="ignored", validator=one_of(get_args(SkippedStatus)))
    merge_tags: MergeTags = attrs.field(default="add", validator=one_of(get_args(MergeTags)))
    async_answer: AsyncAnswer = attrs.field(default="accepted", validator=one_of(get_args(AsyncAnswer)))
    # Ortto bans an IP for 15 s after 15 bad requests within 15 s; off by default so that tests sending
    # invalid people on purpose are not banned.
    bad_request_ban: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    faults: FaultPlan | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(FaultPlan))
    )
    record_bodies: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    @classmethod
    def switch_names(cls) -> tuple[str, ...]:
        return tuple(a.name for a in attrs.fields(cls))
