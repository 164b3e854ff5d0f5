"""CDM folders read as Microsoft's CDM object model reads them: model.json and manifests.

The published Microsoft documents under tests/data/cdm (see its README) are read through `read_cdm` and
`open_source`; the rest are small folders built per test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autopilot_segments.sources import SourceError, cdm_entities, open_source, read_cdm

DATA = Path(__file__).parent / "data" / "cdm"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def model_folder(
    root: Path,
    partition: dict[str, Any],
    *,
    attributes: list[str] | None = None,
    entity_extra: dict[str, Any] | None = None,
) -> Path:
    names = attributes or ["email", "company"]
    model = {
        "name": "m",
        "entities": [
            {
                "$type": "LocalEntity",
                "name": "Lead",
                "attributes": [{"name": n, "dataType": "string"} for n in names],
                "partitions": [{"name": "p", **partition}],
                **(entity_extra or {}),
            }
        ],
    }
    write(root / "model.json", json.dumps(model))
    return root


def csv_trait(**arguments: Any) -> list[dict[str, Any]]:
    return [
        {
            "traitReference": "is.partition.format.CSV",
            "arguments": [{"name": k, "value": v} for k, v in arguments.items()],
        }
    ]


# ------------------------------------------------------------------------ path traversal (issue 9)


@pytest.mark.parametrize(
    "location",
    [
        "..%2F..%2Foutside.csv",
        "Lead%2F..%2F..%2F..%2Foutside.csv",
        "%2e%2e/%2e%2e/outside.csv",
        "..%5C..%5Coutside.csv",
        "local:/..%2F..%2Foutside.csv",
        "https://lake.example.net/c/..%2F..%2Foutside.csv",
        "https://lake.example.net/c/..%2F..%2F..%2Foutside.csv",
    ],
)
def test_an_encoded_traversal_never_reads_a_file_outside_the_folder(tmp_path: Path, location: str) -> None:
    write(tmp_path / "outside.csv", "secret@example.com,Outside\n")
    write(tmp_path / "lake" / "outside.csv", "secret@example.com,Outside\n")
    folder = model_folder(tmp_path / "lake" / "cdm", {"location": location})
    with pytest.raises(SourceError, match=r"outside the CDM folder|cannot be resolved"):
        read_cdm(folder, "Lead")


def test_an_encoded_absolute_path_never_reads_a_file_outside_the_folder(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.csv", "secret@example.com,Outside\n")
    folder = model_folder(tmp_path / "cdm", {"location": "x/" + quote(str(outside), safe="")})
    with pytest.raises(SourceError) as raised:
        list(read_cdm(folder, "Lead"))
    assert "secret" not in str(raised.value)
    # decoded, it is an absolute corpus path: relative to the CDM folder, never to the machine's root
    folder = model_folder(tmp_path / "cdm2", {"location": quote(str(outside), safe="")})
    with pytest.raises(SourceError, match=r"not found \(looked for .*cdm2/tmp/"):
        read_cdm(folder, "Lead")


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.csv", "secret@example.com,Outside\n")
    folder = model_folder(tmp_path / "cdm", {"location": "Lead/p.csv"})
    (folder / "Lead").mkdir()
    os.symlink(outside, folder / "Lead" / "p.csv")
    with pytest.raises(SourceError, match="outside the CDM folder"):
        read_cdm(folder, "Lead")
    # the same through a lake URL
    folder2 = model_folder(tmp_path / "cdm2", {"location": "https://lake.example.net/c/Lead/p.csv"})
    (folder2 / "Lead").mkdir()
    os.symlink(outside, folder2 / "Lead" / "p.csv")
    with pytest.raises(SourceError, match="outside the CDM folder"):
        read_cdm(folder2, "Lead")


def test_a_relative_location_that_stays_inside_the_folder_is_fine(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "cdm", {"location": "Lead/sub/../p%20one.csv"})
    write(folder / "Lead" / "p one.csv", "a@example.com,Ace\n")
    assert list(read_cdm(folder, "Lead")) == [{"email": "a@example.com", "company": "Ace"}]


# ------------------------------------------------------------- format settings (model.json, issue 10)


def test_microsoft_csv_traits_take_precedence_over_file_format_settings() -> None:
    # Microsoft's own test input: trait says header, ",", QuoteAlways, UTF-8; settings say the opposite.
    rows = list(read_cdm(DATA / "model-json-csv-traits", "someEntity"))
    assert rows == [
        {"email": "ada@example.com", "company": "Ace, Inc.", "visits": 3},
        {"email": "bob@example.com", "company": 'Bob"s "Bikes"', "visits": None},
        # CsvStyle.QuoteAlways: quotes are significant anywhere in a field
        {"email": "zoe@example.org", "company": "Zoë, SA", "visits": 12},
    ]


def test_microsoft_file_format_settings_fill_in_what_the_trait_lacks() -> None:
    # columnHeaders "false" (a string) is false; ";"; QuoteStyle.None keeps quotes literal; ASCII.
    rows = list(read_cdm(DATA / "model-json-csv-settings", "someEntity"))
    assert rows == [
        {"email": "ada@example.com", "company": '"Ace" Corp', "visits": 3},
        {"email": "bob@example.com", "company": '"Bob', "visits": None},
    ]


@pytest.mark.parametrize("flag", ["false", "False", " FALSE ", False])
def test_column_headers_false_as_a_string_keeps_the_first_row(tmp_path: Path, flag: Any) -> None:
    settings_ = {"$type": "CsvFormatSettings", "columnHeaders": flag, "delimiter": ","}
    folder = model_folder(tmp_path / "cdm", {"location": "p.csv", "fileFormatSettings": settings_})
    write(folder / "p.csv", "first@example.com,First\nsecond@example.com,Second\n")
    assert [r["email"] for r in read_cdm(folder, "Lead")] == ["first@example.com", "second@example.com"]


def test_the_trait_delimiter_wins_over_the_settings_delimiter(tmp_path: Path) -> None:
    # The issue's case: trait ",", settings ";" returned junk like 'ada@example.com,"Ace' silently.
    folder = model_folder(
        tmp_path / "cdm",
        {
            "location": "p.csv",
            "fileFormatSettings": {"$type": "CsvFormatSettings", "columnHeaders": False, "delimiter": ";"},
            "cdm:traits": csv_trait(delimiter=","),
        },
    )
    write(folder / "p.csv", 'ada@example.com,"Ace; Corp"\n')
    assert list(read_cdm(folder, "Lead")) == [{"email": "ada@example.com", "company": "Ace; Corp"}]


def test_csv_style_decides_where_quotes_count(tmp_path: Path) -> None:
    data = 'a@example.com,x"y,z"w\n'
    after = model_folder(
        tmp_path / "after",
        {"location": "p.csv", "cdm:traits": csv_trait(csvStyle="CsvStyle.QuoteAfterDelimiter")},
    )
    write(after / "p.csv", data)
    with pytest.raises(SourceError, match="line 1 has 3 cells"):
        list(read_cdm(after, "Lead"))  # quotes mid-field are literal: three cells
    always = model_folder(
        tmp_path / "always", {"location": "p.csv", "cdm:traits": csv_trait(csvStyle="CsvStyle.QuoteAlways")}
    )
    write(always / "p.csv", data)
    assert list(read_cdm(always, "Lead")) == [{"email": "a@example.com", "company": "xy,zw"}]


def test_quote_style_none_keeps_quotes_and_ends_rows_at_line_breaks(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path / "cdm", {"location": "p.csv", "cdm:traits": csv_trait(quoteStyle="QuoteStyle.None")}
    )
    write(folder / "p.csv", 'a@example.com,"Ace" Corp\nb@example.com,"open\nc@example.com,x""y\n')
    assert list(read_cdm(folder, "Lead")) == [
        {"email": "a@example.com", "company": '"Ace" Corp'},
        {"email": "b@example.com", "company": '"open'},
        {"email": "c@example.com", "company": 'x""y'},
    ]


@pytest.mark.parametrize(
    ("name", "codec"),
    [("UTF-16", "utf-16"), ("windows-1252", "cp1252"), ("ISO-8859-1", "latin-1"), ("unicode", "utf-16")],
)
def test_encodings_are_honoured(tmp_path: Path, name: str, codec: str) -> None:
    folder = model_folder(tmp_path / "cdm", {"location": "p.csv", "cdm:traits": csv_trait(encoding=name)})
    write(folder / "p.csv", "jose@example.com,José Ñandú\n", encoding=codec)
    assert list(read_cdm(folder, "Lead")) == [{"email": "jose@example.com", "company": "José Ñandú"}]


def test_text_that_is_not_in_the_declared_encoding_is_an_error(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "cdm", {"location": "p.csv", "cdm:traits": csv_trait(encoding="ASCII")})
    write(folder / "p.csv", "jose@example.com,José\n")
    with pytest.raises(SourceError, match="not valid ascii text near line 1"):
        list(read_cdm(folder, "Lead"))


def test_entity_level_file_format_settings_apply_to_its_partitions(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path / "cdm",
        {"location": "p.csv"},
        entity_extra={
            "fileFormatSettings": {"$type": "CsvFormatSettings", "columnHeaders": "true", "delimiter": "|"}
        },
    )
    write(folder / "p.csv", "email|company\na@example.com|A, B\n")
    assert list(read_cdm(folder, "Lead")) == [{"email": "a@example.com", "company": "A, B"}]


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ({"cdm:traits": csv_trait(delimiter=";;")}, r"delimiter must be a single character, not ';;'"),
        (
            {"cdm:traits": csv_trait(quoteStyle="QuoteStyle.Single")},
            r"quoteStyle 'QuoteStyle.Single' is not supported",
        ),
        ({"cdm:traits": csv_trait(csvStyle="sometimes")}, r"csvStyle 'sometimes' is not supported"),
        ({"cdm:traits": csv_trait(columnHeaders="yes")}, r"columnHeaders must be true or false, not 'yes'"),
        ({"cdm:traits": csv_trait(encoding="klingon")}, r"encoding 'klingon' is not known"),
        ({"cdm:traits": csv_trait(newline="|")}, r"newline '\|' is not supported"),
        ({"cdm:traits": csv_trait(compression="gzip")}, r"argument\(s\) 'compression' are not supported"),
        (
            {"cdm:traits": [{"traitReference": "is.partition.format.CSV", "arguments": ["true", ","]}]},
            r"argument without a name",
        ),
        (
            {"fileFormatSettings": {"$type": "JsonFormatSettings"}},
            r"type 'JsonFormatSettings' cannot be read",
        ),
    ],
)
def test_format_settings_that_cannot_be_read_exactly_are_errors(
    tmp_path: Path, partition: dict[str, Any], message: str
) -> None:
    folder = model_folder(tmp_path / "cdm", {"location": "p.csv", **partition})
    write(folder / "p.csv", "a@example.com,A\n")
    with pytest.raises(SourceError, match=message):
        read_cdm(folder, "Lead")


def test_a_header_row_that_does_not_fit_the_schema_is_an_error_that_quotes_no_value(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path / "cdm", {"location": "p.csv", "cdm:traits": csv_trait(columnHeaders="true", delimiter=";")}
    )
    write(folder / "p.csv", "email,company\nada@example.com,Ace\n")
    with pytest.raises(
        SourceError, match=r"header row has 1 cells but the entity has 2 attributes"
    ) as raised:
        list(read_cdm(folder, "Lead"))
    assert "ada@" not in str(raised.value)
    write(folder / "p.csv", "ada@example.com;Ace\n")
    with pytest.raises(SourceError, match=r"header cell 1 does not name the attribute 'email'") as raised:
        list(read_cdm(folder, "Lead"))
    assert "ada@" not in str(raised.value)


def test_microsoft_adls_sample_model_json(tmp_path: Path) -> None:
    folder = DATA / "read-local-save-adls"
    assert cdm_entities(folder) == ["Orders", "Customers"]
    rows = list(open_source(f"{folder}::Customers"))
    assert [r["CustomerID"] for r in rows] == ["ALFKI", "ANATR"]
    assert rows[1]["Address"] == "Avda. de la Constitución 2222"
    assert rows[0]["Region"] is None
    with pytest.raises(SourceError, match=r"entity 'Orders' declares no partitions"):
        read_cdm(folder, "Orders")


def test_a_reference_entity_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "cdm"
    model = {
        "entities": [
            {"$type": "ReferenceEntity", "name": "Elsewhere", "source": "OtherModel", "modelId": "m1"}
        ]
    }
    write(folder / "model.json", json.dumps(model))
    with pytest.raises(
        SourceError, match=r"'Elsewhere' is a ReferenceEntity: its data belongs to 'OtherModel'"
    ):
        read_cdm(folder, "Elsewhere")
    assert cdm_entities(folder) == []


def test_a_parquet_partition_is_read_by_column_name(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path / "cdm", {"location": "p.parquet", "cdm:traits": ["is.partition.format.parquet"]}
    )
    pq.write_table(
        pa.Table.from_pylist([{"Company": "Ace", "email": "a@example.com", "x": 1}]), folder / "p.parquet"
    )
    assert list(read_cdm(folder, "Lead")) == [{"email": "a@example.com", "company": "Ace"}]


# --------------------------------------------------------------------------------------- manifests


def test_microsoft_read_manifest_sample() -> None:
    folder = DATA / "read-manifest"
    assert cdm_entities(folder)[:3] == ["Account", "Address", "CarePlan"]
    assert len(cdm_entities(folder)) == 11
    rows = list(open_source(f"{folder}::Contact"))
    assert rows == [
        {
            "accountId": "7b1c2a94-51e4-4f43-9b8e-0d6c1f2e3a41",
            "participatesInWorkflow": False,
            "isBackofficeCustomer": True,
            "salutation": "Dr.",
            "jobTitle": "Head of Care, North",
            "firstName": "Amelia",
            "telecom3Rank": 1,
            "telecom3StartDate": "2020-02-24T08:30:00+00:00",
        },
        {
            "accountId": None,
            "participatesInWorkflow": None,
            "isBackofficeCustomer": False,
            "salutation": None,
            "jobTitle": None,
            "firstName": "Noah",
            "telecom3Rank": None,
            "telecom3StartDate": None,
        },
    ]
    assert list(open_source(folder / "default.manifest.cdm.json", entity="contact")) == rows
    with pytest.raises(SourceError, match=r"'LocalMobileCareTeam' declares no data partitions"):
        read_cdm(folder, "LocalMobileCareTeam")
    with pytest.raises(SourceError, match=r"schema document .*Account\.cdm\.json does not exist"):
        read_cdm(folder, "Account")
    with pytest.raises(SourceError, match="has 11 entities"):
        open_source(folder)


# What the object model's own test (test_partition_pattern_with_glob) finds for each entity.
GLOB_EXPECTED = {
    "onlyStar": ["testfile.csv"],
    "starNoMatch": ["testfile.csv"],
    "starAtRootLevel": ["testfile.csv"],
    "starAtDeeperLevel": ["testSubFile.csv"],
    "endsWithStar": ["testfile.csv"],
    "globstar": ["testSubFile.csv", "testfile.csv"],
    "beginsWithGlobstar": ["testfile.csv"],
    "endsWithGlobstar": ["testSubFile.csv", "testfile.csv"],
    "matchesZeroOrMoreFolders": ["testSubFile.csv", "testfile.csv"],
    "matchesZeroOrMoreNoStartingSlash": ["testSubFile.csv", "testfile.csv"],
    "questionMark": ["testfile.csv"],
    "beginsWithQuestionMark": ["testfile.csv"],
    "endsWithQuestionMark": ["testfile.csv"],
    "backslashInPatternMatchesSlash": ["testfile.csv"],
    "globAndRegex": ["testfile.csv"],
}


def _files_read(folder: Path, entity: str) -> list[str]:
    return sorted({row["file"] for row in read_cdm(folder, entity)})


@pytest.mark.parametrize(("entity", "files"), sorted(GLOB_EXPECTED.items()))
def test_microsoft_glob_patterns_match_what_the_object_model_matches(entity: str, files: list[str]) -> None:
    assert _files_read(DATA / "glob-patterns", entity) == files


def test_a_glob_pattern_that_matches_nothing_is_an_error_not_zero_rows() -> None:
    with pytest.raises(SourceError, match=r"partition pattern\(s\) '#1' match no file"):
        read_cdm(DATA / "glob-patterns", "dotIsEscaped")


def test_microsoft_glob_path_variations() -> None:
    folder = DATA / "glob-path-variation"
    for entity in cdm_entities(folder):
        assert list(read_cdm(folder, entity)) == [
            {"file": "testfile.csv", "row": 1},
            {"file": "testfile.csv", "row": 2},
        ], entity


def _manifest_folder(root: Path, declaration: dict[str, Any], schema: dict[str, Any] | None = None) -> Path:
    manifest = {
        "manifestName": "m",
        "entities": [
            {"type": "LocalEntity", "entityName": "Lead", "entityPath": "Lead.cdm.json/Lead", **declaration}
        ],
    }
    write(root / "m.manifest.cdm.json", json.dumps(manifest))
    schema = schema or {
        "definitions": [
            {
                "entityName": "Lead",
                "hasAttributes": [
                    {"name": "email", "dataType": "string"},
                    {"name": "n", "dataType": "integer"},
                ],
            }
        ]
    }
    write(root / "Lead.cdm.json", json.dumps(schema))
    return root


def test_regular_expression_patterns_with_a_root_location(tmp_path: Path) -> None:
    # The pattern of Microsoft's sample 7-search-partition-pattern.
    pattern = {
        "name": "p",
        "rootLocation": "FullData",
        "regularExpression": r"/(\d{4})/(\w+)/cohort(\d+)\.csv$",
        "parameters": ["year", "month", "cohortNumber"],
        "exhibitsTraits": csv_trait(columnHeaders="true"),
    }
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitionPatterns": [pattern]})
    write(folder / "FullData" / "2019" / "July" / "cohort101.csv", "email,n\nb@example.com,2\n")
    write(folder / "FullData" / "2019" / "August" / "cohort7.csv", "email,n\na@example.com,1\n")
    write(folder / "FullData" / "2019" / "July" / "notes.csv", "email,n\nnot@example.com,0\n")
    write(folder / "FullData" / "cohort1.csv", "email,n\nnot@example.com,0\n")
    assert list(open_source(folder)) == [
        {"email": "a@example.com", "n": 1},
        {"email": "b@example.com", "n": 2},
    ]


def test_explicit_partitions_come_first_and_are_not_read_twice(tmp_path: Path) -> None:
    folder = _manifest_folder(
        tmp_path / "cdm",
        {
            "dataPartitions": [{"location": "Lead/b.csv"}],
            "dataPartitionPatterns": [{"rootLocation": "Lead", "globPattern": "*.csv"}],
        },
    )
    write(folder / "Lead" / "a.csv", "a@example.com,1\n")
    write(folder / "Lead" / "b.csv", "b@example.com,2\n")
    assert [r["email"] for r in read_cdm(folder, "Lead")] == ["b@example.com", "a@example.com"]


def test_incremental_partitions_only_is_a_clear_error(tmp_path: Path) -> None:
    incremental = {
        "rootLocation": "/IncrementalData",
        "regularExpression": r"/(.*)/Upserts/upsert(\d+)\.csv$",
        "exhibitsTraits": [
            {"traitReference": "is.partition.incremental", "arguments": [{"name": "type", "value": "Upsert"}]}
        ],
    }
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitionPatterns": [incremental]})
    write(folder / "IncrementalData" / "2020" / "Upserts" / "upsert1.csv", "a@example.com,1\n")
    with pytest.raises(SourceError, match="only has incremental partitions"):
        read_cdm(folder, "Lead")


def test_a_referenced_entity_declaration_is_a_clear_error(tmp_path: Path) -> None:
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitions": [{"location": "p.csv"}]})
    manifest = json.loads((folder / "m.manifest.cdm.json").read_text())
    manifest["entities"].append(
        {"type": "ReferencedEntity", "entityName": "Other", "entityPath": "x:/o.manifest.cdm.json/Other"}
    )
    write(folder / "m.manifest.cdm.json", json.dumps(manifest))
    with pytest.raises(SourceError, match=r"'Other' is a 'ReferencedEntity'"):
        read_cdm(folder, "Other")
    assert cdm_entities(folder) == ["Lead"]


def test_sub_manifests_local_corpus_paths_and_relative_locations(tmp_path: Path) -> None:
    root = tmp_path / "cdm"
    write(
        root / "root.manifest.cdm.json",
        json.dumps(
            {
                "manifestName": "root",
                "entities": [],
                "subManifests": [{"manifestName": "sales", "definition": "sales/sales.manifest.cdm.json"}],
            }
        ),
    )
    sales = {
        "manifestName": "sales",
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": "Lead",
                "entityPath": "local:/schemas/Lead.cdm.json/Lead",
                "dataPartitions": [
                    {"location": "../data/lead-1.csv"},
                    {"location": "local:/data/lead-2.csv"},
                    {"location": "part%203.csv"},
                ],
            }
        ],
    }
    write(root / "sales" / "sales.manifest.cdm.json", json.dumps(sales))
    write(
        root / "schemas" / "Lead.cdm.json",
        json.dumps({"definitions": [{"entityName": "Lead", "hasAttributes": [{"name": "email"}]}]}),
    )
    write(root / "data" / "lead-1.csv", "one@example.com\n")
    write(root / "data" / "lead-2.csv", "two@example.com\n")
    write(root / "sales" / "part 3.csv", "three@example.com\n")
    assert cdm_entities(root) == ["Lead"]
    assert [r["email"] for r in open_source(f"{root}::Lead")] == [
        "one@example.com",
        "two@example.com",
        "three@example.com",
    ]


def test_microsoft_public_standards_sub_manifests_and_unresolved_schemas() -> None:
    manifest = DATA / "public-standards-submanifests" / "applicationCommon.manifest.cdm.json"
    assert cdm_entities(manifest) == ["Account", "Contact", "Company"]
    # schema-only manifests: no data
    with pytest.raises(SourceError, match=r"entity 'Company' declares no data partitions"):
        read_cdm(manifest, "Company")
    with pytest.raises(SourceError, match=r"entity 'Account' is declared 2 times"):
        read_cdm(manifest, "Account")


def test_microsoft_public_standard_schemas_need_the_object_model(tmp_path: Path) -> None:
    folder = shutil.copytree(DATA / "public-standards-submanifests", tmp_path / "standards")
    manifest = folder / "applicationCommon.manifest.cdm.json"
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["entities"][1]["dataPartitions"] = [{"location": "Contact/part.csv"}]  # give Contact some data
    manifest.write_text(json.dumps(data), encoding="utf-8")
    write(folder / "Contact" / "part.csv", "id-1,1\n")
    # Contact extends CdsStandard, which only the CDM standard corpus defines
    with pytest.raises(
        SourceError,
        match=r"'CdsStandard' is not defined in this folder; it may come from '/core/cdsConcepts\.cdm\.json'",
    ):
        read_cdm(manifest, "Contact")


def test_authored_schemas_resolve_extends_and_attribute_groups(tmp_path: Path) -> None:
    base = {
        "imports": [{"corpusPath": "cdm:/foundations.cdm.json"}, {"corpusPath": "groups.cdm.json"}],
        "definitions": [
            {
                "entityName": "Person",
                "extendsEntity": "CdmEntity",
                "hasAttributes": [
                    {"name": "personId", "dataType": "entityId"},
                    {"attributeGroupReference": "contactInfo"},
                ],
            }
        ],
    }
    groups = {
        "definitions": [
            {
                "attributeGroupName": "contactInfo",
                "members": [
                    {"name": "email", "dataType": {"dataTypeReference": "string"}},
                    {"name": "age", "dataType": "smallInteger"},
                ],
            }
        ]
    }
    lead = {
        "imports": [{"corpusPath": "Person.cdm.json"}],
        "definitions": [
            {
                "entityName": "Lead",
                "extendsEntity": {"entityReference": "Person"},
                "hasAttributes": [
                    {
                        "attributeGroupReference": {
                            "attributeGroupName": "attributesAddedAtThisScope",
                            "members": [{"name": "vip", "dataType": "boolean"}],
                        }
                    }
                ],
            }
        ],
    }
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitions": [{"location": "p.csv"}]}, lead)
    write(folder / "Person.cdm.json", json.dumps(base))
    write(folder / "groups.cdm.json", json.dumps(groups))
    write(folder / "p.csv", "id-1,a@example.com,42,true\n")
    assert list(read_cdm(folder, "Lead")) == [
        {"personId": "id-1", "email": "a@example.com", "age": 42, "vip": True}
    ]


@pytest.mark.parametrize(
    ("attribute", "message"),
    [
        (
            {"name": "owner", "entity": "User.cdm.json/User"},
            r"'owner' is an entity attribute \(a relationship\)",
        ),
        (
            {"name": "code", "dataType": "listLookup", "resolutionGuidance": {}},
            r"'code' needs the object model's resolution",
        ),
        ({"attributeGroupReference": "missingGroup"}, r"attribute group 'missingGroup' is not defined"),
    ],
)
def test_schemas_that_need_the_object_model_are_clear_errors(
    tmp_path: Path, attribute: dict[str, Any], message: str
) -> None:
    schema = {"definitions": [{"entityName": "Lead", "hasAttributes": [{"name": "email"}, attribute]}]}
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitions": [{"location": "p.csv"}]}, schema)
    write(folder / "p.csv", "a@example.com,x\n")
    with pytest.raises(SourceError, match=message):
        read_cdm(folder, "Lead")


def test_a_schema_in_the_standard_corpus_is_a_clear_error(tmp_path: Path) -> None:
    folder = _manifest_folder(
        tmp_path / "cdm",
        {
            "entityPath": "cdm:/core/applicationCommon/Contact.cdm.json/Contact",
            "dataPartitions": [{"location": "p.csv"}],
        },
    )
    with pytest.raises(
        SourceError, match=r"in the 'cdm' namespace, not in this folder; resolve the manifest"
    ):
        read_cdm(folder, "Lead")


def test_a_folder_with_both_formats_or_several_manifests_asks_which(tmp_path: Path) -> None:
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitions": [{"location": "p.csv"}]})
    write(folder / "model.json", json.dumps({"entities": []}))
    with pytest.raises(SourceError, match=r"both a model\.json and 1 manifest"):
        cdm_entities(folder)
    (folder / "model.json").unlink()
    shutil.copy(folder / "m.manifest.cdm.json", folder / "n.manifest.cdm.json")
    with pytest.raises(SourceError, match=r"has 2 manifests \(m.manifest.cdm.json, n.manifest.cdm.json\)"):
        cdm_entities(folder)
    assert cdm_entities(folder / "n.manifest.cdm.json") == ["Lead"]


# ------------------------------------------------------------------------- property: exact round trip


ENCODINGS = {"UTF-8": "utf-8", "UTF-16": "utf-16", "windows-1252": "cp1252"}
DELIMITERS = [",", ";", "\t", "|"]


def _encodable(codec: str) -> st.SearchStrategy[str]:
    characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
    if codec == "cp1252":
        characters = characters.filter(lambda c: _cp1252(c))
    return characters


def _cp1252(ch: str) -> bool:
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _write_partition(rows: list[list[str | None]], header: list[str] | None, fmt: dict[str, Any]) -> str:
    out = io.StringIO()
    if fmt["quoteStyle"] == "QuoteStyle.None":
        lines = [fmt["delimiter"].join(header)] if header else []
        lines += [fmt["delimiter"].join(v or "" for v in row) for row in rows]
        return "".join(line + "\r\n" for line in lines)
    quoting = csv.QUOTE_ALL if fmt["csvStyle"] == "CsvStyle.QuoteAlways" else csv.QUOTE_MINIMAL
    writer = csv.writer(out, delimiter=fmt["delimiter"], quoting=quoting, lineterminator="\r\n")
    if header:
        writer.writerow(header)
    for row in rows:
        # QUOTE_ALL would quote None as "" (an empty value): write missing values as nothing at all
        out.write(fmt["delimiter"].join("" if v is None else _one(v, fmt, quoting) for v in row) + "\r\n")
    return out.getvalue()


def _one(value: str, fmt: dict[str, Any], quoting: int) -> str:
    cell = io.StringIO()
    csv.writer(cell, delimiter=fmt["delimiter"], quoting=quoting, lineterminator="\r\n").writerow([value])
    return cell.getvalue()[:-2]  # with the line terminator set, values holding line breaks are quoted


@st.composite
def cdm_cases(draw: st.DrawFn) -> tuple[dict[str, Any], list[list[str | None]], int]:
    fmt = {
        "columnHeaders": draw(st.sampled_from(["true", "false", True, False])),
        "delimiter": draw(st.sampled_from(DELIMITERS)),
        "quoteStyle": draw(st.sampled_from(["QuoteStyle.Csv", "QuoteStyle.None"])),
        "csvStyle": draw(st.sampled_from(["CsvStyle.QuoteAlways", "CsvStyle.QuoteAfterDelimiter"])),
        "encoding": draw(st.sampled_from(sorted(ENCODINGS))),
    }
    characters = _encodable(ENCODINGS[fmt["encoding"]])
    if fmt["quoteStyle"] == "QuoteStyle.None":  # nothing can escape a delimiter or a line break then
        characters = characters.filter(lambda c: c not in (fmt["delimiter"], "\r", "\n"))
    text = st.text(characters, min_size=1, max_size=12)  # CSV writes "" and None alike: None stands for both
    width = draw(st.integers(min_value=2, max_value=4))
    rows = draw(st.lists(st.lists(st.none() | text, min_size=width, max_size=width), max_size=8))
    return fmt, rows, width


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(case=cdm_cases(), in_settings=st.booleans())
def test_random_rows_round_trip_exactly_in_every_format(
    tmp_path: Path, case: tuple[dict[str, Any], list[list[str | None]], int], in_settings: bool
) -> None:
    fmt, rows, width = case
    names = [f"c{i}" for i in range(width)]
    header = names if str(fmt["columnHeaders"]).lower() == "true" else None
    root = tmp_path / f"case{abs(hash((json.dumps(fmt), json.dumps(rows), in_settings)))}"
    partition: dict[str, Any] = {"location": "p.csv"}
    if in_settings:  # model.json fileFormatSettings ...
        partition["fileFormatSettings"] = {"$type": "CsvFormatSettings", **fmt}
    else:  # ... or the CSV trait's arguments, which win over contrary settings
        partition["cdm:traits"] = csv_trait(**fmt)
        partition["fileFormatSettings"] = {
            "$type": "CsvFormatSettings",
            "delimiter": "#",
            "columnHeaders": "maybe",
        }
    folder = model_folder(root, partition, attributes=names)
    (folder / "p.csv").write_bytes(_write_partition(rows, header, fmt).encode(ENCODINGS[fmt["encoding"]]))
    expected = [dict(zip(names, row, strict=True)) for row in rows]
    assert list(read_cdm(folder, "Lead")) == expected


@pytest.mark.parametrize("style", ["CsvStyle.QuoteAfterDelimiter", "CsvStyle.QuoteAlways"])
def test_quote_and_escape_characters_are_honoured(tmp_path: Path, style: str) -> None:
    traits = csv_trait(quote="'", escape="\\", csvStyle=style)
    folder = model_folder(tmp_path / "cdm", {"location": "p.csv", "cdm:traits": traits})
    write(folder / "p.csv", "a@example.com,'O\\'Brien, Ltd'\nb@example.com,x\\,y\n\nc@example.com,\"q\"\n")
    assert list(read_cdm(folder, "Lead")) == [
        {"email": "a@example.com", "company": "O'Brien, Ltd"},
        {"email": "b@example.com", "company": "x,y"},
        {"email": "c@example.com", "company": '"q"'},
    ]


def test_an_unclosed_quote_is_a_malformed_csv_error(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path / "cdm", {"location": "p.csv", "cdm:traits": csv_trait(csvStyle="QuoteAlways")}
    )
    write(folder / "p.csv", 'a@example.com,"never closed\nb@example.com,x\n')
    with pytest.raises(SourceError, match="malformed CSV near line 2: unexpected end of data"):
        list(read_cdm(folder, "Lead"))


def test_manifest_adapter_paths_and_urls_are_found_in_the_folder(tmp_path: Path) -> None:
    # Locations in another namespace (adapter "adls2:") or as lake URLs, as in Microsoft's ADLS samples.
    partitions = [
        {"location": "adls2:/Lead/partition-data.csv"},
        {"location": "https://acct.dfs.core.windows.net/container/Lead/2024/p%202.csv?sig=x"},
    ]
    folder = _manifest_folder(tmp_path / "cdm", {"dataPartitions": partitions})
    write(folder / "Lead" / "partition-data.csv", "one@example.com,1\n")
    write(folder / "Lead" / "2024" / "p 2.csv", "two@example.com,2\n")
    assert [r["email"] for r in read_cdm(folder, "Lead")] == ["one@example.com", "two@example.com"]
