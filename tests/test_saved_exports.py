"""Saved exports in Python: loading an export file (every mistake at load time), running it against the
sandbox over real HTTP (files, a SQL query, a filter column), dry runs, the lock, `check`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from autopilot_segments import (
    AuthenticationError,
    ConfigurationError,
    GuardrailError,
    SavedRun,
    StateError,
    load_exports,
)
from autopilot_segments._saved._lock import run_lock
from autopilot_segments.sandbox import Sandbox

KEY = "0123456789abcdef0123456789abcdef"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def customers_csv(folder: Path) -> Path:
    lines = ["email,first_name,points,tier"]
    for i in range(12):
        tier = ("gold", "silver", "")[i % 3]
        lines.append(f"user{i}@example.com,User{i},{i},{tier}")
    return write(folder, "customers.csv", "\n".join(lines) + "\n")


def shop_db(folder: Path) -> Path:
    path = folder / "shop.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (email TEXT, first_name TEXT, points INTEGER, lapsed INTEGER)")
        db.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(f"sql{i}@example.com", f"Sql{i}", i, i % 2) for i in range(10)],
        )
    db.close()
    return path


EXPORTS = """\
    [connections.sandbox]
    api_key_env = "TEST_SAVED_KEY"
    requests_per_second = 1000

    [databases.shop]
    url = "sqlite:///shop.db"

    [exports.weekly]
    connection = "sandbox"
    mapping = "mapping.toml"
    max_profiles = 0

    [[exports.weekly.segments]]
    name = "All customers"
    source = "customers.csv"

    [[exports.weekly.segments]]
    name = "Lapsed"
    query = "SELECT email, first_name, points FROM customers WHERE lapsed = 1"
    database = "shop"

    [exports.tiers]
    mapping = { email = "email", fields = { FirstName = "first_name" } }
    state = "state/tiers.db"

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


@pytest.fixture
def export_file(tmp_path: Path) -> Path:
    customers_csv(tmp_path)
    shop_db(tmp_path)
    write(tmp_path, "mapping.toml", MAPPING)
    return write(tmp_path, "exports.toml", EXPORTS)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    with Sandbox() as sb:
        monkeypatch.setenv("TEST_SAVED_KEY", sb.api_key)
        monkeypatch.setenv("AUTOPILOT_BASE_URL", sb.url)
        yield sb


def test_an_export_file_runs_every_export_and_segment_over_http(sandbox: Sandbox, export_file: Path) -> None:
    exports = load_exports(export_file)
    assert list(exports) == ["weekly", "tiers"]
    runs = exports.run()
    weekly, tiers = runs["weekly"], runs["tiers"]
    assert weekly.ok, weekly.summary()
    assert tiers.ok, tiers.summary()
    assert list(weekly.reports) == ["All customers", "Lapsed"]
    assert weekly.reports["All customers"].exported == 12
    assert weekly.reports["Lapsed"].exported == 5  # the SQL query's rows
    assert list(tiers.reports) == ["Tier gold", "Tier silver"]
    assert [tiers.reports[t].exported for t in tiers.reports] == [4, 4]
    assert tiers.notes == ("4 of the 12 rows of " + str(export_file.parent / "customers.csv")
                           + " are in no segment: their 'tier' is empty",)  # fmt: skip
    titles = {title: list_id for list_id, title in sandbox.lists}
    assert sandbox.list_members(titles["Lapsed"]) == {f"sql{i}@example.com" for i in (1, 3, 5, 7, 9)}
    assert sandbox.list_members(titles["Tier gold"]) == {f"user{i}@example.com" for i in (0, 3, 6, 9)}
    assert [(f["kind"], f["value"]) for f in sandbox.contacts["user4@example.com"]["custom_fields"]] == [
        ("Points", 4)
    ]
    assert (export_file.parent / "state" / "tiers.db").exists()
    # With the state, the second run sends nothing new.
    again = exports["tiers"].run()
    assert [r.unchanged for r in again.reports.values()] == [4, 4]


def test_the_segments_of_a_run_share_one_client_and_its_rate_limit(
    sandbox: Sandbox, export_file: Path
) -> None:
    from autopilot_segments import AutopilotClient

    with AutopilotClient(sandbox.api_key, base_url=sandbox.url, requests_per_second=1000) as client:
        run = load_exports(export_file)["weekly"].run(client=client)
        assert (
            client.stats.requests == len(sandbox.requests) == sum(r.api_calls for r in run.reports.values())
        )


def test_a_dry_run_makes_no_api_call_and_needs_no_key(
    sandbox: Sandbox, export_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SAVED_KEY")
    runs = load_exports(export_file).run(["weekly"], dry_run=True)
    run = runs["weekly"]
    assert run.ok
    assert run.dry_run
    assert [r.exported for r in run.reports.values()] == [12, 5]
    assert all(r.dry_run for r in run.reports.values())
    assert sandbox.requests == []


def test_a_dry_run_with_a_state_needs_the_key_and_still_calls_nothing(
    sandbox: Sandbox, export_file: Path
) -> None:
    run = load_exports(export_file)["tiers"].run(dry_run=True)
    assert [r.exported for r in run.reports.values()] == [4, 4]
    assert sandbox.requests == []
    assert not (export_file.parent / "state" / "tiers.db").exists()  # a plan creates no state file


def test_a_failing_segment_is_recorded_and_the_others_still_run(sandbox: Sandbox, tmp_path: Path) -> None:
    write(tmp_path, "empty.csv", "email,first_name\n")
    write(tmp_path, "good.csv", "email,first_name\na@example.com,A\n")
    write(tmp_path, "bad.csv", "mail,first_name\na@example.com,A\n")
    path = write(tmp_path, "e.toml", """\
        [connections.c]
        api_key_env = "TEST_SAVED_KEY"
        [exports.x]
        mapping = { email = "email", fields = { FirstName = "first_name" } }
        [[exports.x.segments]]
        name = "Empty"
        source = "empty.csv"
        [[exports.x.segments]]
        name = "Missing"
        source = "missing.csv"
        [[exports.x.segments]]
        name = "Misspelt"
        source = "bad.csv"
        [[exports.x.segments]]
        name = "Good"
        source = "good.csv"
    """)  # fmt: skip
    run = load_exports(path)["x"].run()
    assert list(run.reports) == ["Good"]
    assert {t: type(e).__name__ for t, e in run.errors.items()} == {
        "Empty": "GuardrailError",
        "Missing": "SourceError",
        "Misspelt": "ConfigurationError",
    }
    assert not run.ok
    assert [title for _, title in sandbox.lists] == ["Good"]  # nothing created for the others
    with pytest.raises(GuardrailError):
        run.raise_for_errors()
    assert "FAILED: GuardrailError" in run.summary()
    assert run.to_dict()["segments"]["Missing"]["error"]["type"] == "SourceError"


def test_a_refused_key_skips_the_remaining_segments(
    sandbox: Sandbox, export_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SAVED_KEY", "f" * 32)
    run = load_exports(export_file)["weekly"].run()
    assert list(run.errors) == ["All customers", "Lapsed"]
    assert all(isinstance(e, AuthenticationError) for e in run.errors.values())
    # Only the first segment's two reads (the preflight and the list look-up, made side by side) were
    # answered 401: the later segments were not tried with a refused key.
    assert sorted(r.path for r in sandbox.requests) == ["/contacts/custom_fields", "/lists"]


def test_a_second_run_while_one_holds_the_lock_is_refused(sandbox: Sandbox, export_file: Path) -> None:
    exports = load_exports(export_file)
    for name in ("weekly", "tiers"):  # stateless (lock in the temp folder) and with a state file
        export = exports[name]
        with run_lock(export.lock_path, "the first run"):
            with pytest.raises(
                StateError, match=rf"export '{name}' is already running \(process {os.getpid()}\)"
            ):
                export.run()
            runs = exports.run([name])  # in a batch, the locked export is recorded, not raised
            assert isinstance(runs[name].error, StateError)
        assert export.run().ok  # released with the first run
    assert export.lock_path == export_file.parent / "state" / "tiers.db.lock"


def test_a_lock_left_by_a_killed_process_does_not_block(export_file: Path, sandbox: Sandbox) -> None:
    export = load_exports(export_file)["weekly"]
    code = (
        "import sys, time; from pathlib import Path; from autopilot_segments._saved._lock import run_lock\n"
        f"with run_lock(Path({str(export.lock_path)!r}), 'x'):\n"
        "    print('locked', flush=True); time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(StateError, match=f"process {holder.pid}"):
            export.run(dry_run=True)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert export.run(dry_run=True).ok  # the lock died with its process


def test_check_compares_custom_fields_and_reads_each_source_without_writing(
    sandbox: Sandbox, export_file: Path, tmp_path: Path
) -> None:
    sandbox.add_contacts([{"Email": "seed@example.org", "custom": {"string--Points": "many"}}])
    before = len(sandbox.contacts)
    results = load_exports(export_file).check()
    weekly, tiers = results["weekly"], results["tiers"]
    assert tiers.ok
    assert tiers.problems == ()
    assert not weekly.ok
    (problem,) = weekly.problems
    assert "custom field 'Points': the mapping sends integer, the account defines it as string" in problem
    assert [r.method for r in sandbox.requests] == ["GET"]  # one custom-field read for the connection
    assert sandbox.lists == []
    assert len(sandbox.contacts) == before
    assert not (export_file.parent / "state").exists()


def test_check_names_a_missing_column_and_a_missing_filter_column(sandbox: Sandbox, tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "mail,tier\na@example.com,gold\n")
    path = write(tmp_path, "e.toml", """\
        [connections.c]
        api_key_env = "TEST_SAVED_KEY"
        [exports.x]
        mapping = { email = "email", custom = [{ name = "Loyalty", type = "integer" }] }
        [[exports.x.segments]]
        source = "a.csv"
        filter_column = "level"
    """)  # fmt: skip
    result = load_exports(path)["x"].check()
    text = "\n".join(result.problems)
    assert "no filter column 'level'; its columns are mail, tier" in text
    assert "'email' (the email)" in text
    assert "did you mean 'mail' for 'email'?" in text
    assert result.notes == (
        "custom field 'Loyalty' (integer) is not in the account yet: the first export creates it",
    )


# ---------------------------------------------------------------------------------- load-time errors


def problems_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, "e.toml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_exports(path)
    return str(caught.value)


BASE = """\
    [connections.c]
    api_key_env = "K"
    [exports.x]
    mapping = { email = "email" }
    [[exports.x.segments]]
    name = "S"
    source = "s.csv"
"""


def test_a_literal_key_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = problems_of(tmp_path, BASE.replace('api_key_env = "K"', f'api_key = "{KEY}"'))
    assert KEY not in text
    assert "[connections.c] 'api_key': the API key must never be written into the export file" in text
    assert "api_key_env" in text
    assert "api_key_file" in text
    text = problems_of(tmp_path, BASE.replace('api_key_env = "K"', f'api_key_env = "{KEY}"'))
    assert KEY not in text
    assert "looks like an API key itself" in text


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('source = "s.csv"', 'sorce = "s.csv"'),
            "[exports.x.segments #1] unknown key 'sorce'; did you mean 'source'?",
        ),
        (
            ("[exports.x]", "[exports.x]\nconection = 'c'"),
            "unknown key 'conection'; did you mean 'connection'?",
        ),
        (
            ("[exports.x]", "[exports.x]\nconnection = 'main'"),
            "connection 'main' is not defined in [connections]",
        ),
        (("[exports.x]", "[exports.x]\non_leave = 'remove'"), 'on_leave = "remove" needs state = "PATH"'),
        (
            ("[exports.x]", "[exports.x]\nmax_profiles = -1"),
            "max_profiles must be an integer >= 0 (0: no cap)",
        ),
        (('name = "S"', 'name = "S"\nfilter_column = "tier"'), "with filter_column the column's values name"),
        (
            ('mapping = { email = "email" }', 'mapping = { email = "email", feilds = {} }'),
            "[exports.x.mapping] unknown mapping option 'feilds'; did you mean 'fields'?",
        ),
        (('mapping = { email = "email" }', 'mapping = "nope.toml"'), "cannot read the mapping file"),
        (('source = "s.csv"', 'query = "SELECT 1"'), "a query needs database = one of none defined"),
        (
            ("[connections.c]", "[databases.d]\nurl = 'postgresql://u:hunter2@h/db'\n[connections.c]"),
            "url holds a password",
        ),
        (
            ('api_key_env = "K"', 'api_key_env = "K"\nrequests_per_second = 0'),
            "requests_per_second must be a number > 0",
        ),
    ],
)
def test_every_mistake_is_reported_at_load_time_with_the_table_and_the_fix(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    text = problems_of(tmp_path, BASE.replace(*change))
    assert str(tmp_path / "e.toml") in text
    assert expected in text
    assert "hunter2" not in text


def test_several_problems_are_listed_together(tmp_path: Path) -> None:
    text = problems_of(tmp_path, "[exports.x]\nsegments = []\n[exprts.y]\n")
    assert "unknown key 'exprts'; did you mean 'exports'?" in text
    assert "no connections" in text
    assert "no mapping" in text
    assert "no segments" in text


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    text = problems_of(tmp_path, f'[connections.c]\napi_key_env = "{KEY}\n')
    assert "is not valid TOML" in text
    assert "line 2" in text
    assert KEY not in text


def test_a_key_file_and_relative_paths_resolve_next_to_the_export_file(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf", "key", sandbox.api_key + "\n")
    write(tmp_path / "conf", "s.csv", "email\na@example.com\n")
    path = write(tmp_path / "conf", "e.toml", BASE.replace('api_key_env = "K"', 'api_key_file = "key"'))
    monkeypatch.chdir(tmp_path)
    run = load_exports(path)["x"].run()
    assert run.ok
    assert run.reports["S"].exported == 1


def test_unknown_export_names_suggest_the_close_one(export_file: Path) -> None:
    exports = load_exports(export_file)
    with pytest.raises(ConfigurationError, match=r"no export 'weekyl'; did you mean 'weekly'\?"):
        exports.run(["weekyl"])
    with pytest.raises(KeyError, match="did you mean 'tiers'"):
        exports["tier"]


def test_saved_run_is_frozen_and_reports_ok() -> None:
    run = SavedRun(export="x")
    assert run.ok
    assert run.to_dict()["segments"] == {}
    with pytest.raises(AttributeError):
        run.export = "y"  # type: ignore[misc]


def test_base_url_precedence_is_argument_then_environment_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autopilot_segments._saved._run import make_client

    nowhere = "http://127.0.0.1:9/v1"
    write(tmp_path, "s.csv", "email\na@example.com\n")
    with Sandbox() as sb:
        monkeypatch.setenv("K", sb.api_key)
        path = write(
            tmp_path,
            "e.toml",
            BASE.replace(
                'api_key_env = "K"', f'api_key_env = "K"\nrequests_per_second = 1000\nbase_url = "{sb.url}"'
            ),
        )
        export = load_exports(path)["x"]
        monkeypatch.delenv("AUTOPILOT_BASE_URL", raising=False)
        assert export.run().ok  # the file's base URL
        monkeypatch.setenv("AUTOPILOT_BASE_URL", nowhere)
        with make_client(export.connection) as client:
            assert client.base_url == nowhere  # the environment beats the file
        with make_client(export.connection, base_url=sb.url) as client:
            assert client.base_url == sb.url  # the argument beats both
        assert export.run(base_url=sb.url).ok
        assert len(sb.lists) == 1
    path = write(tmp_path, "e.toml", BASE)
    monkeypatch.delenv("AUTOPILOT_BASE_URL")
    monkeypatch.setenv("K", KEY)
    with make_client(load_exports(path)["x"].connection) as client:
        assert client.base_url == "https://api2.autopilothq.com/v1"  # the default


def test_custom_field_findings_type_conflicts_spelling_and_new_fields() -> None:
    from autopilot_segments import CustomField, CustomFieldDefinition, FieldMapping
    from autopilot_segments._saved import custom_field_findings

    mapping = FieldMapping(
        email="email",
        custom=[
            CustomField("Points", "integer"),
            CustomField("loyalty tier", "string"),
            CustomField("Signup", "date"),
            CustomField("Score", "float"),
        ],
    )
    account = [
        CustomFieldDefinition(name="Points", field_type="string"),
        CustomFieldDefinition(name="Loyalty Tier", field_type="string"),
        CustomFieldDefinition(name="Score", field_type="float"),
    ]
    problems, notes = custom_field_findings(mapping, account)
    assert problems == [
        "custom field 'Points': the mapping sends integer, the account defines it as string: Autopilot keeps "
        "a field's first type, so every value would be refused; change the mapping's type to 'string' (or "
        "use another field name)",
        "custom field 'loyalty tier': the account names it 'Loyalty Tier'; use that exact name, or the "
        "export creates a second field",
    ]
    assert notes == ["custom field 'Signup' (date) is not in the account yet: the first export creates it"]


def test_a_filter_column_with_too_many_values_or_a_listed_value_without_rows(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    lines = ["email,code"] + [f"u{i}@example.com,c{i}" for i in range(101)]
    write(tmp_path, "many.csv", "\n".join(lines) + "\n")
    write(tmp_path, "tiers.csv", "email,tier\na@example.com,gold\nb@example.com,bronze\n")
    path = write(tmp_path, "e.toml", """\
        [connections.c]
        api_key_env = "TEST_SAVED_KEY"
        requests_per_second = 1000
        [exports.many]
        mapping = { email = "email" }
        [[exports.many.segments]]
        source = "many.csv"
        filter_column = "code"
        [exports.listed]
        mapping = { email = "email" }
        [[exports.listed.segments]]
        source = "tiers.csv"
        filter_column = "tier"
        values = ["gold", "silver"]
    """)  # fmt: skip
    exports = load_exports(path)
    many = exports["many"].run()
    assert many.reports == {}
    (error,) = many.errors.values()
    assert isinstance(error, ConfigurationError)
    assert "more than 100 distinct values" in str(error)
    assert "values = [...]" in str(error)
    listed = exports["listed"].run()
    assert list(listed.reports) == ["gold"]
    assert isinstance(listed.errors["silver"], GuardrailError)  # a listed segment with no rows
    assert listed.notes == (
        f"1 of the 2 rows of {tmp_path / 'tiers.csv'} are in no segment: their 'tier' is empty or not one of "
        "the values listed",
    )
    assert [title for _, title in sandbox.lists] == ["gold"]


def test_a_source_that_breaks_while_being_split_exports_none_of_its_segments(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    write(tmp_path, "broken.jsonl", '{"email": "a@example.com", "tier": "gold"}\n{not json\n')
    path = write(tmp_path, "e.toml", """\
        [connections.c]
        api_key_env = "TEST_SAVED_KEY"
        [exports.x]
        mapping = { email = "email" }
        [[exports.x.segments]]
        source = "broken.jsonl"
        filter_column = "tier"
    """)  # fmt: skip
    run = load_exports(path)["x"].run()
    assert run.reports == {}
    (label,) = run.errors
    assert label == f"tier of {tmp_path / 'broken.jsonl'}"
    assert type(run.errors[label]).__name__ == "SourceError"
    assert sandbox.requests == []
