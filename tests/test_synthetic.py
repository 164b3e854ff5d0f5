"""The synthetic profile generator and the sample segment it made."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autopilot_segments._synthetic import COLUMNS, INVALID_EMAIL_SHAPES, generate_rows, main, write_csv
from autopilot_segments.sources import read_csv, sample_segment_path

# Strict: lower-case ASCII dot-atom local part, dot-separated domain labels, alphabetic TLD of 2+ letters.
_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
STRICT_EMAIL = re.compile(rf"^{_ATOM}(\.{_ATOM})*@([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{{2,}}$")


def classify(rows: list[dict[str, Any]]) -> Counter[str]:
    """Count rows by email outcome, plus rows whose loyalty_points is not an int."""
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    for row in rows:
        email = row["email"]
        if email is None:
            counts["missing"] += 1
        elif not STRICT_EMAIL.match(email):
            counts["invalid"] += 1
        elif email in seen:
            counts["duplicate"] += 1
        else:
            seen.add(email)
            counts["valid"] += 1
        if not isinstance(row["loyalty_points"], int):
            counts["bad_value"] += 1
    return counts


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    dirty = {"invalid_email_fraction": 0.1, "duplicate_fraction": 0.1, "missing_email_fraction": 0.1}
    first = list(generate_rows(2000, seed=7, bad_value_fraction=0.1, **dirty))
    again = list(generate_rows(2000, seed=7, bad_value_fraction=0.1, **dirty))
    other = list(generate_rows(2000, seed=8, bad_value_fraction=0.1, **dirty))
    assert first == again
    assert sum(a != b for a, b in zip(first, other, strict=True)) > 1900


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    n=st.integers(min_value=0, max_value=300),
    k=st.integers(min_value=0, max_value=300),
    fractions=st.tuples(*[st.floats(min_value=0, max_value=0.25)] * 4),
)
def test_a_shorter_run_is_a_prefix_of_a_longer_one(
    seed: int, n: int, k: int, fractions: tuple[float, float, float, float]
) -> None:
    invalid, duplicate, missing, bad = fractions
    kwargs = {
        "seed": seed,
        "invalid_email_fraction": invalid,
        "duplicate_fraction": duplicate,
        "missing_email_fraction": missing,
        "bad_value_fraction": bad,
    }
    longer = list(generate_rows(n + k, **kwargs))
    assert len(longer) == n + k
    assert list(generate_rows(n, **kwargs)) == longer[:n]
    assert all(tuple(row) == COLUMNS for row in longer)


def test_clean_rows_are_all_valid_unique_and_well_typed() -> None:
    rows = list(generate_rows(20_000, seed=1))
    assert classify(rows) == Counter(valid=20_000)
    for row in rows[:2000]:
        assert row["email"].isascii()
        assert row["email"] == row["email"].lower()
        assert re.search(r"@([a-z]+\.)?example\.(com|org|net)$", row["email"])  # RFC 2606 domains only
        assert type(row["loyalty_points"]) is int
        assert row["loyalty_points"] >= 0
        assert dt.date.fromisoformat(row["signup_date"]) >= dt.date(2015, 1, 1)
        assert row["vip"] in ("yes", "no")
        assert row["phone"].startswith("+")
        assert all(isinstance(row[c], str) and row[c] for c in ("first_name", "last_name", "company", "city"))


def test_names_include_non_ascii_spellings() -> None:
    names = {row["first_name"] for row in generate_rows(5000)} | {
        row["last_name"] for row in generate_rows(5000)
    }
    assert {"Zoë", "José", "Łukasz", "山田"} <= names


def test_fractions_are_roughly_honoured() -> None:
    n = 40_000
    rows = list(
        generate_rows(
            n,
            seed=11,
            invalid_email_fraction=0.05,
            duplicate_fraction=0.04,
            missing_email_fraction=0.03,
            bad_value_fraction=0.02,
        )
    )
    counts = classify(rows)
    assert counts["valid"] + counts["invalid"] + counts["duplicate"] + counts["missing"] == n
    for key, fraction in (("invalid", 0.05), ("duplicate", 0.04), ("missing", 0.03), ("bad_value", 0.02)):
        assert abs(counts[key] / n - fraction) < fraction * 0.15, (key, counts[key])


def test_duplicates_repeat_recent_valid_emails() -> None:
    rows = list(generate_rows(5000, seed=4, duplicate_fraction=0.2))
    first_seen: dict[str, int] = {}
    gaps = []
    for i, row in enumerate(rows):
        if row["email"] in first_seen:
            gaps.append(i - first_seen[row["email"]])
        else:
            first_seen[row["email"]] = i
    assert len(gaps) > 800
    assert max(gaps) < 1000  # copied from a small ring of recent emails, not from all history


def test_every_invalid_shape_fails_strict_validation() -> None:
    for shape in INVALID_EMAIL_SHAPES:
        email = shape.format("olivia.smith12", "mail.example.com")
        assert not STRICT_EMAIL.match(email), email
    invalid = [row["email"] for row in generate_rows(3000, seed=2, invalid_email_fraction=1.0)]
    assert not any(STRICT_EMAIL.match(email) for email in invalid)
    assert len(set(invalid)) == len(invalid)  # invalid emails never duplicate each other


def test_bad_values_are_not_integers() -> None:
    values = [row["loyalty_points"] for row in generate_rows(2000, seed=5, bad_value_fraction=1.0)]
    assert all(isinstance(v, str) and not v.strip().lstrip("-").isdigit() for v in values)


def test_memory_stays_constant_however_many_rows() -> None:
    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate_rows(n, duplicate_fraction=0.1, invalid_email_fraction=0.1):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(20_000)
    assert large < 100_000
    assert large < small * 1.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": -1},
        {"n": 1, "invalid_email_fraction": 1.5},
        {"n": 1, "bad_value_fraction": -0.1},
        {"n": 1, "invalid_email_fraction": 0.5, "duplicate_fraction": 0.4, "missing_email_fraction": 0.2},
    ],
)
def test_bad_arguments_are_rejected_at_the_call(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_rows(**kwargs)


def test_write_csv_and_command_line_round_trip(tmp_path: Path) -> None:
    rows = list(generate_rows(50, seed=9, missing_email_fraction=0.2))
    assert write_csv(tmp_path / "a.csv", rows) == 50
    assert (
        main([str(tmp_path / "b.csv"), "--rows", "50", "--seed", "9", "--missing-email-fraction", "0.2"]) == 0
    )
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    back = list(read_csv(tmp_path / "a.csv"))
    assert [r["email"] for r in back] == [r["email"] for r in rows]
    assert [r["loyalty_points"] for r in back] == [str(r["loyalty_points"]) for r in rows]


def test_sample_segment_is_reproducible_and_matches_its_readme(tmp_path: Path) -> None:
    rebuilt = tmp_path / "sample.csv"
    arguments = {
        "seed": 2024,
        "invalid_email_fraction": 0.03,
        "duplicate_fraction": 0.02,
        "missing_email_fraction": 0.01,
        "bad_value_fraction": 0.01,
    }
    write_csv(rebuilt, generate_rows(3000, **arguments))
    assert rebuilt.read_bytes() == sample_segment_path().read_bytes()

    rows = [
        dict(row, loyalty_points=int(row["loyalty_points"]) if row["loyalty_points"].isdigit() else "bad")
        for row in read_csv(sample_segment_path())
    ]
    counts = classify(rows)
    # The numbers stated in autopilot_segments/data/README.md.
    assert counts == Counter(valid=2847, invalid=73, duplicate=57, missing=23, bad_value=27)
    assert sum(row["vip"] == "yes" for row in rows) == 384
    readme = (sample_segment_path().parent / "README.md").read_text(encoding="utf-8")
    for figure in ("2,847", "| 73 |", "| 57 |", "| 23 |", "| 27 |", "| 384 |", "2,820"):
        assert figure in readme, figure
    bad_emails = {row["email"] for row in rows if row["loyalty_points"] == "bad"}
    assert all(STRICT_EMAIL.match(email) for email in bad_emails)
    assert sum(row["email"] in bad_emails for row in rows) == 27  # no duplicate repeats a bad-value row


def test_generation_is_a_lazy_stream() -> None:
    rows = generate_rows(10**12)
    assert list(itertools.islice(rows, 3)) == list(generate_rows(3))
