"""The API key never leaks: not in reprs, exceptions (or their chains), logs at DEBUG, or error bodies."""

from __future__ import annotations

import datetime as dt
import logging
import math
import pickle
import socket
import ssl
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from autopilot_segments import (
    APIConnectionError,
    AutopilotClient,
    AutopilotError,
    ConfigurationError,
    PayloadError,
)
from autopilot_segments._http.transport import SecretKey
from autopilot_segments.sandbox import Sandbox

KEY = "0123456789abcdef0123456789abcdef"


def _no_sleep(_seconds: float) -> None:
    return None


def _all_text_of(exc: BaseException) -> str:
    """Everything an exception could show: str, repr, args, attributes, and its whole chain."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        parts += traceback.format_exception(type(current), current, current.__traceback__)
        # as error trackers and `pytest -l` show it: with every frame's local variables
        parts += traceback.TracebackException.from_exception(current, capture_locals=True).format()
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def http_client(httpserver: HTTPServer) -> Iterator[AutopilotClient]:
    with AutopilotClient(
        KEY, base_url=httpserver.url_for("/v1"), requests_per_second=1000, max_retries=1, sleep=_no_sleep
    ) as client:
        yield client


def _echo_key(request: Request) -> Response:
    # A hostile or buggy server that echoes the key back in its error body (and varies its case).
    key = request.headers.get("autopilotapikey", "")
    return Response(
        f'{{"error": "Unauthorized", "message": "key {key} / {key.upper()} not valid"}}',
        status=401,
        content_type="application/json",
    )


def test_reprs_never_show_the_key() -> None:
    with AutopilotClient(KEY) as client:
        for text in (repr(client), str(client), repr(vars(client)), repr(client._transport.__dict__)):
            assert KEY not in text
        assert client.account_fingerprint[:12] in repr(client)


def test_a_client_cannot_be_pickled() -> None:
    with AutopilotClient(KEY) as client, pytest.raises(TypeError):
        pickle.dumps(client)


def test_an_echoed_key_is_redacted_from_errors(http_client: AutopilotClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/account").respond_with_handler(_echo_key)
    with pytest.raises(AutopilotError) as info:
        http_client.account()
    text = _all_text_of(info.value)
    assert KEY not in text.lower()
    assert "[REDACTED]" in info.value.body  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "scenario",
    ["refused", "timeout", "error_status", "bad_json", "echo"],
)
def test_no_exception_carries_the_key(httpserver: HTTPServer, scenario: str) -> None:
    url = httpserver.url_for("/v1")
    timeout: float = 5.0
    if scenario == "refused":
        url = f"http://127.0.0.1:{_closed_port()}/v1"
    elif scenario == "timeout":
        httpserver.expect_request("/v1/account").respond_with_handler(_slow)
        timeout = 0.05
    elif scenario == "error_status":
        httpserver.expect_request("/v1/account").respond_with_data("<html>boom</html>", status=500)
    elif scenario == "bad_json":
        httpserver.expect_request("/v1/account").respond_with_data("{oops", status=200)
    else:
        httpserver.expect_request("/v1/account").respond_with_handler(_echo_key)
    with (
        AutopilotClient(KEY, base_url=url, timeout=timeout, max_retries=1, sleep=_no_sleep) as client,
        pytest.raises(AutopilotError) as info,
    ):
        client.account()
    assert KEY not in _all_text_of(info.value).lower()
    # the requests exception (which holds the prepared request and so the key header) is not chained
    assert info.value.__cause__ is None or not hasattr(info.value.__cause__, "request")
    assert info.value.__context__ is None or not hasattr(info.value.__context__, "request")


def _slow(_request: Request) -> Response:
    import time

    time.sleep(0.3)
    return Response("{}", status=200)


def test_the_key_never_reaches_the_logs_even_at_debug(
    caplog: pytest.LogCaptureFixture, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/contacts", method="POST").respond_with_handler(_sequence_503_then_ok())
    httpserver.expect_request("/v1/account").respond_with_handler(_echo_key)
    httpserver.expect_request("/v1/lists").respond_with_data("", status=429)
    with caplog.at_level(logging.DEBUG):  # root logger: urllib3's and requests' loggers included
        with AutopilotClient(
            KEY, base_url=httpserver.url_for("/v1"), requests_per_second=1000, max_retries=2, sleep=_no_sleep
        ) as client:
            client.upsert_contacts([{"Email": "secret.person@example.com"}])
            for call in (client.account, client.lists):
                with pytest.raises(AutopilotError):
                    call()
        with pytest.raises(ConfigurationError):
            AutopilotClient(KEY[:-1])
    text = caplog.text + "\n".join(repr(r.__dict__) for r in caplog.records)
    assert KEY not in text
    assert KEY[:-1] not in text
    # the capture really saw urllib3's debug lines and our own
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    ours = [r for r in caplog.records if r.name == "autopilot_segments.client"]
    assert ours
    # our own lines never carry an email address, at any level
    assert not any("secret.person" in r.getMessage() for r in ours)
    assert not any(r.levelno >= logging.INFO and "@" in r.getMessage() for r in ours)


def test_emails_in_paths_are_redacted_from_our_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    with Sandbox() as sb:
        sb.add_contacts([{"Email": "private@example.com"}])
        sb.inject("503", path_prefix="/contact/")
        with caplog.at_level(logging.DEBUG, logger="autopilot_segments.client"):
            with AutopilotClient(
                sb.api_key, base_url=sb.url, requests_per_second=1000, sleep=_no_sleep
            ) as client:
                client.get_contact("private@example.com")
            ours = [r.getMessage() for r in caplog.records if r.name == "autopilot_segments.client"]
    assert any("retrying GET /v1/contact/<email> after status 503" in line for line in ours), ours
    assert any("GET /v1/contact/<email> -> 200" in line for line in ours), ours
    assert not any("private" in line for line in ours)
    assert sb.api_key not in caplog.text


def _sequence_503_then_ok() -> Callable[[Request], Response]:
    answers = [
        Response("", status=503),
        Response(
            '{"contact_ids": ["person_1"], "email_contact_map": {"secret.person@example.com": "person_1"}}',
            status=200,
            content_type="application/json",
        ),
    ]

    def handler(_request: Request) -> Response:
        return answers.pop(0) if len(answers) > 1 else answers[0]

    return handler


# A self-signed certificate for 127.0.0.1 (EC P-256, valid until 2126), made for this test only:
# trusted by nothing unless a test names it as the CA bundle.
_TEST_CERT = """\
-----BEGIN CERTIFICATE-----
MIIBoTCCAUagAwIBAgIUTYzVX+0mwwL+AghsIBEgfhrnQGswCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyOTA1MDExNFoYDzIxMjYxMTA1
MDUwMTE0WjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATRQgRr5PFisSIBaVP0BfwemsPJOQE8+K5D04cqhKkZFYbVD4MtkjnJ
15+xihEy5Altf7bSTqxk983LRuaXesGoo3QwcjAdBgNVHQ4EFgQUGTnGiUTnC0DU
UM64YeOuqw7xDR0wHwYDVR0jBBgwFoAUGTnGiUTnC0DUUM64YeOuqw7xDR0wDwYD
VR0RBAgwBocEfwAAATAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIChDAK
BggqhkjOPQQDAgNJADBGAiEA/St0Y8M7T5ee6T6w9MHgN40pioq4M5ZTpSxTJldm
pe8CIQDlFIoKUi6HhIkUmHOFPFTFivUf0fUxYRtgnXkDTSX7GA==
-----END CERTIFICATE-----
"""
_TEST_CERT_KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzc4OEnhpIGD7p2dJ
MzDSqL0/99+MGtcit03EJvUPkjihRANCAATRQgRr5PFisSIBaVP0BfwemsPJOQE8
+K5D04cqhKkZFYbVD4MtkjnJ15+xihEy5Altf7bSTqxk983LRuaXesGo
-----END PRIVATE KEY-----
"""


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HTTPServer, Path]]:
    # requests lets these variables override a session's `verify`: keep the machine's settings out.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text(_TEST_CERT)
    key.write_text(_TEST_CERT_KEY)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.expect_request("/v1/account").respond_with_json({"ok": True})
    server.start()
    try:
        yield server, cert
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.mark.parametrize("session_verify", [None, False])
def test_tls_verification_stays_on_even_when_the_session_turns_it_off(
    tls_server: tuple[HTTPServer, Path], session_verify: bool | None
) -> None:
    server, _cert = tls_server
    session = None
    if session_verify is not None:
        session = requests.Session()
        session.verify = session_verify
    with (
        AutopilotClient(
            KEY, base_url=server.url_for("/v1"), session=session, max_retries=0, sleep=_no_sleep
        ) as client,
        pytest.raises(APIConnectionError, match="TLS"),
    ):
        client.account()
    assert server.log == []  # the handshake failed: no request, so no key, reached the server


def test_a_ca_bundle_on_the_session_is_honoured(tls_server: tuple[HTTPServer, Path]) -> None:
    # The same server is reachable once its certificate is trusted: the failure above is verification.
    server, cert = tls_server
    session = requests.Session()
    session.verify = str(cert)
    with AutopilotClient(KEY, base_url=server.url_for("/v1"), session=session, sleep=_no_sleep) as client:
        assert client.account() == {"ok": True}


def _reachable_text(exc: BaseException, depth: int = 4) -> str:
    """repr of everything an error tracker could show: the chain, attributes, and the local variables of
    every frame of every traceback, followed into containers and object attributes. SecretKey (the one
    place meant to hold the key) is only repr'd."""
    parts: list[str] = []
    seen: set[int] = set()

    def visit(value: object, level: int) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        try:
            parts.append(repr(value))
        except Exception:
            return
        if level >= depth or isinstance(value, (str, bytes, int, float, SecretKey)):
            return
        if isinstance(value, dict):
            for k, v in list(value.items()):
                visit(k, level + 1)
                visit(v, level + 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in list(value):
                visit(item, level + 1)
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            visit(attributes, level + 1)

    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        visit(current, 0)
        visit(current.args, 0)
        tb = current.__traceback__
        while tb is not None:
            visit(dict(tb.tb_frame.f_locals), 0)
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return "\n".join(parts) + "\n" + _all_text_of(exc)


@pytest.mark.parametrize(
    ("contact", "field", "kind"),
    [
        ({"Email": "a@example.com", "custom": {"date--Joined": dt.date(2020, 1, 2)}}, "date--Joined", "date"),
        ({"Email": "a@example.com", "custom": {"float--Score": math.nan}}, "float--Score", "NaN"),
        ({"Email": "a@example.com", "custom": {"float--Score": math.inf}}, "float--Score", "infinite"),
        ({"Email": "a@example.com", "Tags": {"x", "y"}}, "Tags", "set"),
        ({"Email": "a@example.com", "FirstName": "Ann\udc80"}, "FirstName", "surrogate"),
    ],
)
def test_a_value_that_is_not_json_is_refused_before_sending_naming_the_field_never_the_key(
    http_client: AutopilotClient, httpserver: HTTPServer, contact: dict[str, object], field: str, kind: str
) -> None:
    httpserver.expect_request("/v1/contacts", method="POST").respond_with_json({"contact_ids": []})
    with pytest.raises(ValueError, match=field) as info:
        http_client.upsert_contacts([{"Email": "first@example.com"}, contact])
    error = info.value
    assert isinstance(error, PayloadError)
    assert isinstance(error, AutopilotError)
    assert kind in str(error)
    assert "contacts[1]" in str(error)  # the second contact of the batch
    assert "2020" not in str(error)
    assert "Ann" not in str(error)
    assert httpserver.log == []  # nothing was sent
    assert KEY not in _reachable_text(error).lower()
    with pytest.raises(PayloadError):
        http_client.upsert_contact(contact)
    assert httpserver.log == []


def test_the_key_is_in_no_frame_of_a_failed_call(httpserver: HTTPServer) -> None:
    # The deep walk of the locals also holds for the transport failures of test_no_exception_carries_the_key.
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with (
        AutopilotClient(KEY, base_url=url, max_retries=0, sleep=_no_sleep) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.upsert_contacts([{"Email": "a@example.com"}])
    assert KEY not in _reachable_text(info.value).lower()
