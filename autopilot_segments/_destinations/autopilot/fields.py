"""Autopilot's standard contact fields, a leaf: their exact names, and what people call them.

The mapping layer reads these (Autopilot is its default field dialect); this module imports nothing.
"""

from __future__ import annotations

import difflib
from typing import Final

__all__ = ["STANDARD_FIELDS", "closest_standard_field"]

STANDARD_FIELDS: Final[tuple[str, ...]] = (
    "Email", "Twitter", "FirstName", "LastName", "Salutation", "Company", "NumberOfEmployees", "Title",
    "Industry", "Phone", "MobilePhone", "Fax", "Website", "MailingStreet", "MailingCity", "MailingState",
    "MailingPostalCode", "MailingCountry", "owner_name", "LeadSource", "Status", "LinkedIn",
)  # fmt: skip
"""Autopilot's standard contact fields, spelled exactly as the API wants them. All are sent as strings."""


# What people call the standard fields, compared without case, spaces, '_' or '-' ("zip_code", "Zip Code").
_COMMON_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "FirstName": ("first", "givenname", "forename"),
    "LastName": ("last", "surname", "familyname"),
    "Company": ("companyname", "organization", "organisation", "employer", "account", "business"),
    "NumberOfEmployees": ("employees", "employeecount", "companysize", "headcount"),
    "Title": ("jobtitle", "position", "role", "job"),
    "Phone": ("telephone", "tel", "phonenumber", "workphone", "officephone", "landline"),
    "MobilePhone": ("mobile", "cell", "cellphone", "mobilenumber", "cellular", "handy"),
    "Website": ("url", "web", "site", "homepage", "websiteurl"),
    "MailingStreet": ("street", "address", "address1", "addressline1", "streetaddress"),
    "MailingCity": ("city", "town", "locality"),
    "MailingState": ("state", "province", "region", "county", "stateprovince"),
    "MailingPostalCode": ("zip", "zipcode", "postcode", "postalcode", "plz"),
    "MailingCountry": ("country", "countryname", "nation"),
    "owner_name": ("owner", "accountowner", "contactowner"),
    "LeadSource": ("source", "leadorigin", "origin"),
    "LinkedIn": ("linkedinurl", "linkedinprofile"),
    "Twitter": ("twitterhandle", "twitterurl"),
    "Salutation": ("prefix", "honorific"),
    "Industry": ("sector", "vertical"),
    "Email": ("mail", "emailaddress", "email1"),
}
_BY_COMMON_NAME: Final[dict[str, str]] = {
    alias: field for field, aliases in _COMMON_NAMES.items() for alias in aliases
}


def _squashed(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def closest_standard_field(name: str) -> str | None:
    """The standard field `name` most likely means, or None.

    Knows misspellings ("FirstNme" -> "FirstName") and the common names of the standard fields
    ("City" -> "MailingCity", "Zip" -> "MailingPostalCode", "Mobile" -> "MobilePhone").
    """
    by_lower = {field.lower(): field for field in STANDARD_FIELDS}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    squashed = _squashed(name)
    by_squashed = {_squashed(field): field for field in STANDARD_FIELDS}
    if squashed in by_squashed:
        return by_squashed[squashed]
    if squashed in _BY_COMMON_NAME:
        return _BY_COMMON_NAME[squashed]
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None
