"""The guard rails that stop an export before anything is written, and the preflight before the first write.

- An empty input is far more often a broken extract than an empty segment: `GuardrailError`
  (reason "empty_input") unless `force=True`, before the target is even looked up or created.
- A stateful export that would remove more than `max_removal_fraction` of the target's known
  members stops (reason "mass_removal") unless `force=True`.
- `Preflight` runs the destination's field check once, just before the first write.
"""

from __future__ import annotations

import logging

import attrs

from .._destinations.base import FATAL_ERRORS, Destination, Target
from .._errors import APIConnectionError, APIError, ConfigurationError, GuardrailError
from .._state import ExportState, RunRecord
from .accounting import RowCounter
from .options import ExportContext

__all__ = ["Preflight", "check_guardrails", "empty_input_error"]

_log = logging.getLogger("autopilot_segments.exporter")


def empty_input_error(segment: str) -> GuardrailError:
    return GuardrailError(
        f"export of segment {segment!r} stopped before writing anything: the input has no rows "
        "(a broken extract?); pass force=True to export an empty segment",
        details={"reason": "empty_input", "segment": segment, "rows": 0},
    )


def check_guardrails(
    ctx: ExportContext,
    state: ExportState,
    target: Target,
    record: RunRecord,
    counter: RowCounter,
    *,
    force: bool,
) -> None:
    """After the first pass of a stateful export: stop on an empty input or a mass removal."""
    if force:
        return
    if counter.rows_seen == 0:
        raise empty_input_error(record.segment)
    list_id = target.id
    noun = ctx.destination.capabilities.target_noun
    fraction = ctx.options.max_removal_fraction
    leavers = state.count_leavers(list_id, record.run_id)
    members = state.member_count(list_id)
    if leavers > fraction * members:
        raise GuardrailError(
            f"export of segment {record.segment!r} stopped before writing anything: it would remove "
            f"{leavers:,} of the {members:,} contacts known on {noun} {list_id} "
            f"({leavers / members:.0%}, over max_removal_fraction={fraction:g}); "
            "check the input, or pass force=True to go ahead",
            details={
                "reason": "mass_removal",
                "list_id": list_id,
                "would_remove": leavers,
                "known_members": members,
                "max_removal_fraction": fraction,
                "rows": counter.rows_seen,
                "valid_rows": counter.valid,
            },
        )


@attrs.define
class Preflight:
    """Runs the destination's field check once, when the export is about to write for the first time.

    A conflict raises `ConfigurationError` (nothing was written); an unreadable definition list only
    logs a warning.
    """

    destination: Destination
    mapping: object
    done: bool = False

    def __call__(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            conflicts = self.destination.field_conflicts(self.mapping)
        except FATAL_ERRORS:
            raise
        except (APIError, APIConnectionError) as error:
            _log.warning("could not read the account's custom fields to check the mapping: %s", error)
            return
        if conflicts:
            name = self.destination.capabilities.name
            if name != "Autopilot":  # the destination's own words say what to change
                raise ConfigurationError(
                    f"the mapping does not fit the {name} account, so {name} would refuse its contacts "
                    f"(nothing was written): {'; '.join(conflicts)}"
                )
            raise ConfigurationError(
                "the mapping's custom fields conflict with the account's definitions, so "
                f"{name} would refuse every contact (nothing was written): "
                f"{'; '.join(conflicts)}. A custom field keeps the type it was first stored with: give "
                "the mapping the account's type, or map to a new field name"
            )
