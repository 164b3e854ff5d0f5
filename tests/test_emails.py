"""Email normalisation and validation: a table of real-world cases, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from autopilot_segments import EmailError, FieldMapping, MappedContact, Rejection, normalize_email

LONG_LOCAL = "a" * 64
LONG_LABEL = "d" * 63
FULL_WIDTH = "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"  # example.com

# (raw, normalised) for addresses that must be accepted.
VALID = [
    ("user@example.com", "user@example.com", "plain"),
    ("User@Example.COM", "user@example.com", "uppercase everywhere"),
    ("  user@example.com\t", "user@example.com", "surrounding whitespace is trimmed"),
    ("first.last@example.com", "first.last@example.com", "dots between atoms"),
    ("user+tag@example.com", "user+tag@example.com", "plus tag kept"),
    ("user+tag+more@example.co.uk", "user+tag+more@example.co.uk", "several plus tags, multi-label domain"),
    ("o'brien@example.ie", "o'brien@example.ie", "apostrophe is atext"),
    ("a_b-c@sub-domain.example.org", "a_b-c@sub-domain.example.org", "underscore and hyphens"),
    ("x@a.io", "x@a.io", "one-letter labels"),
    ("1234@example.com", "1234@example.com", "numeric local part"),
    ("user@123.example.com", "user@123.example.com", "numeric non-top label"),
    ("user@example.x1", "user@example.x1", "alphanumeric TLD"),
    ("user@xn--bcher-kva.de", "user@xn--bcher-kva.de", "already IDNA-encoded"),
    ("user@bücher.de", "user@xn--bcher-kva.de", "internationalised domain"),
    ("user@BÜCHER.DE", "user@xn--bcher-kva.de", "internationalised domain, uppercase"),
    ("user@例え.テスト", "user@xn--r8jz45g.xn--zckzah", "Japanese domain and TLD"),
    ("user@пример.рф", "user@xn--e1afmkfd.xn--p1ai", "Cyrillic domain"),
    (
        "user@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
        "user@example.com",
        "full-width domain folds to ASCII",
    ),
    ("user@example。com", "user@example.com", "ideographic full stop separates labels"),
    ("!#$%&'*+/=?^_`{|}~-@example.com", "!#$%&'*+/=?^_`{|}~-@example.com", "every atext symbol"),
    (f"{LONG_LOCAL}@example.com", f"{LONG_LOCAL}@example.com", "64-character local part"),
    (f"u@{LONG_LABEL}.com", f"u@{LONG_LABEL}.com", "63-character label"),
    ("u@" + ".".join(["d" * 61] * 4) + ".com", "u@" + ".".join(["d" * 61] * 4) + ".com", "253 characters"),
    ("user@my-domain.com", "user@my-domain.com", "hyphen inside a label"),
    ("user@xn--p1ai.xn--p1ai", "user@xn--p1ai.xn--p1ai", "punycode TLD"),
    ("user@straße.de", "user@xn--strae-oqa.de", "sharp s kept as IDNA 2008 does, not folded to ss"),
    ("user@STRAßE.de", "user@xn--strae-oqa.de", "sharp s with uppercase letters"),
    ("user@STRA\u1e9eE.DE", "user@xn--strae-oqa.de", "capital sharp s maps to sharp s (UTS 46)"),
    ("user@xn--strae-oqa.de", "user@xn--strae-oqa.de", "already-encoded sharp s domain"),
    ("user@strasse.de", "user@strasse.de", "the ss spelling is another domain"),
    ("user@ς.gr", "user@xn--3xa.gr", "final sigma kept (IDNA 2003 would make it sigma, xn--4xa)"),
    ("user@XN--BCHER-KVA.DE", "user@xn--bcher-kva.de", "uppercase already-encoded domain"),
]

# (raw, words the message must contain) for addresses that must be refused.
INVALID = [
    ("userexample.com", "no @", "no @ at all"),
    ("@example.com", "nothing before", "empty local part"),
    ("user@", "nothing after", "empty domain"),
    ("a@b@example.com", "more than one @", "two @"),
    ('"john doe"@example.com', "quoted", "quoted local part with space"),
    ('"john"@example.com', "quoted", "quoted local part"),
    ('"a@b"@example.com', "quoted", "quoted local part with @"),
    ("john(comment)@example.com", "comments", "comment in local part"),
    ("user@(comment)example.com", "comments", "comment in domain"),
    ("john..doe@example.com", "two dots", "consecutive dots"),
    (".john@example.com", "starts or ends with a dot", "leading dot"),
    ("john.@example.com", "starts or ends with a dot", "trailing dot in local part"),
    ("john doe@example.com", "space", "space in local part"),
    ("john@exa mple.com", "space", "space in domain"),
    ("john@example", "no top-level domain", "missing TLD"),
    ("john@localhost", "no top-level domain", "single-label domain"),
    ("john@example.123", "all digits", "numeric TLD"),
    ("john@192.168.0.1", "all digits", "bare IPv4 address"),
    ("john@[192.168.0.1]", "IP-address", "IPv4 literal"),
    ("john@[IPv6:2001:db8::1]", "IP-address", "IPv6 literal"),
    ("john@example.com.", "ends with a dot", "trailing dot in domain"),
    ("john@.example.com", "empty part", "leading dot in domain"),
    ("john@example..com", "empty part", "consecutive dots in domain"),
    ("john@-example.com", "hyphen", "label starts with hyphen"),
    ("john@example-.com", "hyphen", "label ends with hyphen"),
    ("john@example.-com", "hyphen", "TLD starts with hyphen"),
    ("john@exa_mple.com", "'_'", "underscore in domain"),
    ("john@exa!mple.com", "'!'", "symbol in domain"),
    ("jo,hn@example.com", "','", "comma in local part"),
    ("jo;hn@example.com", "';'", "semicolon in local part"),
    ("jo<hn>@example.com", "'<'", "angle brackets"),
    ("jo\\hn@example.com", "'\\\\'", "backslash"),
    ("jöhn@example.com", "non-ASCII", "unicode local part"),
    ("用户@例子.广告", "non-ASCII", "unicode local part and domain"),
    ("ünïcödé@bücher.de", "non-ASCII", "unicode local part, IDN domain"),
    ("a" * 65 + "@example.com", "65 characters", "local part over 64"),
    ("u@" + "d" * 64 + ".com", "64 characters", "label over 63"),
    ("u@" + ".".join(["d" * 60] * 5) + ".com", "characters long; at most 254", "whole address over 254"),
    ("john@bü cher.de", "space", "space in internationalised domain"),
    ("john@\u00ad.com", "IDNA", "label that maps to nothing under IDNA"),
    ("\u212a@example.com", "non-ASCII", "Kelvin sign lower-cases to ASCII k: still refused"),
    ("john@@example.com", "more than one @", "doubled @"),
    ("a@example.com, b@example.com", "several addresses", "two addresses in one cell"),
    ("a@example.com (home)", "comments in brackets", "trailing comment after a space"),
    ("mailto:john@example.com", "':'", "mailto prefix"),
    ("John Doe <john@example.com>", "'Name <address>'", "display-name form"),
    ("john@xn--zz.com", "not a valid internationalised", "xn-- label that is not punycode"),
    ("john@xn--ascii.com", "not a valid internationalised", "xn-- label decoding to control characters"),
    ("john@xn--a-ecp.ru", "not a valid internationalised", "xn-- label that does not encode back to itself"),
    ("john@ex\u200dample.com", "cannot be IDNA-encoded", "zero-width joiner outside its allowed context"),
]


@pytest.mark.parametrize(("raw", "expected", "why"), VALID, ids=[case[2] for case in VALID])
def test_valid_addresses_are_normalised(raw: str, expected: str | None, why: str) -> None:
    result = normalize_email(raw)
    if expected is not None:
        assert result == expected, why
    assert result == result.strip().lower()
    assert len(result) <= 254


@pytest.mark.parametrize(("raw", "words", "why"), INVALID, ids=[case[2] for case in INVALID])
def test_invalid_addresses_say_what_is_wrong(raw: str, words: str, why: str) -> None:
    with pytest.raises(EmailError) as caught:
        normalize_email(raw)
    assert words in str(caught.value), f"{why}: {caught.value}"


def test_the_table_is_large_enough() -> None:
    assert len(VALID) + len(INVALID) >= 60


@pytest.mark.parametrize("case", VALID + INVALID, ids=[case[2] for case in VALID + INVALID])
def test_the_table_through_a_mapping_gives_a_contact_or_invalid_email(case: tuple[str, Any, str]) -> None:
    raw, expected, why = case
    result = FieldMapping(email="mail").map_row({"mail": raw}, 1)
    if case in VALID:
        assert isinstance(result, MappedContact), (why, result)
        assert result.payload == {"Email": expected}
    else:
        assert isinstance(result, Rejection), why
        assert result.reason == "invalid_email"
        assert result.field == "mail"
        assert expected in result.message


@pytest.mark.parametrize("blank", [None, "", "  ", "\t\n", float("nan")])
def test_blank_emails_are_missing_not_invalid(blank: Any) -> None:
    result = FieldMapping(email="mail").map_row({"mail": blank}, 1)
    assert isinstance(result, Rejection)
    assert result.reason == "missing_email"


def test_local_part_case_can_be_kept() -> None:
    assert normalize_email("John.Doe@Example.COM", lowercase_local_part=False) == "John.Doe@example.com"
    assert normalize_email("John@BÜCHER.de", lowercase_local_part=False) == "John@xn--bcher-kva.de"


def test_email_error_is_a_value_error_and_a_library_error() -> None:
    from autopilot_segments import AutopilotError

    with pytest.raises(ValueError, match="no @"):
        normalize_email("nope")
    assert issubclass(EmailError, AutopilotError)


_atext = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFXYZ0123456789!#$%&'*+/=?^_`{|}~-.")
_plausible = st.builds(
    lambda local, labels, tld, pad: f"{pad}{local}@{'.'.join([*labels, tld])}{pad}",
    st.text(_atext, min_size=1, max_size=70),
    st.lists(
        st.one_of(
            st.text(st.sampled_from("abcXYZ019-äöüßςé例\u200d"), min_size=1, max_size=20),
            st.sampled_from(["xn--bcher-kva", "xn--strae-oqa", "XN--3XA", "xn--zz", "xn--a-ecp", "xn--ls8h"]),
        ),
        min_size=1,
        max_size=3,
    ),
    st.text(st.sampled_from("comCOMorgdeé1"), min_size=1, max_size=6),
    st.sampled_from(["", " ", "\t"]),
)


@given(st.one_of(_plausible, st.text(max_size=80)))
@example("Kelvin\u212a@example.com")
@example("a@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com")
def test_normalisation_is_idempotent(raw: str) -> None:
    try:
        once = normalize_email(raw)
    except EmailError:
        return
    assert normalize_email(once) == once
    assert normalize_email(once, lowercase_local_part=False) == once
    assert once.isascii()
    assert once == once.lower()
    local, _, domain = once.rpartition("@")
    assert 1 <= len(local) <= 64
    assert len(once) <= 254
    assert not domain.split(".")[-1].isdigit()


@given(_plausible)
def test_keeping_case_is_idempotent_too(raw: str) -> None:
    try:
        once = normalize_email(raw, lowercase_local_part=False)
    except EmailError:
        return
    assert normalize_email(once, lowercase_local_part=False) == once
    assert normalize_email(once) == once.lower()
