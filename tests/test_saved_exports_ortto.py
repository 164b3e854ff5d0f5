"""Saved exports to Ortto: `destination = "ortto"` and `region` on a connection, run over real HTTP
against the Ortto sandbox; `check` names what the Ortto account lacks."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autopilot_segments import ConfigurationError, OrttoClient, load_exports
from autopilot_segments._saved._run import make_client
from autopilot_segments.sandbox import OrttoSandbox

EXPORTS = """\
    [connections.ortto]
    destination = "ortto"
    api_key_env = "TEST_ORTTO_KEY"
    requests_per_second = 1000

    [exports.tiers]
    mapping = "mapping.toml"
    state = "state/tiers.db"
    on_leave = "remove"

    [[exports.tiers.segments]]
    source = "customers.csv"
    filter_column = "tier"
    title = "Tier {value}"
"""


MAPPING = """\
    email = "email"
    fields = { FirstName = "first_name" }

    [[custom]]
    name = "Points"
    type = "integer"
    source = "points"
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[OrttoSandbox]:
    with OrttoSandbox() as sandbox:
        monkeypatch.setenv("TEST_ORTTO_KEY", sandbox.api_key)
        monkeypatch.setenv("ORTTO_BASE_URL", sandbox.url)
        yield sandbox


def customers(folder: Path, count: int) -> None:
    lines = ["email,first_name,points,tier"]
    lines += [f"user{i}@example.com,User{i},{i},{('gold', 'silver')[i % 2]}" for i in range(count)]
    write(folder, "customers.csv", "\n".join(lines) + "\n")
    write(folder, "mapping.toml", MAPPING)


def test_a_saved_export_to_ortto_tags_each_segment_and_removes_leavers(
    sb: OrttoSandbox, tmp_path: Path
) -> None:
    sb.add_custom_field("Points", "integer")
    customers(tmp_path, 10)
    path = write(tmp_path, "exports.toml", EXPORTS)
    exports = load_exports(path)
    connection = exports.connections["ortto"]
    assert (connection.destination, connection.region) == ("ortto", None)
    run = exports["tiers"].run()
    assert run.ok, run.summary()
    assert sb.tagged("Tier gold") == {f"user{i}@example.com" for i in range(0, 10, 2)}
    assert sb.people["user3@example.com"]["fields"]["int:cm:points"] == 3
    customers(tmp_path, 6)
    again = exports["tiers"].run()
    assert [(r.unchanged, r.removed) for r in again.reports.values()] == [(3, 2), (3, 2)]
    assert sb.tagged("Tier silver") == {"user1@example.com", "user3@example.com", "user5@example.com"}


def test_check_names_the_custom_field_the_ortto_account_lacks(sb: OrttoSandbox, tmp_path: Path) -> None:
    customers(tmp_path, 4)
    result = load_exports(write(tmp_path, "exports.toml", EXPORTS))["tiers"].check()
    assert not result.ok
    assert result.problems == ("Ortto has no custom field named 'Points': create it (type integer)",)
    assert not [r for r in sb.requests if r.path == "/person/merge"]


def test_region_picks_the_host_and_is_only_for_ortto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORTTO_BASE_URL", raising=False)
    monkeypatch.delenv("ORTTO_REGION", raising=False)
    customers(tmp_path, 2)
    text = EXPORTS.replace('destination = "ortto"', 'destination = "ortto"\n    region = "eu"')
    connection = load_exports(write(tmp_path, "exports.toml", text)).connections["ortto"]
    assert connection.region == "eu"
    client = make_client(connection, placeholder_key=True)
    assert isinstance(client, OrttoClient)
    assert client.base_url == "https://api.eu.ap3api.com/v1"
    wrong = EXPORTS.replace('destination = "ortto"', 'region = "eu"')
    with pytest.raises(ConfigurationError, match="region is Ortto's"):
        load_exports(write(tmp_path, "bad.toml", wrong))
    unknown = EXPORTS.replace('destination = "ortto"', 'destination = "hubspot"')
    with pytest.raises(ConfigurationError, match='"autopilot" or "ortto"'):
        load_exports(write(tmp_path, "bad2.toml", unknown))
