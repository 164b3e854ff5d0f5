"""Dates as platforms write them: explicit formats, no day-first/month-first guess, placeholders empty."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments import ConfigurationError, CustomField, FieldMapping, MappedContact, Rejection
from autopilot_segments._mapping.dates import NAMED_DATE_FORMATS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (tomli, the test extra's)
    import tomli as tomllib


def mapped(value: Any, *formats: str, default: Any = None) -> MappedContact | Rejection:
    field = CustomField("Joined", "date", source="joined", formats=list(formats), default=default)
    mapping = FieldMapping(email="email", custom=[field])
    return mapping.map_row({"email": "ada@example.com", "joined": value}, 1)


def joined(value: Any, *formats: str, default: Any = None) -> Any:
    result = mapped(value, *formats, default=default)
    assert isinstance(result, MappedContact), result
    return result.payload.get("custom", {}).get("date--Joined")


def rejected(value: Any, *formats: str) -> str:
    result = mapped(value, *formats)
    assert isinstance(result, Rejection), result
    assert result.reason == "invalid_value"
    return result.message


@pytest.mark.parametrize(
    ("value", "formats", "expected"),
    [
        # Dataverse / Synapse Link: en-US SinkModifiedOn, ISO data columns
        ("6/15/2023 12:03:02 PM", ["dataverse"], "2023-06-15T12:03:02.000Z"),
        ("6/15/2023 12:03:02 AM", ["dataverse"], "2023-06-15T00:03:02.000Z"),
        ("2023-06-15T12:03:02.0000000Z", ["dataverse"], "2023-06-15T12:03:02.000Z"),
        ("2023-06-15T14:03:02.0000000+02:00", ["dataverse"], "2023-06-15T12:03:02.000Z"),
        ("6/15/2023", ["dataverse"], "2023-06-15T00:00:00.000Z"),
        ("6/15/2023 12:03:02 PM", ["%m/%d/%Y %I:%M:%S %p"], "2023-06-15T12:03:02.000Z"),
        ("20-12-2023", ["day-first"], "2023-12-20T00:00:00.000Z"),
        ("20.12.2023 18:30", ["day-first"], "2023-12-20T18:30:00.000Z"),
        ("20-12-2023", ["%d-%m-%Y"], "2023-12-20T00:00:00.000Z"),
        ("12/20/2023 6:30 PM", ["month-first"], "2023-12-20T18:30:00.000Z"),
        ("15.06.2023 14:03 +0200", ["%d.%m.%Y %H:%M %z"], "2023-06-15T12:03:00.000Z"),
        ("1686830582", ["unix-seconds"], "2023-06-15T12:03:02.000Z"),
        (1686830582000, ["unix-milliseconds"], "2023-06-15T12:03:02.000Z"),
        ("2023-06-15", ["day-first", "iso"], "2023-06-15T00:00:00.000Z"),
        (datetime(2023, 6, 15, 12, 3, 2), ["day-first"], "2023-06-15T12:03:02.000Z"),
    ],
)
def test_explicit_formats_read_what_platforms_write(value: Any, formats: list[str], expected: str) -> None:
    assert joined(value, *formats) == expected


def test_without_formats_only_iso_is_read_and_the_message_says_so() -> None:
    assert joined("2023-06-15T12:03:02Z") == "2023-06-15T12:03:02.000Z"
    assert "ISO-8601" in rejected("6/15/2023 12:03:02 PM")
    assert "ISO-8601" in rejected("20-12-2023")
    message = rejected("2023-06-15", "day-first")
    assert "not a date in the expected format (day-first)" in message


def test_day_first_and_month_first_are_never_guessed() -> None:
    message = rejected("01/02/2023", "day-first", "month-first")
    assert "reads as 2 different dates" in message
    assert "2023-01-02T00:00:00.000Z" in message
    assert "2023-02-01T00:00:00.000Z" in message
    # a value only one of them can read is no guess; nor is one both read alike
    assert joined("13/02/2023", "day-first", "month-first") == "2023-02-13T00:00:00.000Z"
    assert joined("05/05/2023", "day-first", "month-first") == "2023-05-05T00:00:00.000Z"
    # month-first alone never reads a day-first value as something else
    assert "expected format" in rejected("20/12/2023", "month-first")


@pytest.mark.parametrize(
    "placeholder",
    [
        "0001-01-01T00:00:00.0000000",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00.000+00:00",
        "0001-01-01 00:00:00",
        "0001-01-01",
        "1753-01-01T00:00:00",
        "1753-01-01 00:00:00.000",
        datetime(1, 1, 1),
        datetime(1, 1, 1, tzinfo=timezone.utc),
        date(1753, 1, 1),
    ],
)
@pytest.mark.parametrize("formats", [(), ("dataverse",), ("day-first", "iso")])
def test_placeholder_minimum_dates_are_empty(placeholder: Any, formats: tuple[str, ...]) -> None:
    assert joined(placeholder, *formats) is None
    assert joined(placeholder, *formats, default="2000-01-01") == "2000-01-01T00:00:00.000Z"


def test_dotnet_min_value_in_us_culture_is_empty_too() -> None:
    assert joined("1/1/0001 12:00:00 AM", "dataverse") is None
    assert joined("1/1/0001 12:00:00 AM", "month-first") is None


def test_real_dates_next_to_the_placeholders_are_kept() -> None:
    assert joined("0001-01-01T00:00:01Z") == "0001-01-01T00:00:01.000Z"
    assert joined("1753-01-02") == "1753-01-02T00:00:00.000Z"
    assert (
        joined("1900-01-01T00:00:00") == "1900-01-01T00:00:00.000Z"
    )  # a real date (SQL's zero is not assumed)
    assert joined(datetime(1753, 1, 1, 12)) == "1753-01-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        (CustomField("N", "integer", formats=["%d/%m/%Y"]), "formats only apply to date fields"),
        (CustomField("D", "date", formats=["%d/%m/%y"]), "two-digit year (%y), whose century is a guess"),
        (CustomField("D", "date", formats=["%H:%M"]), "must give the year (%Y), the month"),
        (CustomField("D", "date", formats=["dotnet"]), "neither a strftime pattern"),
        (CustomField("D", "date", formats=[5]), "formats must be a list"),  # type: ignore[list-item]
        (CustomField("D", "date", formats=5), "formats must be a list"),  # type: ignore[arg-type]
        (CustomField("D", "date", formats=["%d/%m/%Y %Q"]), "cannot be used"),
        (CustomField("D", "date", formats=["day-first"], default="2023-12-20"), "the default cannot be used"),
    ],
)
def test_bad_formats_fail_at_construction(field: CustomField, problem: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        FieldMapping(email="email", custom=[field])
    assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_formats_travel_through_json_and_toml_mapping_files() -> None:
    field = CustomField("Joined", "date", source="joined", formats=["%m/%d/%Y %I:%M:%S %p", "dataverse"])
    mapping = FieldMapping(email="email", custom=[field])
    data = mapping.to_dict()
    assert data["custom"][0]["formats"] == ["%m/%d/%Y %I:%M:%S %p", "dataverse"]
    again = FieldMapping.from_dict(json.loads(json.dumps(data)))
    assert again.custom[0].formats == ("%m/%d/%Y %I:%M:%S %p", "dataverse")
    assert again == mapping
    toml = tomllib.loads(
        'email = "email"\n'
        '[[custom]]\nname = "Joined"\ntype = "date"\nsource = "joined"\nformats = "day-first"\n'
        '[[custom]]\nname = "Seen"\ntype = "date"\nformats = ["%d.%m.%Y", "iso"]\n'
    )
    from_toml = FieldMapping.from_dict(toml)
    assert [f.formats for f in from_toml.custom] == [("day-first",), ("%d.%m.%Y", "iso")]
    row = {"email": "a@example.com", "joined": "20-12-2023", "Seen": "21.12.2023"}
    result = from_toml.map_row(row, 1)
    assert isinstance(result, MappedContact)
    assert result.payload["custom"] == {
        "date--Joined": "2023-12-20T00:00:00.000Z",
        "date--Seen": "2023-12-21T00:00:00.000Z",
    }
    assert "formats" not in FieldMapping(email="e", custom=[CustomField("D", "date")]).to_dict()["custom"][0]
    with pytest.raises(ConfigurationError, match="neither a strftime pattern"):
        FieldMapping.from_dict(
            {"email": "e", "custom": [{"name": "D", "type": "date", "formats": ["dd/mm"]}]}
        )


# ------------------------------------------------------------------------------------- properties

moments = st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(9999, 12, 30)).map(
    lambda m: m.replace(microsecond=0)
)


@settings(deadline=None)  # the machine is shared: no timing in tests
@given(
    moment=moments, named=st.sampled_from(["dataverse", "month-first", "day-first"]), index=st.integers(0, 10)
)
def test_every_pattern_of_a_named_format_reads_back_what_it_writes(
    moment: datetime, named: str, index: int
) -> None:
    patterns = [p for p in NAMED_DATE_FORMATS[named] if p != "iso"]
    pattern = patterns[index % len(patterns)]
    text = moment.strftime(pattern)
    expected = datetime.strptime(text, pattern).isoformat()[:19] + ".000Z"  # what the text holds (UTC)
    assert joined(text, named) == expected


@settings(deadline=None)  # the machine is shared: no timing in tests
@given(moment=moments)
def test_an_ambiguous_day_and_month_is_refused_whenever_both_orders_are_allowed(moment: datetime) -> None:
    text = moment.strftime("%d/%m/%Y")
    result = mapped(text, "day-first", "month-first")
    if moment.day <= 12 and moment.day != moment.month:
        assert isinstance(result, Rejection)
        assert "different dates" in result.message
    else:
        assert isinstance(result, MappedContact)
        assert result.payload["custom"]["date--Joined"] == moment.strftime("%Y-%m-%dT00:00:00.000Z")


@settings(deadline=None)  # the machine is shared: no timing in tests
@given(moment=moments, offset=st.integers(-14 * 60, 14 * 60))
def test_iso_output_is_utc_and_reads_back_unchanged(moment: datetime, offset: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset)))
    sent = joined(aware.isoformat(), "iso")
    assert sent == (aware - aware.utcoffset()).replace(tzinfo=None).isoformat()[:19] + ".000Z"  # type: ignore[operator]
    assert joined(sent) == sent


@settings(deadline=None)  # the machine is shared: no timing in tests
@given(
    day=st.sampled_from(["0001-01-01", "1753-01-01"]),
    separator=st.sampled_from(["T", " ", "t"]),
    fraction=st.sampled_from(["", ".0", ".000", ".0000000"]),
    zone=st.sampled_from(["", "Z", "+00:00", "-05:00", "+0100"]),
    formats=st.sampled_from([(), ("dataverse",), ("month-first", "iso")]),
)
def test_placeholder_texts_are_always_empty(
    day: str, separator: str, fraction: str, zone: str, formats: tuple[str, ...]
) -> None:
    assert joined(f"{day}{separator}00:00:00{fraction}{zone}", *formats) is None
