"""The exporter refuses a mapping that does not fit the input, before a single API call.

`FieldMapping(email="Email")` on rows whose column is `email` would reject every row as `missing_email`
and still create an empty list; a misspelt field column would silently never be sent. The first row is
checked instead: `ConfigurationError` naming the missing columns and the row's columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments import AutopilotClient, ConfigurationError, CustomField, Exporter, FieldMapping
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import from_dataframe, read_csv, read_jsonl, read_parquet

ROWS = [
    {"email": "ada@example.com", "first_name": "Ada", "points": 3},
    {"email": "bob@example.com", "first_name": "Bob", "points": 5},
]


def _csv(tmp: Path) -> Iterator[Mapping[str, Any]]:
    path = tmp / "s.csv"
    path.write_text("email,first_name,points\nada@example.com,Ada,3\nbob@example.com,Bob,5\n", "utf-8")
    return read_csv(path)


def _jsonl(tmp: Path) -> Iterator[Mapping[str, Any]]:
    path = tmp / "s.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), "utf-8")
    return read_jsonl(path)


def _parquet(tmp: Path) -> Iterator[Mapping[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / "s.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    return read_parquet(path)


def _frame(_tmp: Path) -> Iterator[Mapping[str, Any]]:
    import pandas as pd

    return from_dataframe(pd.DataFrame(ROWS))


def _pandas(_tmp: Path) -> Any:
    import pandas as pd

    return pd.DataFrame(ROWS)  # passed straight in


def _polars(_tmp: Path) -> Any:
    import polars as pl

    return pl.DataFrame(ROWS)


def _arrow(_tmp: Path) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist(ROWS)


INPUTS: dict[str, Callable[[Path], Any]] = {
    "pandas": _pandas,
    "polars": _polars,
    "arrow table": _arrow,
    "list": lambda _tmp: [dict(r) for r in ROWS],
    "generator": lambda _tmp: (dict(r) for r in ROWS),
    "csv": _csv,
    "jsonl": _jsonl,
    "parquet": _parquet,
    "dataframe": _frame,
}

WRONG = {
    "email": (FieldMapping(email="Email"), "'Email' (the email)"),
    "field": (FieldMapping(email="email", fields={"FirstName": "firstname"}), "'firstname' (FirstName)"),
    "custom": (
        FieldMapping(email="email", custom=[CustomField("Points", "integer", source="pts")]),
        "'pts' (custom field 'Points')",
    ),
}


@pytest.mark.parametrize("mode", ["export", "plan", "export with state", "export removing leavers"])
@pytest.mark.parametrize("kind", sorted(INPUTS))
@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_a_mapped_column_the_first_row_lacks_stops_everything_before_any_api_call(
    autopilot_sandbox: Sandbox, tmp_path: Path, mode: str, kind: str, wrong: str
) -> None:
    sb = autopilot_sandbox
    mapping, named = WRONG[wrong]
    options: dict[str, Any] = {}
    if mode != "export" and mode != "plan":
        options["state"] = tmp_path / "state.db"
    if mode == "export removing leavers":
        options["on_leave"] = "remove"
    with AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client:
        exporter = Exporter(client, mapping, **options)
        run = exporter.plan if mode == "plan" else exporter.export
        with pytest.raises(ConfigurationError) as caught:
            run(INPUTS[kind](tmp_path), segment="VIP")
    message = str(caught.value)
    assert named in message
    assert "the columns are email, first_name, points" in message
    assert "ada@example.com" not in message
    assert "Ada" not in message
    assert sb.requests == []  # not even the list lookup
    assert sb.lists == []
    assert not (tmp_path / "state.db").exists() or mode == "plan"


def test_a_column_with_a_default_may_be_absent(autopilot_sandbox: Sandbox) -> None:
    sb = autopilot_sandbox
    mapping = FieldMapping(
        email="email", fields={"FirstName": "first_name", "MailingCity": "city"}, defaults={"MailingCity": ""}
    )
    with AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client:
        report = Exporter(client, mapping).export([dict(r) for r in ROWS], segment="VIP")
    assert report.exported == 2
    assert "MailingCity" not in sb.contacts["ada@example.com"]  # an empty default sends nothing
