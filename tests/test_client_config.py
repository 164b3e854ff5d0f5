"""AutopilotClient construction: key, base URL and option validation; sessions; headers; properties."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from pytest_httpserver import HTTPServer

from autopilot_segments import AutopilotClient, ConfigurationError, __version__

KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer) -> None:
    monkeypatch.setenv("AUTOPILOT_API_KEY", f"  {KEY}\n")
    httpserver.expect_request("/v1/account", headers={"autopilotapikey": KEY}).respond_with_json({"ok": True})
    with AutopilotClient(base_url=httpserver.url_for("/v1")) as client:
        assert client.account() == {"ok": True}


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_key_at_all_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("AUTOPILOT_API_KEY", raising=False)
    else:
        monkeypatch.setenv("AUTOPILOT_API_KEY", value)
    with pytest.raises(ConfigurationError, match="AUTOPILOT_API_KEY"):
        AutopilotClient()


@pytest.mark.parametrize(
    "bad_key",
    [
        "not-a-key",
        KEY[:-1],
        KEY + "0",
        "g123456789abcdef0123456789abcdef",
        "0123456789abcdef 123456789abcdef",
    ],
)
def test_a_malformed_key_is_refused_without_echoing_it(bad_key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        AutopilotClient(bad_key)
    message = str(info.value)
    assert "32 hexadecimal characters" in message
    assert bad_key not in message
    assert bad_key not in repr(info.value.args)


def test_surrounding_whitespace_is_stripped_and_uppercase_hex_accepted() -> None:
    with AutopilotClient(f"\t{KEY.upper()} ") as client, AutopilotClient(KEY) as same:
        assert client.account_fingerprint == same.account_fingerprint


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api2.autopilothq.com/v1/", "https://api2.autopilothq.com/v1"),
        ("https://example.test/autopilot//", "https://example.test/autopilot"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://127.8.9.10/v1/", "http://127.8.9.10/v1"),
        ("http://localhost:1/v1", "http://localhost:1/v1"),
        ("http://[::1]:9/v1", "http://[::1]:9/v1"),
    ],
)
def test_accepted_base_urls(url: str, expected: str) -> None:
    with AutopilotClient(KEY, base_url=url) as client:
        assert client.base_url == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://api2.autopilothq.com/v1", "plain http"),
        ("http://10.0.0.1/v1", "plain http"),
        ("http://localhost.example.com/v1", "plain http"),
        # look-alikes and userinfo tricks: what counts is the host a request would really go to
        ("http://127.0.0.1.evil.example/v1", "plain http"),
        ("http://localhost.evil.example/v1", "plain http"),
        ("http://127.0.0.1@evil.example/v1", "plain http"),
        ("http://127.0.0.1:80@evil.example/v1", "plain http"),
        ("http://evil.example@127.0.0.1/v1", "credentials"),
        ("http://evil.example\\@127.0.0.1/v1", "credentials"),
        ("http://127.0.0.1#@evil.example/v1", "fragment"),
        ("http://127.0.0.1?@evil.example/v1", "query"),
        ("http://0x7f000001/v1", "plain http"),
        ("http://2130706433/v1", "plain http"),
        ("ftp://api2.autopilothq.com/v1", "https://"),
        ("api2.autopilothq.com/v1", "https://"),
        ("https:///v1", "https://"),
        ("https://user:pw@api2.autopilothq.com/v1", "credentials"),
        ("https://api2.autopilothq.com/v1?x=1", "query"),
    ],
)
def test_refused_base_urls(url: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        AutopilotClient(KEY, base_url=url)


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"requests_per_second": -5}, "requests_per_second"),
        ({"requests_per_second": float("nan")}, "requests_per_second"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"timeout": (5.0, 0)}, "timeout"),
        ({"timeout": (1.0, 2.0, 3.0)}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"backoff_factor": -0.1}, "backoff_factor"),
        ({"max_retry_after": -1}, "max_retry_after"),
    ],
)
def test_invalid_options_are_refused_with_a_clear_message(options: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        AutopilotClient(KEY, **options)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        AutopilotClient("nope", base_url="http://example.com", requests_per_second=0, max_retries=-1)
    assert len(info.value.problems) == 4


def test_valid_edge_options_are_accepted() -> None:
    with AutopilotClient(KEY, timeout=0.5, max_retries=0, backoff_factor=0, max_retry_after=0) as client:
        assert client.requests_per_second == 5.0


def test_properties() -> None:
    with AutopilotClient(KEY, requests_per_second=20) as client, AutopilotClient(OTHER_KEY) as other:
        assert client.requests_per_second == 20.0
        assert client.base_url == "https://api2.autopilothq.com/v1"
        assert re.fullmatch(r"[0-9a-f]{64}", client.account_fingerprint)
        assert client.account_fingerprint != other.account_fingerprint
        assert KEY not in client.account_fingerprint
        assert client.stats.requests == 0


def test_headers_sent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/contact", method="POST").respond_with_json({"contact_id": "person_1"})
    with AutopilotClient(KEY, base_url=httpserver.url_for("/v1")) as client:
        assert client.upsert_contact({"Email": "a@example.com"}) == "person_1"
    request = httpserver.log[0][0]
    assert request.headers["autopilotapikey"] == KEY
    assert request.headers["User-Agent"] == f"autopilot-segments/{__version__}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_json() == {"contact": {"Email": "a@example.com"}}


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_a_session_passed_in_is_used_but_not_closed_or_mutated(httpserver: HTTPServer) -> None:
    session = RecordingSession()
    session.headers["X-Trace"] = "trace-1"
    adapters_before = dict(session.adapters)
    httpserver.expect_request("/v1/account", headers={"X-Trace": "trace-1"}).respond_with_json({})
    with AutopilotClient(KEY, base_url=httpserver.url_for("/v1"), session=session) as client:
        client.account()
    assert session.closed == 0
    assert session.adapters == adapters_before
    assert "autopilotapikey" not in session.headers


def test_the_client_closes_the_session_it_created() -> None:
    client = AutopilotClient(KEY)
    session = client._transport.session
    closed: list[bool] = []
    original_close = session.close

    def close() -> None:
        closed.append(True)
        original_close()

    session.close = close  # type: ignore[method-assign]
    with client:
        pass
    assert closed == [True]


def test_the_pool_fits_sixteen_concurrent_requests() -> None:
    with AutopilotClient(KEY) as client:
        for adapter in (client._transport._replaying, client._transport._careful):
            assert adapter._pool_maxsize >= 16  # type: ignore[attr-defined]


def test_base_url_comes_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> None:
    monkeypatch.setenv("AUTOPILOT_BASE_URL", httpserver.url_for("/v1") + "/")
    httpserver.expect_request("/v1/account", headers={"autopilotapikey": KEY}).respond_with_json({"ok": True})
    with AutopilotClient(KEY) as client:
        assert client.base_url == httpserver.url_for("/v1")
        assert client.account() == {"ok": True}


def test_the_base_url_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPILOT_BASE_URL", "https://env.example.com/v1")
    with AutopilotClient(KEY, base_url="https://arg.example.com/v1") as client:
        assert client.base_url == "https://arg.example.com/v1"


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_base_url_in_the_environment_means_autopilot(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("AUTOPILOT_BASE_URL", raising=False)
    else:
        monkeypatch.setenv("AUTOPILOT_BASE_URL", value)
    with AutopilotClient(KEY) as client:
        assert client.base_url == "https://api2.autopilothq.com/v1"


def test_a_bad_base_url_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPILOT_BASE_URL", "http://example.com/v1")
    with pytest.raises(ConfigurationError, match="AUTOPILOT_BASE_URL"):
        AutopilotClient(KEY)
