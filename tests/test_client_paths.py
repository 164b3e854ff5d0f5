"""Emails in URL paths: `@` as Autopilot documents it, everything a path segment cannot hold encoded."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from autopilot_segments import AutopilotClient, Contact
from autopilot_segments.sandbox import Sandbox

KEY = "0123456789abcdef0123456789abcdef"
ANY_PATH = re.compile(".*")

# email -> the path segment the client must send for it
EMAIL_SEGMENTS = [
    ("chris@example.com", "chris@example.com"),
    ("Chris.Doe@Example.COM", "Chris.Doe@Example.COM"),
    ("o'neil+x@example.com", "o%27neil%2Bx@example.com"),
    ("a b@example.com", "a%20b@example.com"),
    ("x/y@example.com", "x%2Fy@example.com"),
    ("q?r@example.com", "q%3Fr@example.com"),
    ("h#t@example.com", "h%23t@example.com"),
    ("p%41@example.com", "p%2541@example.com"),
    ("jörg@bücher.de", "j%C3%B6rg@b%C3%BCcher.de"),
    ('"quoted"@example.com', "%22quoted%22@example.com"),
    ("semi;colon@example.com", "semi%3Bcolon@example.com"),
    ("under_score-dash~tilde@example.com", "under_score-dash~tilde@example.com"),
]


def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def client(httpserver: HTTPServer) -> Iterator[AutopilotClient]:
    with AutopilotClient(
        KEY, base_url=httpserver.url_for("/v1"), requests_per_second=1000, max_retries=0, sleep=_no_sleep
    ) as c:
        yield c


CALLS: list[tuple[str, str, Callable[[AutopilotClient, str], Any], dict[str, Any]]] = [
    ("GET", "/v1/contact/{}", lambda c, e: c.get_contact(e), {"contact_id": "person_1", "Email": "x@y.z"}),
    ("DELETE", "/v1/contact/{}", lambda c, e: c.delete_contact(e), {}),
    ("POST", "/v1/contact/{}/unsubscribe", lambda c, e: c.unsubscribe(e), {}),
    ("GET", "/v1/list/L1/contact/{}", lambda c, e: c.is_on_list("L1", e), {}),
    ("POST", "/v1/list/L1/contact/{}", lambda c, e: c.add_to_list("L1", e), {}),
    ("DELETE", "/v1/list/L1/contact/{}", lambda c, e: c.remove_from_list("L1", e), {}),
    ("POST", "/v1/trigger/0001/contact/{}", lambda c, e: c.add_to_journey("0001", e), {}),
]


@pytest.mark.parametrize(("email", "segment"), EMAIL_SEGMENTS)
def test_every_contact_path_carries_the_email_as_documented(
    client: AutopilotClient, httpserver: HTTPServer, email: str, segment: str
) -> None:
    for method, template, call, answer in CALLS:
        httpserver.clear()
        httpserver.expect_request(ANY_PATH, method=method).respond_with_json(answer)
        call(client, email)
        assert len(httpserver.log) == 1
        raw = httpserver.log[0][0].environ["REQUEST_URI"]
        assert raw == template.format(segment), (method, template)


def test_a_contact_object_is_referred_to_the_same_way(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(ANY_PATH).respond_with_json({})
    client.delete_contact(Contact(email="ann+1@example.com"))
    client.delete_contact(Contact(email="ann@example.com", contact_id="person_A/B"))
    uris = [entry[0].environ["REQUEST_URI"] for entry in httpserver.log]
    assert uris == ["/v1/contact/ann%2B1@example.com", "/v1/contact/person_A%2FB"]


def test_list_ids_and_other_segments_stay_fully_encoded(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request(ANY_PATH).respond_with_json({})
    client.is_on_list("a/b@c", "o'neil+x@example.com")
    uri = httpserver.log[0][0].environ["REQUEST_URI"]
    assert uri == "/v1/list/a%2Fb%40c/contact/o%27neil%2Bx@example.com"


@pytest.mark.parametrize(("email", "segment"), EMAIL_SEGMENTS[:4])
def test_the_sandbox_records_the_raw_path_and_finds_the_contact(email: str, segment: str) -> None:
    with Sandbox() as sb, AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client:
        sb.add_contacts([{"Email": "chris@example.com"}, {"Email": "o'neil+x@example.com"}])
        known = email.lower() in sb.contacts
        assert client.is_on_list(sb.create_list("L"), email) is False
        if known:
            assert client.get_contact(email).email == email
        assert sb.requests[-1].raw_path.endswith("/" + segment)
