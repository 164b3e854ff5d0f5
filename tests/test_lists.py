"""The segment's list: created despite transient answers, matched case-insensitively after trimming."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _exporting import make_client, make_mapping
from _fakes import FakeTime

from autopilot_segments import ConfigurationError, Exporter, ExportReport, RateLimitError, ServerError
from autopilot_segments.sandbox import Sandbox

SEGMENT = "VIP customers"


def rows(n: int) -> list[dict[str, Any]]:
    return [{"Email": f"user{i}@example.com", "first_name": f"First{i}", "tier": i} for i in range(n)]


def list_calls(sb: Sandbox) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path, r.status) for r in sb.requests if r.path in ("/list", "/lists")]


def export(sb: Sandbox, segment: str = SEGMENT, *, state: Path | None = None, **client: Any) -> ExportReport:
    if "sleep" not in client:  # a 429 pauses the client's limiter: on a fake clock, nothing really waits
        time = FakeTime()
        client.update(clock=time.clock, sleep=time.sleep)
    return Exporter(make_client(sb, **client), make_mapping(), state=state).export(rows(10), segment=segment)


# -- 1. creating the list survives transient answers --------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "503", "drop_before"])
@pytest.mark.parametrize("stateful", [False, True])
def test_a_transient_answer_to_the_create_is_retried_after_a_re_read(
    kind: str, stateful: bool, tmp_path: Path
) -> None:
    with Sandbox() as sb:
        sb.inject(kind, times=2, method="POST", path_prefix="/list")
        report = export(sb, state=tmp_path / "s.db" if stateful else None)
        titled = [list_id for list_id, title in sb.lists if title == SEGMENT]
        assert titled == [report.list_id]
        assert report.list_created
        assert report.exported == 10
        assert sb.list_members(titled[0]) == {f"user{i}@example.com" for i in range(10)}
        creates = [c for c in list_calls(sb) if c[0] == "POST"]
        assert len(creates) == 3  # two transient answers, then the list
        # Every failed create was followed by a re-read proving nothing was made before the next try.
        calls = list_calls(sb)
        for at, call in enumerate(calls):
            if call[0] == "POST" and call[2] != 200:
                assert calls[at + 1][:2] == ("GET", "/lists")


@pytest.mark.parametrize("duplicate_list", ["conflict", "create"])
def test_a_create_applied_but_unanswered_is_reconciled_not_repeated(duplicate_list: Any) -> None:
    with Sandbox(duplicate_list=duplicate_list) as sb:
        sb.inject("drop_after", times=1, method="POST", path_prefix="/list")
        report = export(sb)
        assert [t for _, t in sb.lists] == [SEGMENT]
        assert [c[0] for c in list_calls(sb)] == ["GET", "POST", "GET"]
        assert "had been created" in report.list_note


def test_a_429_waits_as_long_as_retry_after_says_and_nothing_more() -> None:
    time = FakeTime()
    with Sandbox(retry_after=2) as sb:
        sb.inject("429", times=1, method="POST", path_prefix="/list")
        report = export(sb, clock=time.clock, sleep=time.sleep, backoff_factor=0.5)
        assert report.list_created
        waits = [s for s in time.sleeps if s > 0.01]
        assert len(waits) == 1  # the limiter's pause for Retry-After; no backoff on top of it
        assert 1.9 <= waits[0] <= 2.0


def test_server_errors_back_off_exponentially_with_the_injected_sleep() -> None:
    time = FakeTime()
    with Sandbox() as sb:
        sb.inject("503", times=3, method="POST", path_prefix="/list")
        report = export(sb, clock=time.clock, sleep=time.sleep, backoff_factor=0.5)
        assert report.list_created
        assert [s for s in time.sleeps if s > 0.01] == [0.5, 1.0, 2.0]


@pytest.mark.parametrize(("kind", "error"), [("503", ServerError), ("429", RateLimitError)])
def test_the_create_gives_up_after_max_retries(kind: str, error: type[Exception]) -> None:
    with Sandbox() as sb:
        sb.inject(kind, times=10, method="POST", path_prefix="/list")
        with pytest.raises(error):
            export(sb, max_retries=2)
        assert sb.lists == []
        assert len([c for c in list_calls(sb) if c[0] == "POST"]) == 3  # the first try and 2 retries
        assert not [r for r in sb.requests if r.path == "/contacts"]


# -- 2. segment names vs existing lists --------------------------------------------------------------


@pytest.mark.parametrize("duplicate_list", ["conflict", "create"])
@pytest.mark.parametrize("stateful", [False, True])
def test_a_list_titled_in_another_letter_case_is_the_segment_list(
    duplicate_list: Any, stateful: bool, tmp_path: Path
) -> None:
    with Sandbox(duplicate_list=duplicate_list) as sb:
        existing = sb.create_list("vip Customers")
        report = export(sb, state=tmp_path / "s.db" if stateful else None)
        assert report.list_id == existing
        assert not report.list_created
        assert sb.lists == [(existing, "vip Customers")]
        assert not [c for c in list_calls(sb) if c[0] == "POST"]
        assert "'vip Customers'" in report.list_note
        assert "letter case" in report.list_note
        assert len(sb.list_members(existing)) == 10


@pytest.mark.parametrize("segment", ["VIP customers ", "  VIP customers", "\tvip customers\n"])
def test_surrounding_spaces_never_make_a_look_alike_list(segment: str) -> None:
    with Sandbox(duplicate_list="create") as sb:
        existing = sb.create_list(SEGMENT)
        report = export(sb, segment)
        assert report.list_id == existing
        assert sb.lists == [(existing, SEGMENT)]


def test_a_new_list_is_created_with_the_trimmed_name() -> None:
    with Sandbox() as sb:
        report = export(sb, "  VIP customers  ")
        assert sb.lists == [(report.list_id, SEGMENT)]
        assert "trimmed" in report.list_note


def test_an_exact_title_wins_over_other_letter_cases() -> None:
    with Sandbox() as sb:
        other = sb.create_list("vip customers")
        exact = sb.create_list(SEGMENT)
        report = export(sb)
        assert report.list_id == exact
        assert other in report.list_note
        assert sb.list_members(other) == set()


def test_lists_differing_only_in_case_from_the_name_and_each_other_are_refused(tmp_path: Path) -> None:
    for stateful in (False, True):
        with Sandbox() as sb:
            first, second = sb.create_list("vip customers"), sb.create_list("Vip Customers")
            with pytest.raises(ConfigurationError) as info:
                export(sb, state=tmp_path / "s.db" if stateful else None)
            message = str(info.value)
            for named in (first, second, "'vip customers'", "'Vip Customers'"):
                assert named in message
            assert {r.method for r in sb.requests} == {"GET"}  # nothing written


def test_twins_with_the_same_other_case_title_resolve_to_the_lowest_id() -> None:
    with Sandbox() as sb:
        ids = [sb.create_list("vip customers"), sb.create_list("vip customers")]
        report = export(sb)
        assert report.list_id == min(ids)
        assert max(ids) in report.list_note
