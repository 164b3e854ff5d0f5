"""FieldMapping: configuration checks, row mapping, coercion, duplicates, consent, serialisation, infer."""

from __future__ import annotations

import json
import sys
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments import (
    STANDARD_FIELDS,
    ConfigurationError,
    CustomField,
    FieldMapping,
    MappedContact,
    Rejection,
)
from autopilot_segments._destinations.autopilot.fields import closest_standard_field
from autopilot_segments._mapping.dedupe import RowsByEmail

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (tomli, the test extra's)
    import tomli as tomllib


def contact(mapping: FieldMapping, row: dict[str, Any]) -> dict[str, Any]:
    result = mapping.map_row(row, 1)
    assert isinstance(result, MappedContact), result
    return result.payload


def rejection(mapping: FieldMapping, row: dict[str, Any]) -> Rejection:
    result = mapping.map_row(row, 7)
    assert isinstance(result, Rejection), result
    assert result.row == 7
    return result


def custom(field_type: str, value: Any, **options: Any) -> Any:
    mapping = FieldMapping(email="email", custom=[CustomField("Value", field_type, source="v")], **options)  # type: ignore[arg-type]
    result = mapping.map_row({"email": "a@example.com", "v": value}, 1)
    if isinstance(result, Rejection):
        return result
    return result.payload.get("custom", {}).get(f"{field_type}--Value", "<omitted>")


# --- configuration -------------------------------------------------------------------------------------


def test_every_configuration_problem_is_listed_with_a_fix() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FieldMapping(
            email="email",
            fields={"FirstNme": "first", "Email": "mail", "Comapny": "co", "firstname": "f2", "Zzzzzz": "z"},
            custom=[
                CustomField("Points", "integr", source="p"),  # type: ignore[arg-type]
                CustomField("Loyalty--Tier", "string"),
                CustomField("", "date"),
                CustomField("Tier", "string"),
                CustomField("Tier", "integer"),
                CustomField("Score - 2024", "float"),
            ],
            unsubscribed="unsub",
            keep="middle",  # type: ignore[arg-type]
        )
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "'FirstNme' is not an Autopilot standard field; did you mean FirstName?" in text
    assert "'Comapny' is not an Autopilot standard field; did you mean Company?" in text
    assert "'firstname' is not an Autopilot standard field; did you mean FirstName?" in text
    assert "'Zzzzzz' is not an Autopilot standard field; use a custom field" in text
    assert "'Email' cannot be in fields" in text
    assert "email=<column>" in text
    assert "unknown type 'integr'; did you mean 'integer'?" in text
    assert "'Loyalty--Tier'" in text
    assert "contains '--'" in text
    assert "the name is empty" in text
    assert "both feed the Autopilot custom field 'Tier'" in text
    assert "'-' right before a space" in text
    assert "allow_resubscribe=True" in text
    assert "keep must be 'first' or 'last'" in text
    assert len(problems) == 12
    assert str(len(problems)) in str(caught.value)


def test_a_single_problem_is_the_whole_message() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^'Phnoe' is not an Autopilot standard field; did you mean Phone\?$"
    ):
        FieldMapping(email="e", fields={"Phnoe": "p"})


@pytest.mark.parametrize(
    ("common_name", "standard"),
    [
        ("City", "MailingCity"),
        ("Zip", "MailingPostalCode"),
        ("zip_code", "MailingPostalCode"),
        ("Postcode", "MailingPostalCode"),
        ("Street", "MailingStreet"),
        ("Address", "MailingStreet"),
        ("State", "MailingState"),
        ("Province", "MailingState"),
        ("Country", "MailingCountry"),
        ("Mobile", "MobilePhone"),
        ("Cell Phone", "MobilePhone"),
        ("Telephone", "Phone"),
        ("company_name", "Company"),
        ("Organisation", "Company"),
        ("Job Title", "Title"),
        ("Surname", "LastName"),
        ("given-name", "FirstName"),
        ("Employees", "NumberOfEmployees"),
        ("URL", "Website"),
        ("Owner", "owner_name"),
    ],
)
def test_common_names_of_standard_fields_suggest_the_standard_field(common_name: str, standard: str) -> None:
    assert closest_standard_field(common_name) == standard
    with pytest.raises(ConfigurationError) as caught:
        FieldMapping(email="e", fields={common_name: "column"})
    assert str(caught.value) == (
        f"{common_name!r} is not an Autopilot standard field; did you mean {standard}?"
    )


@pytest.mark.parametrize("name", ["Loyalty Points", "Favourite Colour", "Score"])
def test_names_unlike_any_standard_field_still_advise_a_custom_field(name: str) -> None:
    assert closest_standard_field(name) is None


def test_unsubscribed_is_refused_in_fields() -> None:
    with pytest.raises(ConfigurationError, match="unsubscribed=<column> together with allow_resubscribe"):
        FieldMapping(email="e", fields={"unsubscribed": "u"})


def test_defaults_and_transforms_are_checked() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FieldMapping(
            email="e",
            defaults={"Compnay": "x", "Title": ["a", "b"]},
            transforms={"Nope": str.upper, "Title": "not callable"},  # type: ignore[dict-item]
            custom=[CustomField("N", "integer", default="many")],
        )
    text = "\n".join(caught.value.problems)
    assert "defaults['Compnay']: did you mean Company?" in text
    assert "defaults['Title'] cannot be sent" in text
    assert "several values" in text
    assert "transforms['Nope']" in text
    assert "transforms['Title'] must be callable" in text
    assert "custom field 'N': the default cannot be used: 'many' is not a whole number" in text


def test_mapping_is_frozen_and_keyword_only() -> None:
    mapping = FieldMapping(email="email")
    with pytest.raises(AttributeError):
        mapping.email = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        FieldMapping("email")  # type: ignore[misc]


def test_custom_field_key_and_positional_signature() -> None:
    field = CustomField("Loyalty Points", "integer", source="points")
    assert field.key == "integer--Loyalty--Points"
    assert field.column == "points"
    assert CustomField("Tier", "string").column == "Tier"
    assert CustomField.from_key("integer--Loyalty--Points") == CustomField("Loyalty Points", "integer")
    with pytest.raises(ValueError, match="not a custom field key"):
        CustomField.from_key("number--x")


def test_standard_fields_are_autopilots() -> None:
    assert len(STANDARD_FIELDS) == 22
    assert {"Email", "FirstName", "owner_name", "LinkedIn", "MailingPostalCode"} <= set(STANDARD_FIELDS)


# --- the email column ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", "   ", float("nan")])
def test_missing_email(value: Any) -> None:
    mapping = FieldMapping(email="mail")
    rejected = rejection(mapping, {"mail": value})
    assert rejected.reason == "missing_email"
    assert rejected.field == "mail"
    assert "column 'mail'" in rejected.message
    assert "missing" in rejected.message


def test_absent_email_column_is_missing_email() -> None:
    assert rejection(FieldMapping(email="mail"), {"other": "x@example.com"}).reason == "missing_email"


@pytest.mark.parametrize("value", [42, 3.5, True, ["a@example.com"], {"a": 1}])
def test_email_that_is_not_text(value: Any) -> None:
    rejected = rejection(FieldMapping(email="mail"), {"mail": value})
    assert rejected.reason == "invalid_email"
    assert "not text" in rejected.message


def test_invalid_email_message_says_what_and_where() -> None:
    rejected = rejection(FieldMapping(email="mail"), {"mail": " john..doe@example.com "})
    assert rejected.reason == "invalid_email"
    assert rejected.email == "john..doe@example.com"
    assert rejected.message == (
        "column 'mail': the email 'john..doe@example.com' is not valid: the part before the @ has two dots "
        "in a row; correct the address"
    )


def test_email_is_normalised_in_the_contact() -> None:
    result = FieldMapping(email="mail").map_row({"mail": "  Ann.Lee+VIP@Bücher.DE "}, 3)
    assert result == MappedContact(
        3, "ann.lee+vip@xn--bcher-kva.de", {"Email": "ann.lee+vip@xn--bcher-kva.de"}
    )


def test_local_part_case_option_and_bytes_email() -> None:
    mapping = FieldMapping(email="mail", lowercase_local_part=False)
    assert contact(mapping, {"mail": "Ann@EXAMPLE.com"})["Email"] == "Ann@example.com"
    assert contact(mapping, {"mail": b"Bob@Example.com"})["Email"] == "Bob@example.com"


def test_email_transform() -> None:
    mapping = FieldMapping(email="mail", transforms={"Email": lambda v: v.replace(" at ", "@")})
    assert contact(mapping, {"mail": "ann at example.com"})["Email"] == "ann@example.com"
    failing = FieldMapping(email="mail", transforms={"Email": lambda v: v.nope})
    assert rejection(failing, {"mail": "a@example.com"}).reason == "invalid_email"


# --- standard fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        ("  Ann  ", "Ann"),
        (42, "42"),
        (42.0, "42"),
        (3.5, "3.5"),
        (-0.25, "-0.25"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e17, "123456789012345680"),
        (2.5e-05, "0.000025"),
        (-1e-7, "-0.0000001"),
        (1e21, "1e+21"),
        (1e-8, "1e-08"),
        (-0.0, "0"),
        (True, "true"),
        (False, "false"),
        (Decimal("12.50"), "12.50"),
        (Decimal("7"), "7"),
        (date(2020, 2, 29), "2020-02-29"),
        (datetime(2020, 2, 29, 10, 30, tzinfo=timezone(timedelta(hours=2))), "2020-02-29T08:30:00.000Z"),
        (b"Caf\xc3\xa9", "Café"),
        ("Zoë", "Zoë"),
    ],
)
def test_standard_fields_are_sent_as_trimmed_strings(value: Any, sent: str) -> None:
    mapping = FieldMapping(email="e", fields={"Company": "c"})
    assert contact(mapping, {"e": "a@example.com", "c": value})["Company"] == sent


@pytest.mark.parametrize("value", [None, "", "  \t", float("nan")])
def test_empty_values_are_left_out(value: Any) -> None:
    mapping = FieldMapping(
        email="e", fields={"Company": "c"}, custom=[CustomField("N", "integer", source="n")]
    )
    assert contact(mapping, {"e": "a@example.com", "c": value, "n": value}) == {"Email": "a@example.com"}


def test_empty_values_can_be_sent_as_blanks() -> None:
    mapping = FieldMapping(
        email="e",
        fields={"Company": "c"},
        custom=[CustomField("S", "string", source="s"), CustomField("N", "integer", source="n")],
        omit_empty=False,
    )
    assert contact(mapping, {"e": "a@example.com", "c": None, "s": " ", "n": ""}) == {
        "Email": "a@example.com",
        "Company": "",
        "custom": {"string--S": ""},
    }


@pytest.mark.parametrize(
    "value",
    [[1, 2], {"a": 1}, {1, 2}, b"\xff\xfe", "\ud800", Decimal("1e999999999"), Decimal("-1e-999999999")],
)
def test_standard_field_values_that_cannot_be_text(value: Any) -> None:
    rejected = rejection(FieldMapping(email="e", fields={"Company": "c"}), {"e": "a@example.com", "c": value})
    assert rejected.reason == "invalid_value"
    assert rejected.field == "c"
    assert rejected.message.startswith("column 'c': ")
    assert rejected.email == "a@example.com"


def test_overlong_standard_field_is_rejected_or_truncated() -> None:
    row = {"e": "a@example.com", "t": "x" * 300}
    rejected = rejection(FieldMapping(email="e", fields={"Title": "t"}), row)
    assert rejected.reason == "invalid_value"
    assert "300 characters long; at most 255" in rejected.message
    assert "truncate_long_values=True" in rejected.message
    assert len(rejected.message) < 200  # the value itself is shortened in the message
    truncating = FieldMapping(email="e", fields={"Title": "t"}, truncate_long_values=True)
    assert contact(truncating, row)["Title"] == "x" * 255


def test_defaults_fill_empty_standard_fields() -> None:
    mapping = FieldMapping(
        email="e", fields={"LeadSource": "src"}, defaults={"LeadSource": "Webshop", "Status": 1}
    )
    assert contact(mapping, {"e": "a@example.com"}) == {
        "Email": "a@example.com",
        "LeadSource": "Webshop",
        "Status": "1",
    }
    assert contact(mapping, {"e": "a@example.com", "src": "Fair"})["LeadSource"] == "Fair"


def test_transforms_run_before_conversion_and_failures_are_rejections() -> None:
    def title(value: Any) -> Any:
        return value.title()

    mapping = FieldMapping(email="e", fields={"FirstName": "f"}, transforms={"FirstName": title})
    assert contact(mapping, {"e": "a@example.com", "f": "ann-marie"})["FirstName"] == "Ann-Marie"
    rejected = rejection(mapping, {"e": "a@example.com", "f": 42})
    assert rejected.reason == "invalid_value"
    assert "the transform title failed on 42 (AttributeError" in rejected.message


# --- custom fields -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_type", "value", "sent"),
    [
        ("integer", 42, 42),
        ("integer", "42", 42),
        ("integer", " -7 ", -7),
        ("integer", 42.0, 42),
        ("integer", "42.0", 42),
        ("integer", "1e3", 1000),
        ("integer", Decimal("5"), 5),
        ("float", 3.5, 3.5),
        ("float", "3.5", 3.5),
        ("float", 2, 2.0),
        ("float", "-.5e1", -5.0),
        ("float", Decimal("0.1"), 0.1),
        ("boolean", True, True),
        ("boolean", "YES", True),
        ("boolean", " no ", False),
        ("boolean", "True", True),
        ("boolean", "FALSE", False),
        ("boolean", "1", True),
        ("boolean", 0, False),
        ("boolean", 1.0, True),
        ("date", "2016-11-22", "2016-11-22T00:00:00.000Z"),
        ("date", "2016-11-22T10:30:00Z", "2016-11-22T10:30:00.000Z"),
        ("date", "2016-11-22T10:30:00.123456+01:00", "2016-11-22T09:30:00.123Z"),
        ("date", "2016-11-22 10:30", "2016-11-22T10:30:00.000Z"),
        ("date", "2016-11-22T23:30:00-02:00", "2016-11-23T01:30:00.000Z"),
        ("date", date(2016, 11, 22), "2016-11-22T00:00:00.000Z"),
        ("date", datetime(2016, 11, 22, 10, 30, 5, 999999), "2016-11-22T10:30:05.999Z"),
        ("date", datetime(2016, 11, 22, 10, 30, tzinfo=timezone.utc), "2016-11-22T10:30:00.000Z"),
        ("string", "  Gold ", "Gold"),
        ("string", 7, "7"),
        ("string", 7.0, "7"),
        ("string", False, "false"),
        ("string", "x" * 1000, "x" * 1000),
        ("integer", None, "<omitted>"),
        ("float", float("nan"), "<omitted>"),
        ("date", "  ", "<omitted>"),
        ("boolean", "", "<omitted>"),
    ],
)
def test_custom_values_are_coerced(field_type: str, value: Any, sent: Any) -> None:
    result = custom(field_type, value)
    assert result == sent
    assert type(result) is type(sent)


@pytest.mark.parametrize(
    ("field_type", "value", "words"),
    [
        ("integer", 42.5, "not a whole number"),
        ("integer", "42.5", "not a whole number"),
        ("integer", "forty", "not a whole number"),
        ("integer", "1,000", "not a whole number"),
        ("integer", "1_000", "not a whole number"),
        ("integer", "٤٢", "not a whole number"),
        ("integer", True, "true/false"),
        ("integer", 2**60, "too large"),
        ("integer", float("inf"), "not a whole number"),
        ("integer", "42.0000000000000001", "not a whole number"),
        ("integer", "1e-400", "not a whole number"),
        ("integer", Decimal("42.5"), "not a whole number"),
        ("integer", Decimal("-Infinity"), "not a whole number"),
        ("integer", "9007199254740993", "too large"),
        ("integer", "1e999999999", "too large"),
        ("integer", Decimal("1e999999999"), "too large"),
        ("float", "abc", "not a number"),
        ("float", "inf", "not a number"),
        ("float", "1e999", "not a finite number"),
        ("float", float("-inf"), "not a finite number"),
        ("float", False, "true/false"),
        ("float", 10**400, "too large"),
        ("boolean", "maybe", "not true or false"),
        ("boolean", 2, "not true or false"),
        ("date", "22/11/2016", "not a date"),
        ("date", "2016-02-30", "not a date"),
        ("date", "2016-11-22T25:00", "not a date"),
        ("date", 1479772800, "not a date"),
        ("date", "0001-01-01T00:30:00+01:00", "out of the range"),  # not midnight: no placeholder
        ("string", ["a", "b"], "several values"),
    ],
)
def test_custom_values_that_cannot_be_coerced(field_type: str, value: Any, words: str) -> None:
    result = custom(field_type, value)
    assert isinstance(result, Rejection)
    assert result.reason == "invalid_value"
    assert result.field == "v"
    assert words in result.message
    assert result.message.startswith("column 'v': ")


def test_long_values_are_shortened_in_messages() -> None:
    result = custom("integer", "9" * 500 + "x")
    assert isinstance(result, Rejection)
    assert "…" in result.message
    assert len(result.message) < 150


def test_custom_default_and_transform() -> None:
    mapping = FieldMapping(
        email="e",
        custom=[
            CustomField("Tier", "string", source="t", default="Bronze"),
            CustomField("Cents", "integer", source="eur", transform=lambda v: round(float(v) * 100)),
        ],
    )
    assert contact(mapping, {"e": "a@example.com", "eur": "12.34"})["custom"] == {
        "string--Tier": "Bronze",
        "integer--Cents": 1234,
    }


def test_custom_transform_by_key() -> None:
    mapping = FieldMapping(
        email="e",
        custom=[CustomField("Tier", "string", source="t")],
        transforms={"string--Tier": str.upper},
    )
    assert contact(mapping, {"e": "a@example.com", "t": "gold"})["custom"] == {"string--Tier": "GOLD"}


def test_every_problem_in_a_row_is_reported_the_first_one_leads() -> None:
    mapping = FieldMapping(
        email="e",
        fields={"Title": "t"},
        custom=[CustomField("N", "integer", source="n"), CustomField("D", "date", source="d")],
    )
    rejected = rejection(mapping, {"e": "not-an-email", "t": "x" * 256, "n": "ten", "d": "yesterday"})
    assert rejected.reason == "invalid_email"
    assert rejected.field == "e"
    assert rejected.message.startswith("4 problems: (1) column 'e': the email 'not-an-email' is not valid")
    for words in ("(2) column 't'", "(3) column 'n': 'ten' is not a whole number", "(4) column 'd'"):
        assert words in rejected.message
    only_values = rejection(mapping, {"e": "a@example.com", "n": "ten", "d": "yesterday"})
    assert only_values.reason == "invalid_value"
    assert only_values.field == "n"
    assert only_values.message.startswith("2 problems: (1) column 'n'")


# --- consent -------------------------------------------------------------------------------------------


def test_unsubscribed_is_never_sent_unless_mapped() -> None:
    mapping = FieldMapping(email="e", fields={"FirstName": "unsubscribed"})
    payload = contact(mapping, {"e": "a@example.com", "unsubscribed": "false"})
    assert "unsubscribed" not in payload


def test_unsubscribed_needs_explicit_opt_in() -> None:
    with pytest.raises(ConfigurationError, match="re-subscribes people who opted out"):
        FieldMapping(email="e", unsubscribed="u")
    mapping = FieldMapping(email="e", unsubscribed="u", allow_resubscribe=True)
    assert contact(mapping, {"e": "a@example.com", "u": "no"})["unsubscribed"] is False
    assert contact(mapping, {"e": "a@example.com", "u": "TRUE"})["unsubscribed"] is True
    assert "unsubscribed" not in contact(mapping, {"e": "a@example.com", "u": ""})
    assert rejection(mapping, {"e": "a@example.com", "u": "perhaps"}).field == "u"


# --- map_rows: order, numbering, duplicates -------------------------------------------------------------


def test_map_rows_numbers_from_one_and_keeps_the_first_duplicate() -> None:
    mapping = FieldMapping(email="e", fields={"FirstName": "f"})
    rows = [
        {"e": "ann@example.com", "f": "Ann"},
        {"e": "bad"},
        {"e": "ANN@example.com ", "f": "Ann 2"},
        {"e": "bob@example.com"},
        {"e": "ann@example.com", "f": "Ann 3"},
    ]
    results = list(mapping.map_rows(rows))
    assert [r.row for r in results] == [1, 2, 3, 4, 5]
    assert [type(r).__name__ for r in results] == [
        "MappedContact",
        "Rejection",
        "Rejection",
        "MappedContact",
        "Rejection",
    ]
    duplicate = results[2]
    assert isinstance(duplicate, Rejection)
    assert duplicate.reason == "duplicate_email"
    assert duplicate.email == "ann@example.com"
    assert "also appears in row 1, which is exported instead" in duplicate.message
    assert results[0].payload["FirstName"] == "Ann"  # type: ignore[union-attr]


def test_a_rejected_row_does_not_claim_its_email() -> None:
    mapping = FieldMapping(email="e", custom=[CustomField("N", "integer", source="n")])
    results = list(mapping.map_rows([{"e": "a@example.com", "n": "x"}, {"e": "a@example.com", "n": "1"}]))
    assert [getattr(r, "reason", "ok") for r in results] == ["invalid_value", "ok"]


def test_last_wins_reads_twice_and_keeps_the_last_good_row() -> None:
    mapping = FieldMapping(
        email="e", fields={"FirstName": "f"}, custom=[CustomField("N", "integer", source="n")], keep="last"
    )
    rows = [
        {"e": "ann@example.com", "f": "old", "n": None},
        {"e": "bob@example.com"},
        {"e": "ann@example.com", "f": "new"},
        {"e": "ann@example.com", "f": "broken", "n": "x"},
    ]
    results = list(mapping.map_rows(rows))
    assert [getattr(r, "reason", "ok") for r in results] == ["duplicate_email", "ok", "ok", "invalid_value"]
    assert "also appears in row 3" in results[0].message  # type: ignore[union-attr]
    assert "the last row" in results[0].message  # type: ignore[union-attr]
    assert results[2].payload["FirstName"] == "new"  # type: ignore[union-attr]


def test_last_wins_refuses_a_one_shot_iterator() -> None:
    mapping = FieldMapping(email="e", keep="last")
    with pytest.raises(ConfigurationError, match="one-shot iterator"):
        mapping.map_rows(iter([{"e": "a@example.com"}]))
    with pytest.raises(ConfigurationError):
        mapping.map_rows({"e": "a@example.com"} for _ in range(2))


def test_rows_by_email_grows_and_remembers() -> None:
    table = RowsByEmail()
    emails = [f"user{i}@example.com" for i in range(5000)]
    for row, email in enumerate(emails, 1):
        assert table.setdefault(email, row) == row
    assert len(table) == 5000
    assert table.setdefault("user4999@example.com", 1) == 5000
    assert table.get("user0@example.com") == 1
    assert table.get("nobody@example.com") is None
    table.set("user0@example.com", 9)
    assert table.get("user0@example.com") == 9
    assert len(table) == 5000


def test_rows_by_email_grows_without_a_doubling_peak() -> None:
    # Growing the table used to build a table twice the size next to the old one: 1.5x the final
    # memory at the peak, up to 36 bytes per email. It now grows a slice at a time.
    emails = [f"user{i}@example.com" for i in range(120_000)]
    tracemalloc.start()
    try:
        table = RowsByEmail()
        for row, email in enumerate(emails, 1):
            table.setdefault(email, row)
        final, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == 120_000
    assert final <= 24 * 120_000  # bytes per email, whatever the point in the growth cycle
    assert peak <= final * 1.1
    assert all(table.get(email) == row for row, email in enumerate(emails, 1))


def test_rows_by_email_sized_up_front_never_grows() -> None:
    emails = [f"user{i}@example.com" for i in range(50_000)]
    table = RowsByEmail.for_size(len(emails))
    before = table.nbytes
    for row, email in enumerate(emails, 1):
        table.setdefault(email, row)
    assert table.nbytes == before
    assert before <= 24 * 50_000


@given(
    st.lists(st.tuples(st.sampled_from(["set", "setdefault", "get"]), st.integers(0, 300)), max_size=400),
    st.integers(0, 500),
)
def test_rows_by_email_behaves_like_a_dict(operations: list[tuple[str, int]], hint: int) -> None:
    table = RowsByEmail.for_size(hint)
    model: dict[str, int] = {}
    for row, (operation, n) in enumerate(operations, 1):
        email = f"person{n}@example.com"
        if operation == "set":
            table.set(email, row)
            model[email] = row
        elif operation == "setdefault":
            assert table.setdefault(email, row) == model.setdefault(email, row)
        else:
            assert table.get(email) == model.get(email)
        assert len(table) == len(model)


# --- serialisation and inference ------------------------------------------------------------------------


def full_mapping() -> FieldMapping:
    return FieldMapping(
        email="mail",
        fields={"FirstName": "first", "Company": "org"},
        custom=[
            CustomField("Loyalty Points", "integer", source="points", default=0),
            CustomField("Tier", "string"),
        ],
        defaults={"LeadSource": "Shop"},
        unsubscribed="optout",
        allow_resubscribe=True,
        lowercase_local_part=False,
        omit_empty=False,
        truncate_long_values=True,
        keep="last",
    )


def test_to_dict_from_dict_round_trip_through_json() -> None:
    mapping = full_mapping()
    data = json.loads(json.dumps(mapping.to_dict()))
    assert FieldMapping.from_dict(data) == mapping
    assert FieldMapping.from_dict(FieldMapping(email="e").to_dict()) == FieldMapping(email="e")


def test_to_dict_round_trips_through_toml() -> None:
    mapping = full_mapping()
    data = mapping.to_dict()
    lines = [f'email = "{data["email"]}"', f'keep = "{data["keep"]}"', "allow_resubscribe = true",
             f'unsubscribed = "{data["unsubscribed"]}"', "lowercase_local_part = false", "omit_empty = false",
             "truncate_long_values = true", '[fields]', 'FirstName = "first"', 'Company = "org"',
             '[defaults]', 'LeadSource = "Shop"',
             '[[custom]]', 'name = "Loyalty Points"', 'type = "integer"', 'source = "points"', "default = 0",
             '[[custom]]', 'name = "Tier"', 'type = "string"']  # fmt: skip
    assert FieldMapping.from_dict(tomllib.loads("\n".join(lines))) == mapping


def test_transforms_are_left_out_of_to_dict_and_given_back_to_from_dict() -> None:
    mapping = FieldMapping(email="e", fields={"FirstName": "f"}, transforms={"FirstName": str.title})
    data = mapping.to_dict()
    assert "transforms" not in json.dumps(data)
    restored = FieldMapping.from_dict(data, transforms={"FirstName": str.title})
    assert contact(restored, {"e": "a@example.com", "f": "ann"})["FirstName"] == "Ann"


def test_from_dict_lists_every_problem() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FieldMapping.from_dict(
            {
                "email": "e",
                "feilds": {},
                "custom": [
                    {"name": "A", "typ": "string"},
                    "oops",
                    {"name": "B", "type": "integer", "src": "b"},
                ],
            }
        )
    text = "\n".join(caught.value.problems)
    assert "unknown mapping option 'feilds'; did you mean 'fields'?" in text
    assert "custom field #1 needs both a 'name' and a 'type'" in text
    assert "unknown key in custom field #1 'typ'; did you mean 'type'?" in text
    assert "custom field #2 must be a table" in text
    assert "unknown key in custom field #3 'src'; did you mean 'source'?" in text
    with pytest.raises(ConfigurationError, match="did you mean FirstName"):
        FieldMapping.from_dict({"email": "e", "fields": {"Firstname": "f"}})
    with pytest.raises(ConfigurationError, match="email must name the source column"):
        FieldMapping.from_dict({"fields": {}})
    with pytest.raises(ConfigurationError) as caught:
        FieldMapping.from_dict(
            {"email": "e", "fields": ["FirstName"], "custom": [{"name": "A--B", "type": "int"}]}
        )
    assert len(caught.value.problems) == 3
    assert "'fields' must be a table" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("EmailAddress", "Email"), ("e-mail", "Email"), ("E_Mail", "Email"), ("email_address", "Email"),
        ("Mail", "Email"), ("first_name", "FirstName"), ("FirstName", "FirstName"),
        ("given name", "FirstName"),
        ("FIRSTNAME", "FirstName"), ("last-name", "LastName"), ("Surname", "LastName"),
        ("family_name", "LastName"), ("Company", "Company"), ("organisation", "Company"),
        ("Organization", "Company"), ("phone", "Phone"), ("Mobile", "MobilePhone"), ("city", "MailingCity"),
        ("Country", "MailingCountry"), ("postal_code", "MailingPostalCode"), ("ZIP", "MailingPostalCode"),
        ("Job Title", "Title"), ("website", "Website"), ("MailingStreet", "MailingStreet"),
    ],
)  # fmt: skip
def test_infer_recognises_common_column_names(column: str, field: str) -> None:
    columns = [column] if field == "Email" else ["email", column]
    mapping = FieldMapping.infer(columns)
    if field == "Email":
        assert mapping.email == column
    else:
        assert mapping.fields == {field: column}


def test_infer_prefers_the_best_synonym_and_passes_options() -> None:
    mapping = FieldMapping.infer(["mail", "Email Address", "notes", "First Name", "given_name"], keep="last")
    assert mapping.email == "Email Address"
    assert mapping.fields == {"FirstName": "First Name"}
    assert mapping.keep == "last"


def test_infer_without_an_email_column() -> None:
    with pytest.raises(
        ConfigurationError, match=r"no email column found among the columns \('name', 'city'\)"
    ):
        FieldMapping.infer(["name", "city"])


def test_infer_maps_every_standard_field_by_its_own_name() -> None:
    columns = [name.lower().replace("_", " ") for name in STANDARD_FIELDS]
    mapping = FieldMapping.infer(columns)
    assert mapping.email == "email"
    assert dict(mapping.fields) == {
        name: name.lower().replace("_", " ") for name in STANDARD_FIELDS if name != "Email"
    }


def test_last_wins_accepts_any_re_iterable() -> None:
    class Reopening:
        def __init__(self) -> None:
            self.passes = 0

        def __iter__(self) -> Any:
            self.passes += 1
            return iter([{"e": "a@example.com", "f": "1"}, {"e": "A@example.com", "f": "2"}])

    source = Reopening()
    mapping = FieldMapping(email="e", fields={"FirstName": "f"}, keep="last")
    results = list(mapping.map_rows(source))
    assert source.passes == 2
    assert isinstance(results[0], Rejection)
    assert results[0].reason == "duplicate_email"
    assert isinstance(results[1], MappedContact)
    assert results[1].payload["FirstName"] == "2"


@pytest.mark.parametrize("keep", ["first", "last"])
def test_duplicates_are_found_case_insensitively_when_the_local_part_keeps_its_case(keep: str) -> None:
    # Autopilot matches emails case-insensitively: Ann@ and ann@ are one contact there, so sending both
    # would count two rows as exported while one silently overwrites the other.
    mapping = FieldMapping(email="e", lowercase_local_part=False, keep=keep)  # type: ignore[arg-type]
    results = list(mapping.map_rows([{"e": "Ann@example.com"}, {"e": "ann@EXAMPLE.com"}]))
    reasons = [getattr(r, "reason", "ok") for r in results]
    assert reasons == (["ok", "duplicate_email"] if keep == "first" else ["duplicate_email", "ok"])
    duplicate = results[1] if keep == "first" else results[0]
    assert f"also appears in row {1 if keep == 'first' else 2}" in duplicate.message  # type: ignore[union-attr]


@pytest.mark.parametrize("keep", ["first", "last"])
def test_a_column_the_first_row_lacks_is_refused_naming_it_without_personal_data(keep: str) -> None:
    mapping = FieldMapping(
        email="email",
        fields={"FirstName": "first_nme"},  # misspelt: the rows say first_name
        custom=[CustomField("Points", "integer", source="pts")],
        keep=keep,  # type: ignore[arg-type]
    )
    rows = [{"email": "ada@example.com", "first_name": "Ada", "points": 3}] * 2
    with pytest.raises(ConfigurationError) as caught:
        next(mapping.map_rows(rows))
    text = str(caught.value)
    assert "'first_nme' (FirstName), 'pts' (custom field 'Points')" in text  # what reads each one
    assert "did you mean 'first_name' for 'first_nme', 'points' for 'pts'?" in text
    assert "the columns are email, first_name, points" in text  # the row's columns, to spot the typo
    assert "ada@example.com" not in text
    assert "Ada" not in text.replace("'", " ").split()


def test_a_misspelt_email_column_is_refused_before_any_row_is_mapped() -> None:
    mapping = FieldMapping(email="Email")
    with pytest.raises(ConfigurationError, match=r"'Email' \(the email\).*did you mean 'email' for 'Email'"):
        list(mapping.map_rows([{"email": "ada@example.com"}]))


def test_columns_with_a_default_may_be_absent_and_an_empty_default_sends_nothing() -> None:
    mapping = FieldMapping(
        email="email",
        fields={"FirstName": "first", "Phone": "phone"},
        defaults={"FirstName": "Friend", "Phone": ""},
        custom=[CustomField("Points", "integer", source="points", default=0)],
    )
    assert mapping.required_columns() == {"email": "the email"}
    (contact,) = mapping.map_rows([{"email": "ada@example.com"}])
    assert isinstance(contact, MappedContact)
    assert contact.payload == {
        "Email": "ada@example.com",
        "FirstName": "Friend",
        "custom": {"integer--Points": 0},
    }


def test_later_rows_may_lack_keys_the_first_row_has() -> None:
    mapping = FieldMapping(email="email", fields={"FirstName": "first"})
    results = list(mapping.map_rows([{"email": "a@example.com", "first": "A"}, {"email": "b@example.com"}]))
    assert [type(r) for r in results] == [MappedContact, MappedContact]


def test_check_columns_accepts_a_header_with_every_required_column() -> None:
    mapping = FieldMapping(email="email", fields={"FirstName": "first_name"}, unsubscribed="unsub",
                           allow_resubscribe=True)  # fmt: skip
    mapping.check_columns(["first_name", "email", "unsub", "other"])
    with pytest.raises(ConfigurationError, match=r"'unsub' \(unsubscribed\)"):
        mapping.check_columns(["first_name", "email"])
    assert mapping.source_columns == ("email", "first_name", "unsub")
