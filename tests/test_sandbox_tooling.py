"""Sandbox tooling and building blocks: the CLI, the pytest fixtures, the token bucket, pages, email rules."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

import autopilot_segments.sandbox as sandbox_pkg
from autopilot_segments.sandbox import Sandbox, sandbox_fixture
from autopilot_segments.sandbox._autopilot.store import (
    BadBookmark,
    OrderedIndex,
    decode_bookmark,
    encode_bookmark,
)
from autopilot_segments.sandbox._autopilot.validation import custom_field_name, email_problem
from autopilot_segments.sandbox._ratelimit import TokenBucket

TIMEOUT = 5.0


# -- CLI ---------------------------------------------------------------------------------------------
def test_cli_serves_with_a_key_file_and_stops_on_terminate(tmp_path: Path) -> None:
    key_file = tmp_path / "sandbox.key"
    process = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments.sandbox", "--port", "0", "--api-key-file", str(key_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        key = key_file.read_text().strip()
        assert second.strip() == f"API key: {key}"
        assert len(key) == 32
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        answer = requests.get(url + "/account", headers={"autopilotapikey": key}, timeout=TIMEOUT)
        assert answer.status_code == 200
        upsert = requests.post(
            url + "/contact",
            json={"contact": {"Email": "cli@example.com"}},
            headers={"autopilotapikey": key},
            timeout=TIMEOUT,
        )
        assert upsert.status_code == 200
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert key not in err


def test_cli_reuses_an_existing_key_file_and_rejects_bad_switches(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments.sandbox", "--port", "0", "--api-key-file", str(key_file),
         "--rate", "20", "--bulk-invalid", "drop", "--bulk-list", "ignored", "--duplicate-list", "create",
         "--latency", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        assert process.stdout.readline().strip() == "API key: 0123456789abcdef0123456789abcdef"
        headers = {"autopilotapikey": "0123456789abcdef0123456789abcdef"}
        for _ in range(2):
            assert requests.post(url + "/list", json={"name": "Dup"}, headers=headers, timeout=TIMEOUT).ok
    finally:
        process.terminate()
        process.communicate(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "autopilot_segments.sandbox", "--rate", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2
    assert "rate_limit" in bad.stderr


def test_cli_plays_every_ambiguity_switch(tmp_path: Path) -> None:
    key = "0123456789abcdef0123456789abcdef"
    (tmp_path / "key").write_text(key)
    process = subprocess.Popen(
        [sys.executable, "-m", "autopilot_segments.sandbox", "--port", "0", "--api-key-file",
         str(tmp_path / "key"), "--delete-status", "204", "--hook-style", "old", "--error-style", "code",
         "--bulk-answer", "ids_only"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        headers = {"autopilotapikey": key}
        contact = {"contact": {"Email": "cli@example.com"}}
        assert requests.post(url + "/contact", json=contact, headers=headers, timeout=TIMEOUT).ok
        bulk = {"contacts": [{"Email": "cli@example.com"}]}
        answer = requests.post(url + "/contacts", json=bulk, headers=headers, timeout=TIMEOUT).json()
        assert set(answer) == {"contact_ids"}
        deleted = requests.delete(url + "/contact/cli@example.com", headers=headers, timeout=TIMEOUT)
        assert deleted.status_code == 204
        hook = {"event": "contact_added", "target_url": "https://example.com/h"}
        registered = requests.post(url + "/hook", json=hook, headers=headers, timeout=TIMEOUT)
        assert registered.status_code == 201
        assert set(registered.json()) == {"id"}
        missing = requests.get(url + "/contact/cli@example.com", headers=headers, timeout=TIMEOUT)
        assert missing.status_code == 404
        assert missing.json() == {"code": 404, "message": "Contact could not be found."}
    finally:
        process.terminate()
        process.communicate(timeout=10)


# -- pytest fixtures ---------------------------------------------------------------------------------
def test_the_plugin_fixture_yields_a_running_sandbox(autopilot_sandbox: Sandbox) -> None:
    assert autopilot_sandbox.running
    assert autopilot_sandbox.settings.rate_limit is None
    answer = requests.get(
        autopilot_sandbox.url + "/account", headers={"autopilotapikey": autopilot_sandbox.api_key}, timeout=5
    )
    assert answer.status_code == 200


strict_sandbox = sandbox_fixture(rate_limit=5, bulk_invalid="drop")
named_sandbox = sandbox_fixture(name="other_sandbox", hook_style="old")


def test_sandbox_fixture_builds_fixtures_with_switches(
    strict_sandbox: Sandbox, other_sandbox: Sandbox
) -> None:
    assert strict_sandbox.running
    assert other_sandbox.running
    assert strict_sandbox.url != other_sandbox.url
    assert (strict_sandbox.settings.rate_limit, strict_sandbox.settings.bulk_invalid) == (5, "drop")
    assert other_sandbox.settings.hook_style == "old"


def test_sandbox_fixture_rejects_bad_switches_when_defined() -> None:
    with pytest.raises(ValueError):
        sandbox_fixture(bulk_list="sometimes")
    assert sandbox_pkg.sandbox_fixture is sandbox_fixture
    with pytest.raises(AttributeError):
        _ = sandbox_pkg.no_such_name


def test_stop_closes_idle_keep_alive_connections_and_the_port() -> None:
    sb = Sandbox().start()
    session = requests.Session()
    url = sb.url
    assert session.get(url + "/account", headers={"autopilotapikey": sb.api_key}, timeout=5).ok
    with pytest.raises(RuntimeError):
        sb.start()
    sb.stop()
    sb.stop()
    assert not sb.running
    with pytest.raises(requests.ConnectionError):
        session.get(url + "/account", headers={"autopilotapikey": sb.api_key}, timeout=5)


# -- building blocks ---------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("rate", "burst"), [(0.5, 1), (1, 1), (5, 5), (20, 20)])
def test_token_bucket_burst_and_refill(rate: float, burst: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate, clock=clock)
    assert [bucket.try_acquire() for _ in range(burst + 1)] == [True] * burst + [False]
    clock.now += 1 / rate
    assert bucket.try_acquire()
    assert not bucket.try_acquire()
    clock.now += 100
    assert sum(bucket.try_acquire() for _ in range(burst + 5)) == burst


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 30)), max_size=200), st.integers(1, 7))
def test_ordered_index_pages_cover_live_members_in_order(ops: list[tuple[bool, int]], size: int) -> None:
    index = OrderedIndex()
    expected: dict[str, None] = {}
    for add, n in ops:
        item = f"id{n}"
        if add:
            assert index.add(item) == (item not in expected)
            expected.setdefault(item, None)
        else:
            assert index.discard(item) == (item in expected)
            expected.pop(item, None)
    seen: list[str] = []
    start: int | None = 0
    pages = 0
    while start is not None:
        page, start = index.page(start, size)
        pages += 1
        assert page or not expected  # only an empty collection has an empty page
        seen.extend(page)
    assert seen == list(expected)
    assert pages == max(1, -(-len(expected) // size))
    assert len(index) == len(expected)


@given(st.text(max_size=20), st.integers(0, 10**9))
def test_bookmarks_round_trip_and_are_bound_to_their_scope(scope: str, position: int) -> None:
    bookmark = encode_bookmark(scope, position)
    assert decode_bookmark(scope, bookmark) == position
    with pytest.raises(BadBookmark):
        decode_bookmark(scope + "x", bookmark)


_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)
_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789.+_-'", min_size=1, max_size=20)


@given(_LOCAL, st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["com", "io", "co", "xn--p1ai"]))
def test_plain_ascii_addresses_are_accepted(local: str, labels: list[str], tld: str) -> None:
    assert email_problem(f"{local}@{'.'.join([*labels, tld])}") is None


@given(st.text(max_size=30))
def test_email_rules_reject_what_they_promise_to(text: str) -> None:
    problem = email_problem(text)
    breaks_a_rule = (
        not text.isascii()
        or text.count("@") != 1
        or any(c.isspace() or c in "[]<>()" for c in text)
        or text.startswith("@")
        or "." not in text.partition("@")[2]
        or text.rsplit(".", 1)[-1].isdigit()
    )
    if breaks_a_rule:
        assert problem is not None


@given(
    st.sampled_from(["string", "integer", "float", "date", "boolean"]),
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1),
        min_size=1,
        max_size=4,
    ),
)
def test_custom_field_keys_round_trip_to_names_with_spaces(field_type: str, parts: list[str]) -> None:
    assert custom_field_name(f"{field_type}--{'--'.join(parts)}") == (field_type, " ".join(parts))
