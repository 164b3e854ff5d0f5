"""Batching, halving and bisection bookkeeping: properties over arbitrary inputs (Hypothesis)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments import AuthenticationError, BadRequestError, ServerError
from autopilot_segments._destinations.autopilot.membership import ListMembershipDetector
from autopilot_segments._export.batching import chunked, halves
from autopilot_segments._export.bisection import ExportAborted, send_with_bisection


def letters(number: int) -> str:
    """A number spelt in letters: messages that differ by a number count as the same reason."""
    return "".join(chr(ord("a") + int(digit)) for digit in str(number))


def bad_request(message: str = "Contact is invalid") -> BadRequestError:
    return BadRequestError(status=400, method="POST", url="http://127.0.0.1/v1/contacts", message=message)


@given(st.lists(st.integers()), st.integers(min_value=1, max_value=120))
def test_chunked_keeps_order_and_sizes(items: list[int], size: int) -> None:
    chunks = list(chunked(items, size))
    assert [x for chunk in chunks for x in chunk] == items
    assert all(1 <= len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])
    assert len(chunks) == math.ceil(len(items) / size)


def test_chunked_is_lazy() -> None:
    pulled = 0

    def endless() -> Iterator[int]:
        nonlocal pulled
        while True:
            pulled += 1
            yield pulled

    first = next(chunked(endless(), 100))
    assert first == list(range(1, 101))
    assert pulled == 100


def test_chunked_refuses_a_zero_size() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        list(chunked([1], 0))


@given(st.lists(st.integers(), min_size=2))
def test_halves_split_in_two_non_empty_ordered_parts(items: list[int]) -> None:
    left, right = halves(items)
    assert list(left) + list(right) == items
    assert left
    assert right
    assert abs(len(left) - len(right)) <= 1


def test_halves_needs_two_items() -> None:
    with pytest.raises(ValueError, match="two"):
        halves([1])


@given(st.lists(st.booleans(), min_size=1, max_size=100))
def test_bisection_isolates_exactly_the_offenders(flags: list[bool]) -> None:
    items = list(enumerate(flags))  # (position, is_bad)
    calls: list[int] = []

    def send(piece: Sequence[tuple[int, bool]]) -> list[int]:
        calls.append(len(piece))
        bad = [i for i, is_bad in piece if is_bad]
        if bad:
            raise bad_request(f"contact {letters(bad[0])} is invalid")
        return [i for i, _ in piece]

    result = send_with_bisection(items, send)
    accepted = [i for piece, answer in result.accepted for i in answer]
    isolated = [item[0] for item, _ in result.isolated]
    assert sorted(accepted + isolated) == list(range(len(items)))
    assert isolated == [i for i, is_bad in items if is_bad]
    assert all(letters(i) in error.message for (i, _), error in result.isolated)
    assert result.failed == []
    assert result.calls == len(calls)
    # Each offender costs at most two calls per level of the bisection tree.
    levels = math.ceil(math.log2(len(items))) if len(items) > 1 else 0
    assert result.calls <= 1 + 2 * levels * max(1, len(isolated))


@given(st.lists(st.integers(), min_size=1, max_size=100), st.integers(min_value=0, max_value=99))
def test_a_failing_piece_is_recorded_and_the_rest_goes_on(items: list[int], poison_at: int) -> None:
    poison = items[poison_at % len(items)]
    unique = list(dict.fromkeys(items))

    def send(piece: Sequence[int]) -> int:
        if len(piece) > 1 and poison in piece:
            raise bad_request()
        if poison in piece:
            raise ServerError(status=503, method="POST", url="u", message="down")
        return len(piece)

    result = send_with_bisection(unique, send)
    assert [item for piece, _ in result.failed for item in piece] == [poison]
    assert sum(n for _, n in result.accepted) == len(unique) - 1


def test_fatal_errors_propagate_and_stop_is_honoured() -> None:
    def unauthorised(piece: Sequence[int]) -> None:
        raise AuthenticationError(status=401, method="POST", url="u", message="Provided key not valid.")

    with pytest.raises(AuthenticationError):
        send_with_bisection([1, 2, 3], unauthorised)
    with pytest.raises(ExportAborted):
        send_with_bisection([1, 2, 3], lambda piece: None, should_stop=lambda: True)
    assert send_with_bisection([], lambda piece: None).calls == 0


def test_detector_lets_one_check_run_at_a_time() -> None:
    detector = ListMembershipDetector(list_is_new=True, probe_budget=2)
    assert detector.try_claim()
    assert not detector.try_claim()
    verdicts: list[str] = []
    waiter = threading.Thread(target=lambda: verdicts.append(detector.wait_while_checking(timeout=5)))
    waiter.start()
    detector.settle("honoured")
    waiter.join(timeout=5)
    assert verdicts == ["honoured"]
    assert not detector.try_claim()
    assert "honoured" in detector.description


def test_detector_assumes_ignored_when_the_budget_runs_out() -> None:
    detector = ListMembershipDetector(list_is_new=False, probe_budget=2)
    for _ in range(2):
        assert detector.try_claim()
        detector.settle("unknown")
    assert detector.verdict == "ignored"
    assert "unverified" in detector.description
    assert not detector.try_claim()


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=2, max_size=100, unique=True))
def test_a_batch_whose_halves_fail_for_the_same_reason_is_refused_in_three_calls(items: list[int]) -> None:
    def send(piece: Sequence[int]) -> None:
        # Autopilot names the first contact of the request: its position and email differ per piece.
        raise bad_request(f"Contact 1 \"user{piece[0]}@example.com\": custom field 'Tier' is of type string")

    result = send_with_bisection(items, send)
    assert result.calls == 3
    assert result.accepted == []
    assert result.isolated == []
    assert [item for piece, _ in result.refused for item in piece] == items
    (_, message), *_ = [(piece, reason) for piece, reason in result.refused]
    assert "Tier" in message
    assert "@" not in message


@given(st.lists(st.booleans(), min_size=2, max_size=100))
def test_halves_failing_for_different_reasons_are_bisected_further(flags: list[bool]) -> None:
    items = list(enumerate(flags))

    def send(piece: Sequence[tuple[int, bool]]) -> None:
        bad = [i for i, is_bad in piece if is_bad]
        if bad:
            # Names the offending value, in letters (numbers are taken for positions): reasons differ.
            raise bad_request(f"value {letters(bad[0])} is refused")

    result = send_with_bisection(items, send)
    assert result.refused == []
    assert [item[0] for item, _ in result.isolated] == [i for i, is_bad in items if is_bad]


@given(st.lists(st.booleans(), min_size=2, max_size=100))
def test_the_same_reason_for_a_few_offenders_is_bisected_when_it_cannot_concern_all(
    flags: list[bool],
) -> None:
    items = list(enumerate(flags))

    def send(piece: Sequence[tuple[int, bool]]) -> None:
        bad = [i for i, is_bad in piece if is_bad]
        if bad:
            raise bad_request(f"Contact {bad[0]}: custom field 'Tier' is of type string")

    result = send_with_bisection(items, send, concerns_all=lambda piece, reason: all(b for _, b in piece))
    refused = {item[0] for piece, _ in result.refused for item in piece}
    isolated = {item[0] for item, _ in result.isolated}
    assert refused | isolated == {i for i, is_bad in items if is_bad}  # no good item is ever refused
