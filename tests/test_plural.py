"""Counted nouns: singular for exactly one, plural otherwise, numbers with thousands separators."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from autopilot_segments._plural import counted


def test_one_is_singular_and_everything_else_plural() -> None:
    assert counted(1, "row") == "1 row"
    assert counted(0, "row") == "0 rows"
    assert counted(2, "API call") == "2 API calls"
    assert counted(1, "API call") == "1 API call"
    assert counted(3, "retry") == "3 retries"
    assert counted(1, "retry") == "1 retry"
    assert counted(100_000, "leaver") == "100,000 leavers"
    assert counted(2, "person", "people") == "2 people"


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(["row", "API call", "leaver", "retry"]))
def test_the_number_is_formatted_as_elsewhere(n: int, noun: str) -> None:
    text = counted(n, noun)
    assert text.startswith(f"{n:,} ")
    assert text.endswith(noun) == (n == 1)
