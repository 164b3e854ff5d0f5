"""Ortto's field dialect: mapped contacts become Ortto people, values within Ortto's limits or a reason."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments import ConfigurationError, CustomField, FieldMapping
from autopilot_segments._destinations.ortto.fields import OrttoFields
from autopilot_segments._destinations.ortto.models import OrttoCustomField

ACCOUNT = [
    OrttoCustomField("int:cm:loyalty-points", "Loyalty Points", "integer"),
    OrttoCustomField("dec:cm:spend", "Spend", "decimal"),
    OrttoCustomField("str:cm:tier", "Tier", "text"),
    OrttoCustomField("txt:cm:notes", "Notes", "large_text"),
    OrttoCustomField("bol:cm:vip", "VIP", "boolean"),
    OrttoCustomField("dtz:cm:joined", "Joined", "date"),
]
CUSTOM = [
    CustomField("Loyalty Points", "integer", source="points"),
    CustomField("spend", "float"),  # matched case-insensitively
    CustomField("Tier", "string"),
    CustomField("Notes", "string"),
    CustomField("VIP", "boolean"),
    CustomField("Joined", "date"),
]


def dialect(**options: Any) -> OrttoFields:
    return OrttoFields.resolve(
        standard_fields=["Email", "FirstName", "LastName", "MobilePhone", "MailingCity", "MailingPostalCode"],
        custom_fields=CUSTOM,
        account_fields=ACCOUNT,
        **options,
    )


def test_a_mapped_row_becomes_an_ortto_person() -> None:
    mapping = FieldMapping(
        email="email",
        fields={"FirstName": "first", "MobilePhone": "mobile", "MailingCity": "city"},
        custom=CUSTOM,
    )
    row = {
        "email": "Ann@Example.com", "first": "Ann", "mobile": "+61 412 345 678", "city": "Sydney",
        "points": "1200", "spend": "12.3456", "Tier": "Gold", "Notes": "n" * 300, "VIP": "yes",
        "Joined": "2023-06-15",
    }  # fmt: skip
    mapped = mapping.map_row(row, 1)
    person = dialect().to_person(mapped.payload)  # type: ignore[union-attr]
    assert person == {
        "str::email": "ann@example.com",
        "str::first": "Ann",
        "phn::phone": {"phone": "+61 412 345 678", "parse_with_country_code": True},
        "geo::city": {"name": "Sydney"},
        "int:cm:loyalty-points": 1200,
        "dec:cm:spend": 12346,
        "str:cm:tier": "Gold",
        "txt:cm:notes": "n" * 300,
        "bol:cm:vip": True,
        "dtz:cm:joined": {"year": 2023, "month": 6, "day": 15, "timezone": "UTC"},
    }
    assert "bol::p" not in person


def test_every_configuration_problem_is_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OrttoFields.resolve(
            standard_fields=["Email", "Company", "Phone", "MobilePhone"],
            custom_fields=[CustomField("Missing", "integer"), CustomField("Tier", "integer")],
            account_fields=ACCOUNT,
            maps_unsubscribed=True,
        )
    text = str(caught.value)
    assert "Company has no Ortto built-in field" in text
    assert "Phone and MobilePhone would both fill Ortto's phn::phone" in text
    assert "no custom field named 'Missing': create it (type integer)" in text
    assert "'Tier' (str:cm:tier) holds str values, but the mapping declares it integer" in text
    assert "send_email_permission=True" in text


def test_missing_custom_fields_say_what_to_create() -> None:
    wanted = [CustomField("Tier", "string"), CustomField("Signup", "date"), CustomField("Score", "float")]
    assert OrttoFields.missing_custom_fields(wanted, ACCOUNT) == [("Signup", "date"), ("Score", "decimal")]


def test_email_permission_is_sent_only_on_opt_in() -> None:
    payload = {"Email": "a@example.com", "unsubscribed": True}
    assert "bol::p" not in OrttoFields(standard={}, custom={}).to_person(payload)  # type: ignore[operator]
    opted = OrttoFields(standard={}, custom={}, send_email_permission=True).to_person(payload)
    assert opted == {"str::email": "a@example.com", "bol::p": False}


@pytest.mark.parametrize(
    ("custom", "problem"),
    [
        ({"string--Tier": "x" * 256}, "Tier: 256 characters, over Ortto's limit of 255"),
        ({"string--Notes": "x" * 4001}, "Notes: 4001 characters, over Ortto's limit of 4000"),
        ({"integer--Loyalty--Points": 2**63}, "Loyalty Points: outside Ortto's 64-bit integer range"),
        ({"float--spend": 1e300}, "spend: outside Ortto's decimal range"),
        ({"date--Joined": "15/06/2023"}, "Joined: not an ISO-8601 date"),
    ],
)
def test_values_over_ortto_s_limits_are_a_reason_not_a_request(custom: dict[str, Any], problem: str) -> None:
    assert dialect().to_person({"Email": "a@example.com", "custom": custom}) == problem


@given(st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6))
def test_decimals_are_thousandths_rounded_half_even(value: decimal.Decimal) -> None:
    person = dialect().to_person({"Email": "a@example.com", "custom": {"float--spend": value}})
    assert isinstance(person, dict)
    expected = int((value * 1000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
    assert person["dec:cm:spend"] == expected


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_floats_use_their_shortest_decimal_not_the_binary_approximation(value: float) -> None:
    person = dialect().to_person({"Email": "a@example.com", "custom": {"float--spend": value}})
    assert isinstance(person, dict)
    exact = decimal.Decimal(repr(value))
    assert person["dec:cm:spend"] == int((exact * 1000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))


@given(st.text(max_size=300))
def test_text_is_sent_verbatim_up_to_255_characters(text: str) -> None:
    person = dialect().to_person({"Email": "a@example.com", "custom": {"string--Tier": text}})
    if len(text) <= 255:
        assert person == {"str::email": "a@example.com", "str:cm:tier": text}
    else:
        assert person == f"Tier: {len(text)} characters, over Ortto's limit of 255"


@given(st.datetimes(timezones=st.just(dt.timezone.utc)))
def test_dates_keep_their_utc_calendar_day(moment: dt.datetime) -> None:
    iso = moment.isoformat().replace("+00:00", "Z")
    person = dialect().to_person({"Email": "a@example.com", "custom": {"date--Joined": iso}})
    assert isinstance(person, dict)
    assert person["dtz:cm:joined"] == {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "timezone": "UTC",
    }
