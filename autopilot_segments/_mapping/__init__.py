"""The mapping layer: source rows to destination contacts, or typed `Rejection`s.

`mapping.py` (`FieldMapping`, `MappedContact`), `fields.py` (`CustomField`), `coerce.py` and `dates.py`
(cell converters), `emails.py` (normalisation and validation), `dedupe.py` (`RowsByEmail`), `infer.py`
(column-name guesses).
"""

from __future__ import annotations

from .emails import EmailError, normalize_email
from .fields import STANDARD_FIELDS, CustomField
from .mapping import FieldMapping, MappedContact

__all__ = ["STANDARD_FIELDS", "CustomField", "EmailError", "FieldMapping", "MappedContact", "normalize_email"]
