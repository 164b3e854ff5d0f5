"""Guessing which source column feeds which Autopilot field, from common column names.

Names are compared case- and separator-insensitively: "E-Mail", "email_address" and "EmailAddress" are
all the same to it. Only standard fields are guessed; custom fields are always declared by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from .._destinations.autopilot.fields import STANDARD_FIELDS

__all__ = ["canonical_column", "infer_columns"]

_NOT_ALNUM: Final = re.compile(r"[\W_]+")

# In order of preference: the first synonym present wins when several columns could feed one field.
_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "Email": ("email", "emailaddress", "mail", "emailaddr", "mailaddress", "contactemail", "primaryemail"),
    "FirstName": ("firstname", "givenname", "forename", "first", "fname"),
    "LastName": ("lastname", "surname", "familyname", "last", "lname"),
    "Salutation": ("salutation", "honorific"),
    "Company": ("company", "companyname", "organisation", "organization", "org", "employer", "account"),
    "NumberOfEmployees": ("numberofemployees", "employees", "employeecount", "headcount"),
    "Title": ("title", "jobtitle", "position", "role"),
    "Industry": ("industry", "sector"),
    "Phone": ("phone", "phonenumber", "telephone", "tel", "workphone"),
    "MobilePhone": ("mobilephone", "mobile", "mobilenumber", "cell", "cellphone"),
    "Fax": ("fax", "faxnumber"),
    "Website": ("website", "web", "url", "homepage", "site"),
    "MailingStreet": ("mailingstreet", "street", "streetaddress", "address", "address1", "addressline1"),
    "MailingCity": ("mailingcity", "city", "town"),
    "MailingState": ("mailingstate", "state", "province", "region", "county"),
    "MailingPostalCode": ("mailingpostalcode", "postalcode", "postcode", "zip", "zipcode", "postal"),
    "MailingCountry": ("mailingcountry", "country", "countrycode"),
    "Twitter": ("twitter", "twitterhandle"),
    "LinkedIn": ("linkedin", "linkedinurl"),
    "owner_name": ("ownername", "owner", "accountowner"),
    "LeadSource": ("leadsource", "source"),
    "Status": ("status", "leadstatus"),
}
assert set(_SYNONYMS) == set(STANDARD_FIELDS)


def canonical_column(name: str) -> str:
    """A column name without case or separators: "E-Mail Address" -> "emailaddress"."""
    return _NOT_ALNUM.sub("", name).lower()


def infer_columns(columns: Iterable[object]) -> dict[str, str]:
    """`{standard field: source column}` for every field some column name suggests.

    A column feeds at most one field; when several columns could feed one field, the best synonym wins,
    then the first column.
    """
    by_canonical: dict[str, str] = {}
    for column in columns:
        if isinstance(column, str):
            by_canonical.setdefault(canonical_column(column), column)
    chosen: dict[str, str] = {}
    used: set[str] = set()
    for field, synonyms in _SYNONYMS.items():
        for synonym in synonyms:
            column = by_canonical.get(synonym)
            if column is not None and column not in used:
                chosen[field] = column
                used.add(column)
                break
    return chosen
