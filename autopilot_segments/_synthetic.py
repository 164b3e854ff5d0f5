"""Deterministic synthetic customer profiles for tests, benchmarks, the demo and the bundled sample segment.

`generate_rows(n, seed=...)` yields `n` realistic profile rows in constant memory, fast enough to feed a
million-row benchmark (hundreds of thousands of rows per second). Dirty data is opt-in through fractions:
invalid emails, duplicate emails, missing emails and unparseable `loyalty_points`.

Every valid email is lower-case ASCII (a dot-atom local part) on an RFC 2606 reserved domain
(`example.com`, `example.org`, `example.net` and their subdomains), so a synthetic export can never mail
a real person even if it is pointed at a real account by mistake. Names include non-ASCII spellings
(Zoë, José, Łukasz, 山田) so unicode paths get exercised; their email local parts are ASCII transliterations.

Run `python -m autopilot_segments._synthetic --help` to write a CSV file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

__all__ = ["COLUMNS", "INVALID_EMAIL_SHAPES", "generate_rows", "main", "write_csv"]

COLUMNS: Final[tuple[str, ...]] = (
    "email",
    "first_name",
    "last_name",
    "company",
    "city",
    "country",
    "phone",
    "loyalty_points",
    "signup_date",
    "vip",
)

# (display name, ASCII slug for the email local part). 64 entries each: table lookups use bit masks.
_FIRST_NAMES: Final[tuple[tuple[str, str], ...]] = (
    ("Olivia", "olivia"), ("Liam", "liam"), ("Emma", "emma"), ("Noah", "noah"),
    ("Ava", "ava"), ("Oliver", "oliver"), ("Sophia", "sophia"), ("Elijah", "elijah"),
    ("Isabella", "isabella"), ("James", "james"), ("Mia", "mia"), ("William", "william"),
    ("Amelia", "amelia"), ("Benjamin", "benjamin"), ("Harper", "harper"), ("Lucas", "lucas"),
    ("Zoë", "zoe"), ("José", "jose"), ("Łukasz", "lukasz"), ("Chloé", "chloe"),
    ("Søren", "soren"), ("François", "francois"), ("Björn", "bjorn"), ("Inés", "ines"),
    ("Hiroshi", "hiroshi"), ("花子", "hanako"), ("Priya", "priya"), ("Arjun", "arjun"),
    ("Fatima", "fatima"), ("Omar", "omar"), ("Aisha", "aisha"), ("Mateo", "mateo"),
    ("Charlotte", "charlotte"), ("Henry", "henry"), ("Evelyn", "evelyn"), ("Alexander", "alexander"),
    ("Abigail", "abigail"), ("Daniel", "daniel"), ("Emily", "emily"), ("Michael", "michael"),
    ("Ella", "ella"), ("Sebastian", "sebastian"), ("Grace", "grace"), ("Jack", "jack"),
    ("Hannah", "hannah"), ("Samuel", "samuel"), ("Lily", "lily"), ("David", "david"),
    ("Nora", "nora"), ("Leo", "leo"), ("Anna", "anna"), ("Thomas", "thomas"),
    ("Sara", "sara"), ("Marco", "marco"), ("Giulia", "giulia"), ("Pedro", "pedro"),
    ("Lena", "lena"), ("Jonas", "jonas"), ("Maja", "maja"), ("Kofi", "kofi"),
    ("Ngozi", "ngozi"), ("Wei", "wei"), ("Mei", "mei"), ("Ryan", "ryan"),
)  # fmt: skip
_LAST_NAMES: Final[tuple[tuple[str, str], ...]] = (
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
    ("Jones", "jones"), ("Garcia", "garcia"), ("Miller", "miller"), ("Davis", "davis"),
    ("Rodriguez", "rodriguez"), ("Martinez", "martinez"), ("Hernández", "hernandez"), ("Lopez", "lopez"),
    ("Gonzalez", "gonzalez"), ("Wilson", "wilson"), ("Anderson", "anderson"), ("Thomas", "thomas"),
    ("山田", "yamada"), ("Müller", "mueller"), ("Kowalski", "kowalski"), ("Nowak", "nowak"),
    ("Østergaard", "ostergaard"), ("Dubois", "dubois"), ("Lefèvre", "lefevre"), ("Núñez", "nunez"),
    ("Taylor", "taylor"), ("Moore", "moore"), ("Jackson", "jackson"), ("Martin", "martin"),
    ("Lee", "lee"), ("Perez", "perez"), ("Thompson", "thompson"), ("White", "white"),
    ("Harris", "harris"), ("Sanchez", "sanchez"), ("Clark", "clark"), ("Ramirez", "ramirez"),
    ("Lewis", "lewis"), ("Robinson", "robinson"), ("Walker", "walker"), ("Young", "young"),
    ("Allen", "allen"), ("King", "king"), ("Wright", "wright"), ("Scott", "scott"),
    ("Torres", "torres"), ("Nguyen", "nguyen"), ("Hill", "hill"), ("Flores", "flores"),
    ("Green", "green"), ("Adams", "adams"), ("Nelson", "nelson"), ("Baker", "baker"),
    ("Rossi", "rossi"), ("Schmidt", "schmidt"), ("Fischer", "fischer"), ("Jensen", "jensen"),
    ("O'Brien", "obrien"), ("Patel", "patel"), ("Singh", "singh"), ("Okafor", "okafor"),
    ("Mensah", "mensah"), ("Chen", "chen"), ("Wang", "wang"), ("Kim", "kim"),
)  # fmt: skip
_COMPANIES: Final[tuple[str, ...]] = (
    "Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Hooli", "Stark Industries", "Wayne Enterprises",
    "Wonka Industries", "Soylent", "Cyberdyne", "Tyrell Corp", "Vandelay Industries", "Pied Piper",
    "Dunder Mifflin", "Gringotts", "Monsters Inc", "Oceanic Airlines", "Blue Sun", "Massive Dynamic",
    "Aperture Science", "Black Mesa", "Nakatomi Trading", "Bluth Company", "Prestige Worldwide",
    "Sterling Cooper", "Kaffeehaus Müller", "Café Zoë", "Łódź Logistics", "東京商事", "Los Pollos Hermanos",
    "Strickland Propane", "Los Techies",
)  # fmt: skip
# (city, country, international dialling prefix)
_PLACES: Final[tuple[tuple[str, str, str], ...]] = (
    ("London", "United Kingdom", "+44"), ("Manchester", "United Kingdom", "+44"),
    ("New York", "United States", "+1"), ("San Francisco", "United States", "+1"),
    ("Chicago", "United States", "+1"), ("Austin", "United States", "+1"),
    ("Toronto", "Canada", "+1"), ("Vancouver", "Canada", "+1"),
    ("Sydney", "Australia", "+61"), ("Melbourne", "Australia", "+61"),
    ("Berlin", "Germany", "+49"), ("München", "Germany", "+49"),
    ("Paris", "France", "+33"), ("Lyon", "France", "+33"),
    ("Madrid", "Spain", "+34"), ("Málaga", "Spain", "+34"),
    ("Kraków", "Poland", "+48"), ("Warsaw", "Poland", "+48"),
    ("København", "Denmark", "+45"), ("Stockholm", "Sweden", "+46"),
    ("Amsterdam", "Netherlands", "+31"), ("Dublin", "Ireland", "+353"),
    ("東京", "Japan", "+81"), ("Osaka", "Japan", "+81"),
    ("São Paulo", "Brazil", "+55"), ("Ciudad de México", "Mexico", "+52"),
    ("Lagos", "Nigeria", "+234"), ("Accra", "Ghana", "+233"),
    ("Mumbai", "India", "+91"), ("Bengaluru", "India", "+91"),
    ("Singapore", "Singapore", "+65"), ("Auckland", "New Zealand", "+64"),
)  # fmt: skip
_DOMAINS: Final[tuple[str, ...]] = (
    "example.com", "example.org", "example.net", "mail.example.com",
    "acme.example.com", "globex.example.net", "shop.example.org", "eu.example.com",
)  # fmt: skip
# Shapes that strict validation must reject. `{0}` is a unique ASCII token (so invalid emails are never
# duplicates of each other), `{1}` a reserved domain.
INVALID_EMAIL_SHAPES: Final[tuple[str, ...]] = (
    "{0}.{1}",  # no @ at all
    "{0}@@{1}",  # two @
    "{0}@example",  # domain without a TLD
    "{0} x@{1}",  # space in the local part
    "{0}@.{1}",  # domain starts with a dot
    ".{0}@{1}",  # local part starts with a dot
    "{0}..x@{1}",  # consecutive dots
    "{0}@{1},{0}x@{1}",  # two addresses in one cell
    "{0}@",  # nothing after the @
    "@{0}.{1}",  # nothing before the @
    "zoë.{0}@{1}",  # non-ASCII local part
    "{0}@exa_mple.com",  # underscore in the domain
    "{0}@-{1}",  # domain label starts with a hyphen
    "{0}@{1} (home)",  # a comment after the address
    "{0}(at){1}",  # spelled-out @
    "{0}@{1}>",  # stray bracket from a copied "Name <email>" line
)
_BAD_LOYALTY_VALUES: Final[tuple[str, ...]] = ("lots", "many", "twelve", "12abc", "1.2.3", "N/A!", "--", "∞")

_FIRST_EPOCH: Final = dt.date(2015, 1, 1)
_SIGNUP_DATES: Final[tuple[str, ...]] = tuple(
    (_FIRST_EPOCH + dt.timedelta(days=d)).isoformat() for d in range(4096)
)  # 2015-01-01 .. 2026-03-18

# How many recent valid emails a duplicate may copy: small and fixed, so memory stays constant.
_RECENT_EMAILS: Final = 256


def _email_prefixes() -> tuple[tuple[str, str, str], ...]:
    """(local-part prefix, first name, last name) for every (first, last, pattern): 64 * 64 * 4 entries."""
    table: list[tuple[str, str, str]] = []
    for first, fslug in _FIRST_NAMES:
        for last, lslug in _LAST_NAMES:
            table.extend(
                (
                    (f"{fslug}.{lslug}", first, last),
                    (f"{fslug[0]}{lslug}", first, last),
                    (f"{fslug}_{lslug}", first, last),
                    (f"{lslug}.{fslug}", first, last),
                )
            )
    return tuple(table)


_PREFIXES: Final = _email_prefixes()


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value!r}")


def generate_rows(
    n: int,
    *,
    seed: int = 0,
    invalid_email_fraction: float = 0.0,
    duplicate_fraction: float = 0.0,
    missing_email_fraction: float = 0.0,
    bad_value_fraction: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Yield `n` synthetic profile rows (keys: `COLUMNS`), the same rows for the same arguments.

    Each row independently gets a missing email (None), a duplicate of a recently emitted valid email, an
    invalid email, or a fresh unique valid email, with the given probabilities (their sum must be <= 1).
    Independently, `loyalty_points` is an unparseable string with probability `bad_value_fraction`, else
    an int. `signup_date` is an ISO date string, `vip` is "yes" or "no". A duplicate at the very start
    (before any valid email was emitted) is a fresh valid email instead.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    _check_fraction("invalid_email_fraction", invalid_email_fraction)
    _check_fraction("duplicate_fraction", duplicate_fraction)
    _check_fraction("missing_email_fraction", missing_email_fraction)
    _check_fraction("bad_value_fraction", bad_value_fraction)
    if missing_email_fraction + duplicate_fraction + invalid_email_fraction > 1.0 + 1e-9:
        raise ValueError("missing_email_fraction + duplicate_fraction + invalid_email_fraction must be <= 1")
    return _generate(
        n,
        seed=seed,
        missing_below=missing_email_fraction,
        duplicate_below=missing_email_fraction + duplicate_fraction,
        invalid_below=missing_email_fraction + duplicate_fraction + invalid_email_fraction,
        bad_value_fraction=bad_value_fraction,
    )


def _generate(
    n: int,
    *,
    seed: int,
    missing_below: float,
    duplicate_below: float,
    invalid_below: float,
    bad_value_fraction: float,
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    bits = rng.getrandbits
    uniform = rng.random
    prefixes, domains, companies, places, dates = _PREFIXES, _DOMAINS, _COMPANIES, _PLACES, _SIGNUP_DATES
    recent: list[str] = []
    recent_next = 0
    dirty_email = invalid_below > 0.0
    for i in range(1, n + 1):
        # One 64-bit draw feeds every table lookup: far cheaper than one rng call per column.
        b = bits(64)
        local, first, last = prefixes[b & 0x3FFF]
        domain = domains[(b >> 14) & 0x7]
        company = companies[(b >> 17) & 0x1F]
        city, country, dial = places[(b >> 22) & 0x1F]
        signup = dates[(b >> 27) & 0xFFF]
        vip = "yes" if (b >> 39) & 0x7 == 0 else "no"
        # A second draw for the numbers, so they are not correlated with the looked-up columns.
        c = bits(64)
        phone = f"{dial} {(c & 0xFFFFFF) % 9_000_000 + 1_000_000}"
        points: Any = ((c >> 24) & 0xFFFF) % 5_000 if (c >> 40) & 0x3 else ((c >> 24) & 0xFFFF) % 50

        email: str | None
        u = uniform() if dirty_email else 1.0
        if u >= invalid_below:
            email = f"{local}{i}@{domain}"
            if len(recent) < _RECENT_EMAILS:
                recent.append(email)
            else:
                recent[recent_next] = email
                recent_next = (recent_next + 1) % _RECENT_EMAILS
        elif u < missing_below:
            email = None
        elif u < duplicate_below and recent:
            email = recent[(c >> 42) % len(recent)]
        elif u < duplicate_below:  # nothing to duplicate yet
            email = f"{local}{i}@{domain}"
            recent.append(email)
        else:
            email = INVALID_EMAIL_SHAPES[(c >> 50) & 0xF].format(f"{local}{i}", domain)
        if bad_value_fraction and uniform() < bad_value_fraction:
            points = _BAD_LOYALTY_VALUES[(c >> 54) & 0x7]
        yield {
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "city": city,
            "country": country,
            "phone": phone,
            "loyalty_points": points,
            "signup_date": signup,
            "vip": vip,
        }


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], *, columns: Sequence[str] = COLUMNS) -> int:
    """Write rows to a UTF-8 CSV file with a header (None -> empty cell); returns the number of rows."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c) for c in columns])
            count += 1
    return count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autopilot_segments._synthetic", description="Write synthetic profile rows to a CSV."
    )
    parser.add_argument("output", help="CSV file to write")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--invalid-email-fraction", type=float, default=0.0)
    parser.add_argument("--duplicate-fraction", type=float, default=0.0)
    parser.add_argument("--missing-email-fraction", type=float, default=0.0)
    parser.add_argument("--bad-value-fraction", type=float, default=0.0)
    args = parser.parse_args(argv)
    rows = generate_rows(
        args.rows,
        seed=args.seed,
        invalid_email_fraction=args.invalid_email_fraction,
        duplicate_fraction=args.duplicate_fraction,
        missing_email_fraction=args.missing_email_fraction,
        bad_value_fraction=args.bad_value_fraction,
    )
    write_csv(args.output, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
