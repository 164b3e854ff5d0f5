"""Retries through urllib3's Retry: what is retried, what is replayed, backoff, Retry-After, counting."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from _fakes import FakeTime
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from autopilot_segments import (
    APIConnectionError,
    AutopilotClient,
    BadRequestError,
    RateLimitError,
    ServerError,
)
from autopilot_segments.sandbox import Sandbox

KEY = "0123456789abcdef0123456789abcdef"


def _sequence(*responses: Response) -> Callable[[Request], Response]:
    """A handler answering with `responses` in order, then repeating the last one."""
    queue = list(responses)

    def handler(_request: Request) -> Response:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return handler


def _json(status: int, body: str = "{}", headers: dict[str, str] | None = None) -> Response:
    return Response(body, status=status, headers=headers, content_type="application/json")


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(now=50.0)


def _client(url: str, fake: FakeTime, key: str = KEY, **options: float) -> AutopilotClient:
    settings: dict[str, float] = {"requests_per_second": 1000, "backoff_factor": 0.5, **options}
    return AutopilotClient(key, base_url=url, clock=fake.clock, sleep=fake.sleep, **settings)  # type: ignore[arg-type]


@pytest.fixture
def http_client(httpserver: HTTPServer, fake: FakeTime) -> Iterator[AutopilotClient]:
    with _client(httpserver.url_for("/v1"), fake) as client:
        yield client


LISTS = '{"lists": [{"list_id": "contactlist_1", "title": "VIP"}]}'


def test_429_then_success(http_client: AutopilotClient, httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(429, '{"error": "Too Many Requests", "message": "slow down"}'), _json(200, LISTS))
    )
    assert [lst.title for lst in http_client.lists()] == ["VIP"]
    assert len(httpserver.log) == 2
    stats = http_client.stats
    assert (stats.requests, stats.retries, stats.rate_limited) == (2, 1, 1)
    assert http_client.limiter.effective_rate < 1000  # the whole client slowed down


def test_503_then_success_with_exponential_backoff(
    http_client: AutopilotClient, httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(503), _json(503), _json(502), _json(200, LISTS))
    )
    assert len(http_client.lists()) == 1
    assert http_client.stats.retries == 3
    assert http_client.stats.rate_limited == 0
    backoffs = [s for s in fake.sleeps if s > 0.01]
    # factor 0.5: between half and all of 0.5, 1.0, 2.0
    assert len(backoffs) == 3
    for sleep, ceiling in zip(backoffs, [0.5, 1.0, 2.0], strict=True):
        assert ceiling / 2 <= sleep <= ceiling


def test_retry_after_is_honoured(
    http_client: AutopilotClient, httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(429, headers={"Retry-After": "3"}), _json(200, LISTS))
    )
    start = fake.now
    http_client.lists()
    assert fake.sleeps[0] == 3.0
    assert fake.now - start == pytest.approx(3.0)  # and the limiter did not add a second pause


def test_retry_after_is_capped(httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(503, headers={"Retry-After": "1000"}), _json(200, LISTS))
    )
    with _client(httpserver.url_for("/v1"), fake, max_retry_after=2.0) as client:
        client.lists()
    assert max(fake.sleeps) == 2.0


def test_an_http_date_retry_after_is_understood_and_capped(httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(429, headers={"Retry-After": "Fri, 31 Dec 2100 23:59:59 GMT"}), _json(200, LISTS))
    )
    with _client(httpserver.url_for("/v1"), fake, max_retry_after=7.0) as client:
        client.lists()
    assert fake.sleeps[0] == 7.0
    assert client.limiter.effective_rate < 1000


def test_a_garbled_retry_after_falls_back_to_backoff(
    http_client: AutopilotClient, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_handler(
        _sequence(_json(429, headers={"Retry-After": "soon-ish"}), _json(200, LISTS))
    )
    assert len(http_client.lists()) == 1


def test_exhausted_retries_give_a_typed_error_that_keeps_the_body(
    httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_data(
        '{"error": "Service Unavailable", "message": "down for maintenance"}', status=503
    )
    with _client(httpserver.url_for("/v1"), fake, max_retries=3) as client:
        with pytest.raises(ServerError) as info:
            client.lists()
        assert info.value.status == 503
        assert info.value.message == "down for maintenance"
        assert "maintenance" in info.value.body
        assert len(httpserver.log) == 4
        assert client.stats.retries == 3
        assert client.stats.requests == 4


def test_exhausted_429_is_a_rate_limit_error_counted_once_per_answer(
    httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_request("/v1/lists").respond_with_data('{"message": "slow"}', status=429)
    with _client(httpserver.url_for("/v1"), fake, max_retries=2) as client:
        with pytest.raises(RateLimitError):
            client.lists()
        assert len(httpserver.log) == 3
        assert client.stats.rate_limited == 3
        assert client.stats.retries == 2


def test_zero_retries_means_one_attempt(httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/v1/lists").respond_with_data("", status=500)
    with _client(httpserver.url_for("/v1"), fake, max_retries=0) as client, pytest.raises(ServerError):
        client.lists()
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
def test_other_4xx_are_never_retried(
    http_client: AutopilotClient, httpserver: HTTPServer, status: int
) -> None:
    httpserver.expect_request("/v1/contacts").respond_with_data(
        '{"message": "no"}', status=status, headers={"Retry-After": "1"}
    )
    with pytest.raises(Exception) as info:
        http_client.upsert_contacts([{"Email": "a@example.com"}])
    assert getattr(info.value, "status", None) == status
    assert len(httpserver.log) == 1
    assert http_client.stats.retries == 0


def test_a_400_is_not_retried(http_client: AutopilotClient, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/lists").respond_with_json({"message": "bad"}, status=400)
    with pytest.raises(BadRequestError):
        http_client.lists()
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.add_to_journey("0001", "a@example.com"), "/v1/trigger/0001/contact/a@example.com"),
        (lambda c: c.create_list("VIP"), "/v1/list"),
        (lambda c: c.register_hook("contact_added", "https://example.com/h"), "/v1/hook"),
    ],
)
def test_unsafe_posts_are_not_retried_on_a_5xx(
    http_client: AutopilotClient,
    httpserver: HTTPServer,
    call: Callable[[AutopilotClient], object],
    path: str,
) -> None:
    httpserver.expect_request(path, method="POST").respond_with_data("", status=503)
    with pytest.raises(ServerError):
        call(http_client)
    assert len(httpserver.log) == 1
    assert http_client.stats.retries == 0


@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        (lambda c: c.upsert_contact({"Email": "a@example.com"}), "/v1/contact", '{"contact_id": "person_1"}'),
        (
            lambda c: c.upsert_contacts([{"Email": "a@example.com"}]),
            "/v1/contacts",
            '{"contact_ids": ["person_1"], "email_contact_map": {"a@example.com": "person_1"}}',
        ),
        (lambda c: c.add_to_list("L", "a@example.com"), "/v1/list/L/contact/a@example.com", "{}"),
        (lambda c: c.unsubscribe("a@example.com"), "/v1/contact/a@example.com/unsubscribe", ""),
    ],
)
def test_replay_safe_posts_are_retried(
    http_client: AutopilotClient,
    httpserver: HTTPServer,
    call: Callable[[AutopilotClient], object],
    path: str,
    answer: str,
) -> None:
    httpserver.expect_request(path, method="POST").respond_with_handler(
        _sequence(_json(503), _json(200, answer))
    )
    call(http_client)
    assert len(httpserver.log) == 2


def test_every_retry_takes_a_limiter_slot(httpserver: HTTPServer, fake: FakeTime) -> None:
    # At 1 r/s a retry must wait for the window even though the backoff alone would be shorter.
    httpserver.expect_request("/v1/lists").respond_with_handler(_sequence(_json(500), _json(200, LISTS)))
    with _client(httpserver.url_for("/v1"), fake, requests_per_second=1, backoff_factor=0.1) as client:
        start = fake.now
        client.lists()
        assert fake.now - start >= 1.0
        assert client.stats.requests == 2


# -- against the sandbox's fault injection ----------------------------------------------------------


@pytest.fixture
def sandbox_client(autopilot_sandbox: Sandbox, fake: FakeTime) -> Iterator[AutopilotClient]:
    with _client(autopilot_sandbox.url, fake, key=autopilot_sandbox.api_key) as client:
        yield client


def test_upserts_are_replayed_after_a_dropped_connection(
    sandbox_client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    autopilot_sandbox.inject("drop_after", method="POST", path_prefix="/contacts")
    result = sandbox_client.upsert_contacts([{"Email": "a@example.com"}, {"Email": "b@example.com"}])
    assert result.missing == ()
    assert sandbox_client.stats.retries == 1
    # the first attempt was applied before the connection dropped; the replay is harmless
    assert autopilot_sandbox.upsert_counts["a@example.com"] == 2
    assert set(autopilot_sandbox.contacts) == {"a@example.com", "b@example.com"}


def test_add_to_journey_is_not_replayed_after_a_dropped_connection(
    sandbox_client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    trigger_id = autopilot_sandbox.add_trigger("Welcome")
    autopilot_sandbox.add_contacts([{"Email": "a@example.com"}])
    autopilot_sandbox.inject("drop_after", method="POST", path_prefix="/trigger")
    with pytest.raises(APIConnectionError):
        sandbox_client.add_to_journey(trigger_id, "a@example.com")
    assert autopilot_sandbox.journey_entries(trigger_id) == ["a@example.com"]  # once, not twice
    assert sandbox_client.stats.retries == 0


def test_reads_are_retried_after_a_connection_dropped_before_the_answer(
    sandbox_client: AutopilotClient, autopilot_sandbox: Sandbox
) -> None:
    autopilot_sandbox.inject("drop_before", method="GET", path_prefix="/lists")
    assert sandbox_client.lists() == []
    assert sandbox_client.stats.retries == 1


@pytest.mark.parametrize("kind", ["500", "502", "503", "429"])
def test_sandbox_faults_are_retried_for_list_membership(
    sandbox_client: AutopilotClient, autopilot_sandbox: Sandbox, kind: str
) -> None:
    list_id = autopilot_sandbox.create_list("VIP")
    autopilot_sandbox.add_contacts([{"Email": "a@example.com"}])
    autopilot_sandbox.inject(kind, times=2, path_prefix="/list/")
    assert sandbox_client.add_to_list(list_id, "a@example.com") is True
    autopilot_sandbox.inject(kind, times=1, path_prefix="/list/")
    assert sandbox_client.remove_from_list(list_id, "a@example.com") is True
    assert sandbox_client.stats.retries == 3
    assert sandbox_client.stats.rate_limited == (3 if kind == "429" else 0)


def test_the_sandbox_rate_limit_is_survived(fake: FakeTime) -> None:
    # The sandbox allows 2 r/s and the client is told 1000: 429s come back, the retries get through.
    with Sandbox(rate_limit=2, retry_after=0.05) as sb:
        real_client = AutopilotClient(sb.api_key, base_url=sb.url, requests_per_second=1000, max_retries=10)
        with real_client:
            for _ in range(4):
                assert real_client.lists() == []
            assert real_client.stats.rate_limited >= 1
            assert real_client.stats.retries >= real_client.stats.rate_limited


def test_an_upsert_whose_answer_timed_out_is_replayed(autopilot_sandbox: Sandbox, fake: FakeTime) -> None:
    # Upserts are idempotent by email (the reference): a read timeout is retried, and the replay is harmless.
    autopilot_sandbox.inject("delay:0.3", method="POST", path_prefix="/contacts")
    with AutopilotClient(
        autopilot_sandbox.api_key,
        base_url=autopilot_sandbox.url,
        timeout=(2.0, 0.1),
        max_retries=1,
        requests_per_second=1000,
        clock=fake.clock,
        sleep=fake.sleep,
    ) as client:
        result = client.upsert_contacts([{"Email": "a@example.com"}])
        assert result.missing == ()
        assert client.stats.retries == 1
    assert autopilot_sandbox.upsert_counts["a@example.com"] == 2
    assert len(autopilot_sandbox.requests) == 2


def test_after_a_429_the_next_call_of_any_kind_waits_too(httpserver: HTTPServer, fake: FakeTime) -> None:
    # The pause belongs to the client, not to the request that met the 429: a call to another endpoint,
    # made after the 429 came back to the caller, still waits out the server's Retry-After.
    httpserver.expect_request("/v1/lists").respond_with_data(
        '{"message": "slow down"}', status=429, headers={"Retry-After": "4"}
    )
    httpserver.expect_request("/v1/account").respond_with_json({})
    with _client(httpserver.url_for("/v1"), fake, max_retries=0) as client:
        with pytest.raises(RateLimitError):
            client.lists()
        answered_at = fake.now
        client.account()
        assert fake.now - answered_at >= 4.0
        assert client.limiter.effective_rate < 1000
