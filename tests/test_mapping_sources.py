"""Rows as csv.DictReader, pandas' to_dict("records") and json.loads produce them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from autopilot_segments import CustomField, FieldMapping, MappedContact, Rejection

MAPPING = FieldMapping(
    email="email",
    fields={"FirstName": "first_name", "Company": "company", "NumberOfEmployees": "staff"},
    custom=[
        CustomField("Loyalty Points", "integer", source="points"),
        CustomField("Balance", "float", source="balance"),
        CustomField("Signup Date", "date", source="signup"),
        CustomField("VIP", "boolean", source="vip"),
    ],
)

EXPECTED_ANN = {
    "Email": "ann@example.com",
    "FirstName": "Ann",
    "Company": "Acme",
    "NumberOfEmployees": "250",
    "custom": {
        "integer--Loyalty--Points": 42,
        "float--Balance": 12.5,
        "date--Signup--Date": "2016-11-22T00:00:00.000Z",
        "boolean--VIP": True,
    },
}
EXPECTED_BOB = {"Email": "bob@example.org", "custom": {"boolean--VIP": False}}


def outcomes(rows: list[dict[str, Any]]) -> list[Any]:
    return [r.payload if isinstance(r, MappedContact) else r.reason for r in MAPPING.map_rows(rows)]


def test_csv_dict_reader_rows() -> None:
    text = (
        "email,first_name,company,staff,points,balance,signup,vip\n"
        " Ann@Example.com ,Ann,Acme,250,42,12.5,2016-11-22,yes\n"
        "bob@example.org,,,,,,,no\n"
        "ann@example.com,Ann again,,,,,,\n"
        "carol@example,Carol,,,,,,\n"
        ",,,,,,,\n"
        "dan@example.com,,,,4.5,,,\n"
    )
    assert outcomes(list(csv.DictReader(io.StringIO(text)))) == [
        EXPECTED_ANN,
        EXPECTED_BOB,
        "duplicate_email",
        "invalid_email",
        "missing_email",
        "invalid_value",
    ]


def test_json_rows() -> None:
    text = json.dumps(
        [
            {"email": "ann@example.com", "first_name": "Ann", "company": "Acme", "staff": 250, "points": 42,
             "balance": 12.5, "signup": "2016-11-22", "vip": True},
            {"email": "bob@example.org", "first_name": None, "points": None, "vip": False},
            {"email": "eve@example.com", "points": 4.0, "balance": 3, "signup": "2016-11-22T10:00:00+01:00",
             "tags": ["x"]},
            {"email": "zed@example.com", "company": {"name": "Acme"}},
        ]
    )  # fmt: skip
    assert outcomes(json.loads(text)) == [
        EXPECTED_ANN,
        EXPECTED_BOB,
        {
            "Email": "eve@example.com",
            "custom": {
                "integer--Loyalty--Points": 4,
                "float--Balance": 3.0,
                "date--Signup--Date": "2016-11-22T09:00:00.000Z",
            },
        },
        "invalid_value",
    ]


def test_pandas_records_with_nan_numpy_scalars_timestamps_and_nat() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "email": ["Ann@Example.com", "bob@example.org", None, "dan@example.com"],
            "first_name": ["Ann", None, "Carl", "Dan"],
            "company": ["Acme", float("nan"), "X", pd.NA],
            "staff": [250, 10, 5, 7],  # int64 column -> numpy ints
            "points": [42.0, float("nan"), 1.0, 2.5],  # float64 with NaN -> numpy floats
            "balance": [12.5, float("nan"), 0.0, 1.0],
            "signup": pd.to_datetime(
                ["2016-11-22", None, "2020-01-01", "2021-06-30 12:00"], format="ISO8601"
            ),
            "vip": pd.array([True, False, None, True], dtype="boolean"),  # nullable booleans -> pd.NA
        }
    )
    records = frame.to_dict("records")
    assert type(records[0]["signup"]).__name__ == "Timestamp"
    assert type(records[1]["signup"]).__name__ == "NaTType"
    results = list(MAPPING.map_rows(records))
    first = results[0]
    assert isinstance(first, MappedContact)
    assert first.payload == EXPECTED_ANN
    second = results[1]
    assert isinstance(second, MappedContact)
    assert second.payload == {
        "Email": "bob@example.org",
        "NumberOfEmployees": "10",
        "custom": {"boolean--VIP": False},
    }
    assert isinstance(results[2], Rejection)
    assert results[2].reason == "missing_email"
    fourth = results[3]
    assert isinstance(fourth, Rejection)
    assert fourth.reason == "invalid_value"
    assert fourth.field == "points"
    assert "2.5" in fourth.message
    json.dumps(first.payload)  # numpy scalars were turned into plain Python values


def test_pandas_timezone_aware_timestamps_are_sent_in_utc() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "email": ["a@example.com"],
            "signup": pd.to_datetime(["2016-11-22 01:30:00.123456789"]).tz_localize("Europe/Berlin"),
        }
    )
    result = MAPPING.map_row(frame.to_dict("records")[0], 1)
    assert isinstance(result, MappedContact)
    assert result.payload["custom"] == {"date--Signup--Date": "2016-11-22T00:30:00.123Z"}


def test_numpy_float32_values_are_sent_as_the_number_they_hold() -> None:
    np = pytest.importorskip("numpy")
    mapping = FieldMapping(
        email="email", fields={"Company": "company"}, custom=[CustomField("Balance", "float", source="b")]
    )
    row = {"email": "a@example.com", "company": np.float32(3.3), "b": np.float32(0.1)}
    result = mapping.map_row(row, 1)
    assert isinstance(result, MappedContact), result
    assert result.payload == {"Email": "a@example.com", "Company": "3.3", "custom": {"float--Balance": 0.1}}
    nan = mapping.map_row({"email": "a@example.com", "company": np.float32("nan")}, 2)
    assert isinstance(nan, MappedContact)
    assert nan.payload == {"Email": "a@example.com"}


def test_numpy_nanosecond_datetimes_are_dates() -> None:
    np = pytest.importorskip("numpy")
    records = np.rec.fromarrays(
        [
            np.array(["a@example.com", "b@example.com"]),
            np.array(["2016-11-22T10:30", "NaT"], "datetime64[ns]"),
        ],
        names="email,signup",
    )  # what DataFrame.to_records() holds
    results = [
        MAPPING.map_row(dict(zip(records.dtype.names, r, strict=True)), n) for n, r in enumerate(records, 1)
    ]
    assert [r.payload if isinstance(r, MappedContact) else r for r in results] == [
        {"Email": "a@example.com", "custom": {"date--Signup--Date": "2016-11-22T10:30:00.000Z"}},
        {"Email": "b@example.com"},
    ]


def test_numpy_scalars_are_unwrapped() -> None:
    np = pytest.importorskip("numpy")
    row = {
        "email": np.str_("ann@example.com"),
        "staff": np.int64(250),
        "points": np.float32(42.0),
        "balance": np.float64(12.5),
        "vip": np.bool_(True),
        "first_name": np.str_("Ann"),
        "company": "Acme",
        "signup": np.datetime64("2016-11-22T00:00:00"),
    }
    result = MAPPING.map_row(row, 1)
    assert isinstance(result, MappedContact), result
    assert result.payload == EXPECTED_ANN
