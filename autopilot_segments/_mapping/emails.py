"""Email normalisation and validation, with rules that match what mail systems actually accept.

Accepted: a dot-atom local part (RFC 5322 `atext` characters, dots only between them) of at most 64
characters, an `@`, and a domain of LDH labels (letters, digits, hyphens; 1-63 characters; no leading or
trailing hyphen) with at least two labels and a top-level domain that is not all digits; at most 254
characters in all. Internationalised domains are IDNA-encoded (`bücher.de` -> `xn--bcher-kva.de`), and
a domain given already encoded must hold valid `xn--` labels (ones that decode and encode back to
themselves).

Refused on purpose: quoted local parts and comments (legal in RFC 5322, refused by most mail systems and
ESPs), IP-address literals, a trailing dot on the domain, and non-ASCII local parts: those need SMTPUTF8,
which many receiving servers still do not support, so a contact with one may be undeliverable.

The whole address is lower-cased by default, because Autopilot de-duplicates contacts case-insensitively;
pass `lowercase_local_part=False` to keep the local part's case (the domain is always lower-cased).
"""

from __future__ import annotations

import re
from encodings import idna as idna2003
from typing import Final

from .._errors import AutopilotError

__all__ = ["EmailError", "normalize_email"]

MAX_LOCAL_LENGTH: Final = 64
MAX_EMAIL_LENGTH: Final = 254
MAX_LABEL_LENGTH: Final = 63

_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL: Final = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD: Final = r"(?![0-9]+\Z)" + _LABEL
_VALID: Final = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+{_TLD}")
_VALID_MATCH: Final = _VALID.fullmatch
_ATEXT_CHAR: Final = re.compile(_ATEXT)
_LDH_LABEL: Final = re.compile(r"[a-z0-9-]+")
# The dots IDNA treats as label separators (ASCII full stop, ideographic and full-width ones).
_DOTS: Final = re.compile("[.\u3002\uff0e\uff61]")
# The characters IDNA 2003 (the stdlib codec) maps away but IDNA 2008 keeps: ß (and capital ẞ, which
# UTS #46 maps to ß), final sigma, ZWNJ, ZWJ. With the stdlib, "straße.de" would become "strasse.de",
# another domain with another owner.
_DEVIATIONS: Final = re.compile("[\u00df\u1e9e\u03c2\u200c\u200d]")
_A_LABEL_PREFIX: Final = "xn--"


class EmailError(AutopilotError, ValueError):
    """An email address that cannot be used; the message says what is wrong, for a person to read."""


def fast_normalize_email(raw: str) -> str | None:
    """`normalize_email(raw)` for the common valid ASCII address; None means "take the full path"."""
    text = raw.strip()
    if not text.isascii():  # lower() could turn some non-ASCII letters (the Kelvin sign) into ASCII
        return None
    candidate = text.lower()
    if (
        len(candidate) <= MAX_EMAIL_LENGTH
        and _VALID_MATCH(candidate)
        and candidate.index("@") <= MAX_LOCAL_LENGTH
        and _A_LABEL_PREFIX not in candidate  # xn-- labels are checked on the full path
    ):
        return candidate
    return None


def normalize_email(raw: str, *, lowercase_local_part: bool = True) -> str:
    """The address trimmed, lower-cased, IDNA-encoded and validated; `EmailError` says what is wrong.

    Idempotent: a normalised address normalises to itself.
    """
    text = raw.strip()
    if text.isascii():  # the fast path: nearly every real address
        if lowercase_local_part:
            candidate = text.lower()
        else:
            local, at, domain = text.rpartition("@")
            candidate = f"{local}{at}{domain.lower()}"
        return _validated(candidate)
    return _normalize_unicode(text, lowercase_local_part)


def _normalize_unicode(text: str, lowercase_local_part: bool) -> str:
    local, at, domain = text.rpartition("@")
    if not at:
        raise EmailError("there is no @ in it")
    if not local.isascii():
        raise EmailError(
            "the part before the @ contains non-ASCII characters; such addresses need SMTPUTF8, which many "
            "mail systems refuse, so they are not accepted"
        )
    if lowercase_local_part:
        local = local.lower()
    return _validated(f"{local}@{_encode_domain(domain)}")


def _validated(candidate: str) -> str:
    """A normalised candidate if it passes every rule, else `EmailError` saying which rule failed."""
    if (
        len(candidate) <= MAX_EMAIL_LENGTH
        and _VALID.fullmatch(candidate)
        and candidate.index("@") <= MAX_LOCAL_LENGTH
    ):
        return _with_valid_a_labels(candidate)
    raise EmailError(_diagnose(candidate))


def _encode_domain(domain: str) -> str:
    labels = _DOTS.split(domain)
    encoded = []
    for label in labels:
        if label.isascii():
            encoded.append(label.lower())
            continue
        if any(ch.isspace() for ch in label):
            raise EmailError("the domain contains a space")
        encoded.append(_encode_label(label))
    return ".".join(encoded)


def _encode_label(label: str) -> str:
    """One non-ASCII domain label as its ASCII (`xn--`) form; EmailError if it has none."""
    try:
        if _DEVIATIONS.search(label):
            # UTS #46 non-transitional, as browsers and libidn2-based mail servers encode: ß stays ß.
            # `idna` comes with requests; imported here because few addresses need it.
            import idna

            return idna.encode(label, uts46=True, transitional=False).decode("ascii")
        return idna2003.ToASCII(label).decode("ascii")
    except UnicodeError as exc:  # idna.IDNAError is a UnicodeError too
        raise EmailError(f"the domain part {label!r} cannot be IDNA-encoded ({exc})") from None


def _with_valid_a_labels(address: str) -> str:
    """`address` if every `xn--` label of its domain is real punycode that encodes back to itself."""
    domain = address[address.rindex("@") + 1 :]
    if _A_LABEL_PREFIX not in domain:
        return address
    for label in domain.split("."):
        if not label.startswith(_A_LABEL_PREFIX):
            continue
        try:
            decoded = label[len(_A_LABEL_PREFIX) :].encode("ascii").decode("punycode")
            valid = not decoded.isascii() and _encode_label(decoded) == label
        except (UnicodeError, EmailError):
            valid = False
        if not valid:
            raise EmailError(
                f"the domain part {label!r} is not a valid internationalised (xn--) name; check the "
                "spelling, or give the domain in its own letters"
            )
    return address


def _diagnose(candidate: str) -> str:
    """What is wrong with an ASCII address that failed the validating pattern."""
    if "@" not in candidate:
        return "there is no @ in it"
    local, _, domain = candidate.rpartition("@")
    if not local:
        return "there is nothing before the @"
    if not domain:
        return "there is nothing after the @"
    if "@" in local:
        if local.startswith('"'):
            return 'quoted addresses (with "...") are not accepted'
        if any(sep in candidate for sep in ",; "):
            return "it looks like several addresses in one cell; keep only one"
        return "it contains more than one @"
    if "<" in candidate and candidate.endswith(">"):
        return "it looks like a name with an address ('Name <address>'); keep only the address"
    if local.startswith('"') or local.endswith('"'):
        return 'quoted addresses (with "...") are not accepted'
    if "(" in candidate or ")" in candidate:
        return "comments in brackets, like '(home)', are not accepted; remove them"
    if any(ch.isspace() for ch in candidate):
        return "it contains a space"
    if domain.startswith("["):
        return "IP-address domains like [192.0.2.1] are not accepted; use a domain name"
    if local.startswith(".") or local.endswith("."):
        return "the part before the @ starts or ends with a dot"
    if ".." in local:
        return "the part before the @ has two dots in a row"
    bad = sorted({ch for ch in local if ch != "." and not _ATEXT_CHAR.fullmatch(ch)})
    if bad:
        return f"the part before the @ contains {_chars(bad)}, which is not allowed there"
    if len(local) > MAX_LOCAL_LENGTH:
        return (
            f"the part before the @ is {len(local)} characters long; at most {MAX_LOCAL_LENGTH} are allowed"
        )
    if domain.endswith("."):
        return "the domain ends with a dot"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain {domain!r} has no top-level domain (like .com)"
    if any(not label for label in labels):
        return "the domain has an empty part (two dots in a row, or a leading dot)"
    for label in labels:
        if not _LDH_LABEL.fullmatch(label):
            odd = sorted({ch for ch in label if not _LDH_LABEL.fullmatch(ch)})
            return f"the domain contains {_chars(odd)}; only letters, digits, hyphens and dots are allowed"
        if len(label) > MAX_LABEL_LENGTH:
            return f"a domain part is {len(label)} characters long; at most {MAX_LABEL_LENGTH} are allowed"
        if label.startswith("-") or label.endswith("-"):
            return f"the domain part {label!r} starts or ends with a hyphen"
    if labels[-1].isdigit():
        return "the top-level domain is all digits; IP addresses are not accepted, use a domain name"
    if len(candidate) > MAX_EMAIL_LENGTH:
        return f"it is {len(candidate)} characters long; at most {MAX_EMAIL_LENGTH} are allowed"
    return "it is not a valid email address"


def _chars(chars: list[str]) -> str:
    return " ".join(repr(ch) for ch in chars[:5])
