"""The sandbox's switches over real HTTP: rate limit, latency, error styles, faults (scripted and seeded)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from autopilot_segments.sandbox import FaultPlan, Sandbox

TIMEOUT = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def call(
    sb: Sandbox, method: str, path: str, body: Any = None, *, timeout: Any = TIMEOUT
) -> requests.Response:
    headers = {"autopilotapikey": sb.api_key}
    return requests.request(method, sb.url + path, json=body, headers=headers, timeout=timeout)


def upsert(sb: Sandbox, email: str, *, timeout: Any = TIMEOUT) -> requests.Response:
    return call(sb, "POST", "/contact", {"contact": {"Email": email}}, timeout=timeout)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(clock: FakeClock) -> Iterator[Sandbox]:
    with Sandbox(rate_limit=2, clock=clock) as sb:
        yield sb


# -- rate limit ------------------------------------------------------------------------------------
def test_token_bucket_429_has_autopilots_exact_body_and_is_not_applied(
    limited: Sandbox, clock: FakeClock
) -> None:
    assert upsert(limited, "a@example.com").status_code == 200
    assert upsert(limited, "b@example.com").status_code == 200
    answer = upsert(limited, "c@example.com")
    assert answer.status_code == 429
    assert answer.json() == {
        "error": "Too Many Requests",
        "message": "You have exceeded your request rate of 2 r/s.",
    }
    assert "Retry-After" not in answer.headers
    assert "c@example.com" not in limited.contacts
    assert limited.requests[-1].applied is False
    clock.now += 0.5  # one token back at 2 r/s
    assert upsert(limited, "c@example.com").status_code == 200
    assert upsert(limited, "d@example.com").status_code == 429


def test_auth_is_checked_before_the_rate_limit(limited: Sandbox) -> None:
    upsert(limited, "a@example.com")
    upsert(limited, "b@example.com")
    wrong = requests.get(limited.url + "/account", headers={"autopilotapikey": "f" * 32}, timeout=TIMEOUT)
    assert wrong.status_code == 401
    missing = requests.get(limited.url + "/account", timeout=TIMEOUT)
    assert missing.status_code == 400


def test_retry_after_header_when_configured(limited: Sandbox) -> None:
    limited.configure(retry_after=1.5)
    answers = [call(limited, "GET", "/account") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "1.5"
    limited.configure(retry_after=3)
    assert call(limited, "GET", "/account").headers["Retry-After"] == "3"


def test_rate_limit_can_be_changed_and_removed_at_runtime(limited: Sandbox) -> None:
    limited.configure(rate_limit=None)
    assert all(call(limited, "GET", "/account").status_code == 200 for _ in range(5))
    limited.configure(rate_limit=0.5)  # burst max(1, rate) = 1
    assert [call(limited, "GET", "/account").status_code for _ in range(2)] == [200, 429]
    assert "0.5 r/s" in call(limited, "GET", "/account").json()["message"]


def test_rate_limit_with_the_real_clock() -> None:
    with Sandbox(rate_limit=5) as sb:
        statuses = [call(sb, "GET", "/account").status_code for _ in range(10)]
    assert statuses[:5] == [200] * 5  # the burst
    assert 429 in statuses  # 10 requests would need over a second to stay under 5 r/s


# -- latency and concurrency -----------------------------------------------------------------------
def test_latency_holds_each_request() -> None:
    with Sandbox(latency=0.15) as sb:
        started = time.monotonic()
        assert call(sb, "GET", "/account").status_code == 200
        assert time.monotonic() - started >= 0.15


def test_requests_are_served_concurrently_with_latency() -> None:
    in_flight = 8
    barrier = threading.Barrier(in_flight, timeout=5)

    def sleep_until_all_arrived(_seconds: float) -> None:
        barrier.wait()  # only returns once `in_flight` requests are held at the same time

    with Sandbox(latency=0.25, sleep=sleep_until_all_arrived) as sb:
        results: list[int] = []

        def worker(n: int) -> None:
            results.append(upsert(sb, f"w{n}@example.com").status_code)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(in_flight)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
    assert results == [200] * in_flight
    assert not barrier.broken


# -- error styles and other switches ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("style", "content_type", "check"),
    [
        (
            "json",
            "application/json",
            lambda r: r.json() == {"error": "Not Found", "message": "Contact could not be found."},
        ),
        (
            "code",
            "application/json",
            lambda r: r.json() == {"code": 404, "message": "Contact could not be found."},
        ),
        ("empty", None, lambda r: r.content == b""),
        ("html", "text/html", lambda r: "<html>" in r.text and "Contact could not be found." in r.text),
    ],
)
def test_error_styles(style: str, content_type: str | None, check: Any) -> None:
    with Sandbox(error_style=style) as sb:  # type: ignore[arg-type]
        answer = call(sb, "GET", "/contact/none%40example.com")
        assert answer.status_code == 404
        assert check(answer)
        if content_type:
            assert answer.headers["Content-Type"].startswith(content_type)
        assert int(answer.headers["Content-Length"]) == len(answer.content)
        wrong = requests.get(sb.url + "/account", headers={"autopilotapikey": "x"}, timeout=TIMEOUT)
        assert wrong.status_code == 401


@pytest.mark.parametrize("status", [200, 204])
def test_delete_status(status: int) -> None:
    with Sandbox(delete_status=status) as sb:  # type: ignore[arg-type]
        upsert(sb, "d@example.com")
        answer = call(sb, "DELETE", "/contact/d%40example.com")
        assert answer.status_code == status
        assert (answer.content == b"") == (status == 204)
        assert sb.contacts == {}


def test_configure_rejects_unknown_switches_and_bad_values(autopilot_sandbox: Sandbox) -> None:
    with pytest.raises(TypeError, match="bogus"):
        autopilot_sandbox.configure(bogus=1)
    for switch, value in [
        ("bulk_invalid", "maybe"),
        ("delete_status", 202),
        ("rate_limit", 0),
        ("latency", -1),
        ("error_style", "xml"),
    ]:
        with pytest.raises(ValueError, match=switch):
            autopilot_sandbox.configure(**{switch: value})
    assert autopilot_sandbox.settings.bulk_invalid == "reject"
    with pytest.raises(ValueError):
        Sandbox(hook_style="newest")  # type: ignore[arg-type]


def test_responses_are_http_1_1_keep_alive(autopilot_sandbox: Sandbox) -> None:
    session = requests.Session()
    for _ in range(3):
        answer = session.get(
            autopilot_sandbox.url + "/account",
            headers={"autopilotapikey": autopilot_sandbox.api_key},
            timeout=5,
        )
        assert answer.raw.version == 11
        assert answer.headers.get("Connection", "").lower() != "close"


# -- scripted faults ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_error_faults_answer_an_error_body_and_do_not_apply(
    autopilot_sandbox: Sandbox, kind: str
) -> None:
    autopilot_sandbox.inject(kind)
    answer = upsert(autopilot_sandbox, "f@example.com")
    assert answer.status_code == int(kind)
    assert set(answer.json()) == {"error", "message"}
    assert autopilot_sandbox.contacts == {}
    recorded = autopilot_sandbox.requests[-1]
    assert (recorded.status, recorded.applied, recorded.fault) == (int(kind), False, kind)
    assert upsert(autopilot_sandbox, "f@example.com").status_code == 200


def test_429_fault_uses_the_rate_limit_body(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("429", times=2)
    answers = [upsert(autopilot_sandbox, "f@example.com") for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].json() == {
        "error": "Too Many Requests",
        "message": "You have exceeded your request rate of 5 r/s.",
    }
    assert autopilot_sandbox.upsert_counts["f@example.com"] == 1


def test_drop_before_closes_without_applying(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("drop_before")
    with pytest.raises(requests.ConnectionError):
        upsert(autopilot_sandbox, "gone@example.com")
    assert autopilot_sandbox.contacts == {}
    recorded = autopilot_sandbox.requests[-1]
    assert (recorded.status, recorded.applied, recorded.fault) == (None, False, "drop_before")


def test_drop_after_applies_then_closes_without_answering(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("drop_after")
    with pytest.raises(requests.ConnectionError):
        call(autopilot_sandbox, "POST", "/contacts", {"contacts": [{"Email": "kept@example.com"}]})
    assert set(autopilot_sandbox.contacts) == {"kept@example.com"}
    assert autopilot_sandbox.upsert_counts["kept@example.com"] == 1
    recorded = autopilot_sandbox.requests[-1]
    assert (recorded.status, recorded.applied, recorded.fault) == (None, True, "drop_after")


def test_delay_fault_outlives_a_read_timeout_but_is_applied(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("delay:0.5")
    with pytest.raises(requests.ReadTimeout):
        upsert(autopilot_sandbox, "slow@example.com", timeout=(2, 0.1))
    deadline = time.monotonic() + 3
    while autopilot_sandbox.requests[-1].status is None and time.monotonic() < deadline:
        time.sleep(0.02)
    recorded = autopilot_sandbox.requests[-1]
    assert (recorded.status, recorded.applied, recorded.fault) == (200, True, "delay:0.5")
    assert "slow@example.com" in autopilot_sandbox.contacts


def test_delay_fault_then_answers_normally(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("delay:0.2")
    started = time.monotonic()
    assert call(autopilot_sandbox, "GET", "/account").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_inject_filters_by_method_and_path_prefix(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("503", method="post", path_prefix="/contacts")
    assert call(autopilot_sandbox, "GET", "/contacts").status_code == 200
    assert upsert(autopilot_sandbox, "x@example.com").status_code == 200  # POST /contact: no match
    assert autopilot_sandbox.pending_faults == 1
    assert (
        call(autopilot_sandbox, "POST", "/contacts", {"contacts": [{"Email": "y@example.com"}]}).status_code
        == 503
    )
    assert autopilot_sandbox.pending_faults == 0


def test_inject_rejects_unknown_kinds(autopilot_sandbox: Sandbox) -> None:
    for kind in ("404", "drop", "delay:", "delay:soon", "delay:-1"):
        with pytest.raises(ValueError, match="fault kind"):
            autopilot_sandbox.inject(kind)
    with pytest.raises(ValueError):
        autopilot_sandbox.inject("500", times=0)


def test_faults_apply_only_to_authenticated_requests(autopilot_sandbox: Sandbox) -> None:
    autopilot_sandbox.inject("500")
    assert requests.get(autopilot_sandbox.url + "/account", timeout=TIMEOUT).status_code == 400
    assert call(autopilot_sandbox, "GET", "/account").status_code == 500


# -- seeded fault plans ------------------------------------------------------------------------------
def _statuses(plan: FaultPlan, count: int = 40) -> list[int | None]:
    with Sandbox(faults=plan) as sb:
        session = requests.Session()
        for n in range(count):
            try:
                session.post(
                    sb.url + "/contact",
                    json={"contact": {"Email": f"p{n}@example.com"}},
                    headers={"autopilotapikey": sb.api_key},
                    timeout=TIMEOUT,
                )
            except requests.ConnectionError:
                session = requests.Session()
        recorded = sb.requests
        assert len(recorded) == count
        applied = {r.body["contact"]["Email"] for r in recorded if r.applied}
        assert applied == set(sb.contacts)
        return [r.status for r in recorded]


def test_fault_plan_is_deterministic_for_a_seed() -> None:
    plan = FaultPlan(rate=0.5, seed=7)
    first = _statuses(plan)
    assert first == _statuses(plan)
    assert {s for s in first if s is not None} - {200} <= {500, 502, 503, 429}
    assert 200 in first
    assert any(s != 200 for s in first)
    assert _statuses(FaultPlan(rate=0.5, seed=8)) != first


def test_configuring_a_plan_restarts_its_rng(autopilot_sandbox: Sandbox) -> None:
    plan = FaultPlan(rate=0.5, kinds=("500", "503"), seed=3)
    runs = []
    for _ in range(2):
        autopilot_sandbox.configure(faults=plan)
        runs.append([call(autopilot_sandbox, "GET", "/account").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500, 503}


def test_fault_plan_rates_zero_and_one() -> None:
    assert _statuses(FaultPlan(rate=0.0), 10) == [200] * 10
    assert _statuses(FaultPlan(rate=1.0, kinds=("503",)), 10) == [503] * 10


def test_fault_plan_filters_by_method_and_path_prefix() -> None:
    plan = FaultPlan(rate=1.0, kinds=("502",), methods=("post",), path_prefix="/contacts")
    with Sandbox(faults=plan) as sb:
        assert call(sb, "GET", "/contacts").status_code == 200
        assert upsert(sb, "a@example.com").status_code == 200
        assert call(sb, "POST", "/contacts", {"contacts": [{"Email": "b@example.com"}]}).status_code == 502
        sb.configure(faults=None)
        assert call(sb, "POST", "/contacts", {"contacts": [{"Email": "b@example.com"}]}).status_code == 200


def test_fault_plan_validation() -> None:
    with pytest.raises(ValueError):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError):
        FaultPlan(kinds=())
    with pytest.raises(ValueError):
        FaultPlan(kinds=("500", "teapot"))
    assert FaultPlan(kinds=["delay:0.1"]).kinds == ("delay:0.1",)
