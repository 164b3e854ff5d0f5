"""Per-row outcomes that are not "exported": why a row was not sent, or not stored."""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

import attrs

__all__ = ["REJECTION_REASONS", "Rejection", "RejectionReason"]

RejectionReason = Literal[
    "missing_email",
    "invalid_email",
    "duplicate_email",
    "invalid_value",
    "rejected_by_api",
    "failed",
    "over_limit",
]
REJECTION_REASONS: Final[tuple[str, ...]] = get_args(RejectionReason)


@attrs.frozen(kw_only=True)
class Rejection:
    """One input row that was not exported, and why.

    `row` is the 1-based position of the row in the input; `email` is the normalised email when one
    could be read (else the raw value, or None); `field` names the source column at fault, if any.
    """

    row: int = attrs.field(validator=attrs.validators.ge(1))
    email: str | None
    reason: RejectionReason = attrs.field(validator=attrs.validators.in_(REJECTION_REASONS))
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "email": self.email,
            "reason": self.reason,
            "message": self.message,
            "field": self.field,
        }
