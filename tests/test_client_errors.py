"""Typed errors: status -> class, error bodies of any shape, request ids, transport failures."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from autopilot_segments import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    AutopilotClient,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from autopilot_segments.sandbox import Sandbox

KEY = "0123456789abcdef0123456789abcdef"


def _no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def client(httpserver: HTTPServer) -> Iterator[AutopilotClient]:
    with AutopilotClient(
        KEY, base_url=httpserver.url_for("/v1"), requests_per_second=1000, max_retries=0, sleep=_no_sleep
    ) as c:
        yield c


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (418, APIError),
        (422, APIError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (599, ServerError),
    ],
)
def test_status_maps_to_its_error_class(
    client: AutopilotClient, httpserver: HTTPServer, status: int, cls: type[APIError]
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_json(
        {"error": "Some Reason", "message": f"it went wrong ({status})"}, status=status
    )
    with pytest.raises(APIError) as info:
        client.lists()
    err = info.value
    assert type(err) is cls
    assert err.status == status
    assert err.method == "GET"
    assert err.url == httpserver.url_for("/v1/lists")
    assert err.message == f"it went wrong ({status})"
    assert err.error == "Some Reason"
    assert json.loads(err.body) == {"error": "Some Reason", "message": f"it went wrong ({status})"}
    assert str(status) in str(err)


def test_missing_key_header_400_is_an_authentication_error(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/account").respond_with_json(
        {"error": "Bad Request", "message": "No autopilotapikey header provided."}, status=400
    )
    with pytest.raises(AuthenticationError) as info:
        client.account()
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("body", "content_type", "message", "reason"),
    [
        (b'{"error":"Not Found","message":"Contact could not be found."}', "application/json",
         "Contact could not be found.", "Not Found"),
        (b'{"code": 404, "message": "No such contact"}', "application/json", "No such contact", "404"),
        (b'{"error": "Not Found"}', "application/json", "Not Found", "Not Found"),
        (b'["not", "an", "object"]', "application/json", "Not Found", "Not Found"),
        (b'"just a string"', "application/json", "Not Found", "Not Found"),
        (b"null", "application/json", "Not Found", "Not Found"),
        (b"", "application/json", "Not Found", "Not Found"),
        (b"<html><body><h1>404</h1></body></html>", "text/html", "Not Found", "Not Found"),
        (b"\xff\xfe\xfa not utf-8 at all", "application/json", "Not Found", "Not Found"),
        (b'{"message": 12, "error": ["odd"]}', "application/json", "12", "['odd']"),
    ],
)  # fmt: skip
def test_error_bodies_of_any_shape_parse(
    client: AutopilotClient,
    httpserver: HTTPServer,
    body: bytes,
    content_type: str,
    message: str,
    reason: str,
) -> None:
    # werkzeug matches on the decoded path; the raw one is checked in test_path_segments_are_url_encoded
    httpserver.expect_request("/v1/contact/x@example.com").respond_with_data(
        body, status=404, content_type=content_type
    )
    with pytest.raises(NotFoundError) as info:
        client.get_contact("x@example.com")
    err = info.value
    assert err.message == message
    assert err.error == reason
    assert err.body == body.decode("utf-8", errors="replace")
    assert isinstance(str(err), str)
    assert isinstance(repr(err), str)


@pytest.mark.parametrize("header", ["X-Request-Id", "X-Amzn-RequestId", "Request-Id"])
def test_request_id_is_kept(client: AutopilotClient, httpserver: HTTPServer, header: str) -> None:
    httpserver.expect_request("/v1/lists").respond_with_json(
        {"error": "Bad Request", "message": "nope"}, status=400, headers={header: "req-123"}
    )
    with pytest.raises(BadRequestError) as info:
        client.lists()
    assert info.value.request_id == "req-123"
    assert "req-123" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"<html>hello</html>", b'{"lists": "not a list"}',
     b'{"lists": [{"title": "no id"}]}', b"[1, 2]"],
)  # fmt: skip
def test_a_success_body_that_is_not_what_was_documented_is_an_api_error(
    client: AutopilotClient, httpserver: HTTPServer, body: bytes
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_data(
        body, status=200, content_type="application/json"
    )
    with pytest.raises(APIError) as info:
        client.lists()
    assert info.value.status == 200
    assert info.value.error == "Unexpected response"


def test_a_page_with_a_repeated_bookmark_does_not_loop_forever(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    page = {"contacts": [{"Email": "a@example.com"}], "bookmark": "same"}
    httpserver.expect_request("/v1/contacts").respond_with_json(page)
    httpserver.expect_request("/v1/contacts/same").respond_with_json(page)
    with pytest.raises(APIError, match="bookmark"):
        list(client.iter_contacts())


def test_pagination_stops_exactly_on_the_page_without_a_bookmark(
    client: AutopilotClient, httpserver: HTTPServer
) -> None:
    # A full page WITHOUT a bookmark is the last one; an empty page WITH a bookmark is not.
    full = [{"Email": f"u{i}@example.com"} for i in range(100)]
    httpserver.expect_request("/v1/list/L1/contacts").respond_with_json({"contacts": [], "bookmark": "b 1/2"})
    httpserver.expect_request("/v1/list/L1/contacts/b 1/2").respond_with_json(
        {"contacts": full, "total_contacts": 100}
    )
    got = list(client.iter_list_contacts("L1"))
    assert len(got) == 100
    assert len(httpserver.log) == 2
    assert httpserver.log[1][0].environ["REQUEST_URI"] == "/v1/list/L1/contacts/b%201%2F2"


def test_path_segments_are_url_encoded(client: AutopilotClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/list/a/b/contact/o'neil+x@example.com").respond_with_json({}, status=200)
    assert client.is_on_list("a/b", "o'neil+x@example.com") is True
    assert httpserver.log[0][0].environ["REQUEST_URI"] == "/v1/list/a%2Fb/contact/o%27neil%2Bx@example.com"


def test_a_redirect_is_never_followed(client: AutopilotClient, httpserver: HTTPServer) -> None:
    # Following it would send the key header to wherever the Location points.
    httpserver.expect_request("/v1/lists").respond_with_data(
        "", status=302, headers={"Location": httpserver.url_for("/elsewhere")}
    )
    with pytest.raises(APIError) as info:
        client.lists()
    assert info.value.status == 302
    assert [entry[0].path for entry in httpserver.log] == ["/v1/lists"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_is_an_api_connection_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with AutopilotClient(
        KEY, base_url=url, max_retries=2, sleep=_no_sleep, requests_per_second=1000
    ) as client:
        with pytest.raises(APIConnectionError) as info:
            client.account()
        assert not isinstance(info.value, APITimeoutError)
        assert info.value.method == "GET"
        assert info.value.url == url + "/account"
        assert client.stats.retries == 2  # connection failures are retried before giving up


def test_a_connection_that_could_not_be_opened_is_retried_even_for_a_journey_trigger() -> None:
    # Nothing was sent, so even a call that is never replayed may try again.
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with AutopilotClient(
        KEY, base_url=url, max_retries=2, sleep=_no_sleep, requests_per_second=1000
    ) as client:
        with pytest.raises(APIConnectionError):
            client.add_to_journey("0001", "a@example.com")
        assert client.stats.retries == 2
        assert client.stats.requests == 3


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("max_retries", [0, 1])
def test_read_timeout_is_an_api_timeout_error(silent_server: str, max_retries: int) -> None:
    with AutopilotClient(
        KEY,
        base_url=silent_server,
        timeout=0.1,
        max_retries=max_retries,
        sleep=_no_sleep,
        requests_per_second=1000,
    ) as client:
        with pytest.raises(APITimeoutError) as info:
            client.lists()
        assert isinstance(info.value, APIConnectionError)
        assert client.stats.retries == max_retries


def test_read_timeout_against_a_slow_sandbox() -> None:
    with Sandbox() as sb:
        sb.inject("delay:0.5", times=2)
        with AutopilotClient(
            sb.api_key,
            base_url=sb.url,
            timeout=(1.0, 0.1),
            max_retries=1,
            sleep=_no_sleep,
            requests_per_second=1000,
        ) as client:
            with pytest.raises(APITimeoutError):
                client.account()
            assert client.stats.requests == 2


def test_a_post_that_timed_out_is_not_replayed(silent_server: str) -> None:
    with AutopilotClient(
        KEY, base_url=silent_server, timeout=0.1, max_retries=3, sleep=_no_sleep, requests_per_second=1000
    ) as client:
        with pytest.raises(APITimeoutError):
            client.add_to_journey("0001", "a@example.com")
        assert client.stats.retries == 0


def test_error_handler_sees_the_json_sent(client: AutopilotClient, httpserver: HTTPServer) -> None:
    seen: list[object] = []

    def handler(request: Request) -> Response:
        seen.append(request.get_json())
        return Response('{"error": "Bad Request", "message": "Contact 2 is invalid"}', status=400)

    httpserver.expect_request("/v1/contacts", method="POST").respond_with_handler(handler)
    with pytest.raises(BadRequestError, match="Contact 2 is invalid"):
        client.upsert_contacts([{"Email": "a@example.com"}, {"Email": "nope"}])
    assert seen == [{"contacts": [{"Email": "a@example.com"}, {"Email": "nope"}]}]


@pytest.mark.parametrize(
    ("style", "message", "reason"),
    [
        ("json", "Contact could not be found.", "Not Found"),
        ("code", "Contact could not be found.", "404"),
        ("empty", "Not Found", "Not Found"),
        ("html", "Not Found", "Not Found"),
    ],
)
def test_every_sandbox_error_style_becomes_a_typed_error(style: str, message: str, reason: str) -> None:
    with (
        Sandbox(error_style=style) as sb,  # type: ignore[arg-type]
        AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000) as client,
    ):
        with pytest.raises(NotFoundError) as info:
            client.get_contact("nobody@example.com")
        assert info.value.message == message
        assert info.value.error == reason
        assert client.is_on_list(sb.create_list("L"), "nobody@example.com") is False


def _serve_a_broken_answer(stall: bool) -> tuple[str, Callable[[], None]]:
    """A server that sends a 200's headers and part of its body, then hangs up (or goes quiet)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.settimeout(5.0)  # never hang the suite on a client that connects and sends nothing
            try:
                conn.recv(65536)
            except OSError:
                continue
            conn.sendall(
                b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"lists": ['
            )
            if not stall:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def shut() -> None:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()

    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", shut


@pytest.mark.parametrize(("stall", "expected"), [(False, APIConnectionError), (True, APITimeoutError)])
def test_an_answer_cut_off_mid_body_is_a_typed_error(stall: bool, expected: type[APIConnectionError]) -> None:
    # The body is read after the status line arrived: a failure there must not escape as a bare
    # requests exception (every error of the library derives from AutopilotError).
    url, shut = _serve_a_broken_answer(stall)
    try:
        with (
            AutopilotClient(
                KEY, base_url=url, timeout=0.2, max_retries=0, sleep=_no_sleep, requests_per_second=1000
            ) as client,
            pytest.raises(expected) as info,
        ):
            client.lists()
    finally:
        shut()
    assert info.value.method == "GET"
    assert info.value.url == url + "/lists"
    assert info.value.__context__ is None
    assert info.value.__cause__ is None
