"""The command line on a CDM manifest folder, with date formats given in `--custom`, against a sandbox."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autopilot_segments._cli import ExitCode, main
from autopilot_segments.sandbox import Sandbox


def manifest_folder(root: Path) -> Path:
    manifest = {
        "manifestName": "default",
        "entities": [
            {
                "type": "LocalEntity",
                "entityName": "contact",
                "entityPath": "contact.cdm.json/contact",
                "dataPartitions": [
                    {
                        "location": "local:/contact/part1.csv",
                        "exhibitsTraits": [
                            {
                                "traitReference": "is.partition.format.CSV",
                                "arguments": [
                                    {"name": "columnHeaders", "value": "false"},
                                    {"name": "delimiter", "value": ";"},
                                ],
                            }
                        ],
                    }
                ],
            }
        ],
    }
    schema = {
        "definitions": [
            {
                "entityName": "contact",
                "hasAttributes": [
                    {"name": "emailaddress1", "dataFormat": "String"},
                    {"name": "SinkModifiedOn", "dataFormat": "DateTime"},
                    {"name": "renewal", "dataFormat": "String"},
                ],
            }
        ]
    }
    (root / "contact").mkdir(parents=True)
    (root / "default.manifest.cdm.json").write_text(json.dumps(manifest), encoding="utf-8")
    (root / "contact.cdm.json").write_text(json.dumps(schema), encoding="utf-8")
    (root / "contact" / "part1.csv").write_text(
        "ada@example.com;6/15/2023 12:03:02 PM;20-12-2023\n"
        "bob@example.com;0001-01-01T00:00:00.0000000;01-02-2024\n"
        "eve@example.com;15/6/2023 12:03:02 PM;\n",
        encoding="utf-8",
    )
    return root


def test_a_manifest_folder_exports_with_date_formats_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = manifest_folder(tmp_path / "crm")
    with Sandbox() as sb:
        monkeypatch.setenv("AUTOPILOT_API_KEY", sb.api_key)
        code = main(
            ["export", f"{folder}::contact", "--segment", "Renewals", "--json", "--no-progress",
             "--base-url", sb.url, "--email-column", "emailaddress1",
             "--custom", "Modified:date(dataverse)=SinkModifiedOn",
             "--custom", "Renewal:date(%d-%m-%Y)=renewal"]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == ExitCode.REJECTED_ROWS
        assert (report["total_rows"], report["exported"]) == (3, 2)
        (rejected,) = report["rejected"]
        assert (rejected["row"], rejected["field"]) == (3, "SinkModifiedOn")  # day-first is not en-US
        values = {
            email: {f["kind"]: f["value"] for f in sb.contacts[email]["custom_fields"]}
            for email in ("ada@example.com", "bob@example.com")
        }
    assert values == {
        "ada@example.com": {"Modified": "2023-06-15T12:03:02.000Z", "Renewal": "2023-12-20T00:00:00.000Z"},
        # .NET's empty date is no date: the field is left out
        "bob@example.com": {"Renewal": "2024-02-01T00:00:00.000Z"},
    }


@pytest.mark.parametrize(
    ("custom", "message"),
    [
        ("Joined:date()=joined", "the parentheses name no format"),
        ("Joined:date(%d/%m/%y)=joined", "two-digit year"),
        ("Points:integer(day-first)=joined", "formats only apply to date fields"),
    ],
)
def test_bad_date_formats_on_the_command_line_are_one_line_errors(
    tmp_path: Path, custom: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.csv"
    source.write_text("email,joined\nada@example.com,1/2/2023\n", encoding="utf-8")
    code = main(
        ["export", str(source), "--segment", "S", "--dry-run", "--email-column", "email", "--custom", custom]
    )
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert message in err
    assert err.count("\n") == 1, err
