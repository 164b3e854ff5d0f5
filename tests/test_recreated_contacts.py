"""State + a contact deleted in Autopilot and re-created by the next upsert: its membership is not trusted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _exporting import make_client, make_mapping

from autopilot_segments import Exporter
from autopilot_segments.sandbox import Sandbox

SEGMENT = "VIP customers"


def rows(ids: range, *, changed: int | None = None) -> list[dict[str, Any]]:
    return [
        {"Email": f"user{i}@example.com", "first_name": f"First{i}", "tier": 2 if i == changed else 1}
        for i in ids
    ]


@pytest.mark.parametrize("bulk_list", ["ignored", "honoured"])
def test_a_re_created_contact_is_put_back_on_the_list(bulk_list: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with Sandbox(bulk_list=bulk_list) as sb:
        client = make_client(sb)

        def export(source: list[dict[str, Any]], **options: Any) -> Any:
            return Exporter(client, make_mapping(), state=state, batch_size=10, **options).export(
                source, segment=SEGMENT
            )

        first = export(rows(range(25)))
        list_id = first.list_id
        assert list_id is not None
        assert bulk_list in first.list_membership
        old_id = sb.contacts["user7@example.com"]["contact_id"]
        client.delete_contact("user7@example.com")  # deleted inside Autopilot: off every list too
        assert "user7@example.com" not in sb.list_members(list_id)

        again = export(rows(range(25), changed=7))  # changed in the source: sent again
        assert (again.exported, again.unchanged, len(again.rejected)) == (1, 24, 0)
        new_id = sb.contacts["user7@example.com"]["contact_id"]
        assert new_id != old_id
        assert sb.list_members(list_id) == {f"user{i}@example.com" for i in range(25)}

        # The state recorded the new contact id: removing the contact once it leaves takes it off.
        third = export(rows(range(25))[:7] + rows(range(25))[8:], on_leave="remove")
        assert third.removed == 1
        assert sb.list_members(list_id) == {f"user{i}@example.com" for i in range(25) if i != 7}
