"""Properties of the mapping: any row gives a contact or a rejection, and the sandbox accepts the contacts."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import timezone
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot_segments import CustomField, FieldMapping, MappedContact, Rejection
from autopilot_segments._mapping.fields import custom_field_name_problem, parse_custom_field_key
from autopilot_segments.sandbox import Sandbox

MAPPING = FieldMapping(
    email="email",
    fields={"FirstName": "first", "LastName": "last", "Company": "company", "NumberOfEmployees": "staff"},
    custom=[
        CustomField("Loyalty Points", "integer", source="points"),
        CustomField("Balance", "float", source="balance"),
        CustomField("Signup Date", "date", source="signup"),
        CustomField("Newsletter", "boolean", source="news"),
        CustomField("Tier Name", "string", source="tier"),
    ],
    unsubscribed="unsub",
    allow_resubscribe=True,
)


class Colour(enum.Enum):
    RED = "red"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparison either")

    __hash__ = object.__hash__


# What rows from pandas, numpy and odd producers hold besides the plain Python types.
exotic = st.one_of(
    st.floats(width=32).map(np.float32),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.booleans().map(np.bool_),
    st.sampled_from(
        [np.datetime64("NaT"), np.datetime64("2016-11-22T10:30:00.123456789", "ns"), pd.NaT, pd.NA]
    ),
    st.datetimes().map(pd.Timestamp),
    st.sampled_from(
        [Colour.RED, Unprintable(), Decimal("1e999999999"), Decimal("-1e-999999999"), Decimal("sNaN")]
    ),
)
COLUMNS = [
    "email",
    "first",
    "last",
    "company",
    "staff",
    "points",
    "balance",
    "signup",
    "news",
    "tier",
    "unsub",
]

scalars = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.text(alphabet=" 0123456789.-+eE", max_size=12),
    st.sampled_from(["yes", "No", "TRUE", "0", "1", "2016-11-22", "2016-11-22T10:30:00Z", "nan", "42.0"]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(timezone.utc), st.timezones())),
    st.dates(),
    st.binary(max_size=10),
    st.decimals(allow_nan=True, allow_infinity=True),
    exotic,
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=2)
)
emails = st.one_of(
    st.emails(),
    st.sampled_from(
        [
            "Ann@Bücher.DE",
            "x@straße.de",
            "y@XN--BCHER-KVA.de",
            "z@例え。テスト",
            "w@xn--zz.com",
            "v@ex\u200dample.com",
        ]
    ),
    st.builds(lambda e, pad: f"{pad}{e.upper()}{pad}", st.emails(), st.sampled_from(["", " ", "\t"])),
    st.text(max_size=30),
    values,
)
rows = st.builds(
    # Every row has every mapped column (as from a file or a query); an absent value is None.
    lambda known, extra, email: {**extra, **dict.fromkeys(COLUMNS[1:]), **known, "email": email},
    st.fixed_dictionaries({}, optional=dict.fromkeys(COLUMNS[1:], values)),
    st.dictionaries(st.text(max_size=8), values, max_size=3),
    emails,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[requests.Session, str]]:
    with Sandbox() as sb, requests.Session() as session:
        session.headers["autopilotapikey"] = sb.api_key
        yield session, sb.url + "/contacts"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), values, max_size=8), st.sampled_from(["email", ""]))
def test_any_row_of_any_values_gives_a_contact_or_a_rejection(row: dict[str, Any], column: str) -> None:
    mapping = FieldMapping(email=column or "email", custom=[CustomField("X", "date", source=column or "x")])
    result = mapping.map_row(row, 5)
    assert isinstance(result, (MappedContact, Rejection))
    assert result.row == 5


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows, min_size=1, max_size=8))
def test_contacts_are_accepted_by_the_sandbox(
    sandbox: tuple[requests.Session, str], batch: list[dict[str, Any]]
) -> None:
    session, url = sandbox
    results = list(MAPPING.map_rows(batch))
    assert len(results) == len(batch)
    assert [r.row for r in results] == list(range(1, len(batch) + 1))
    contacts = [r for r in results if isinstance(r, MappedContact)]
    for rejected in (r for r in results if isinstance(r, Rejection)):
        assert rejected.message
        assert rejected.reason in {
            "missing_email",
            "invalid_email",
            "invalid_value",
            "duplicate_email",
        }
    emails = [c.email for c in contacts]
    assert len(emails) == len(set(emails))
    if not contacts:
        return
    answer = session.post(url, json={"contacts": [c.payload for c in contacts]}, timeout=10)
    assert answer.status_code == 200, (answer.text, [c.payload for c in contacts])
    assert set(answer.json()["email_contact_map"]) == set(emails)


@given(st.text(min_size=1, max_size=40), st.sampled_from(["string", "integer", "float", "date", "boolean"]))
def test_custom_field_names_round_trip_through_the_key(name: str, field_type: str) -> None:
    field = CustomField(name, field_type)  # type: ignore[arg-type]
    if custom_field_name_problem(name) is None:
        assert parse_custom_field_key(field.key) == (field_type, name)
        assert CustomField.from_key(field.key) == field
    else:
        assert parse_custom_field_key(field.key) != (field_type, name) or "--" in name or name != name.strip()


@given(
    st.lists(
        st.text(
            st.characters(codec="utf-8", exclude_categories=["Zs", "Cc", "Zl", "Zp"]), min_size=1, max_size=8
        ),
        min_size=1,
        max_size=4,
    )
)
def test_names_of_single_spaced_words_are_accepted_unless_ambiguous(words: list[str]) -> None:
    name = " ".join(words)
    problem = custom_field_name_problem(name)
    ambiguous = (
        "--" in name
        or any(w.endswith("-") for w in words[:-1])
        or any(ch.isspace() for ch in name.replace(" ", ""))
    )
    assert (problem is None) == (not ambiguous), (name, problem)
