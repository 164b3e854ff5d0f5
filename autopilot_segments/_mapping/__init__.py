"""The mapping layer: source rows to destination contacts, or typed `Rejection`s.

`mapping.py` (`FieldMapping`, `MappedContact`), `fields.py` (`CustomField`), `coerce.py` and `dates.py`
(cell converters), `emails.py` (normalisation and validation), `dedupe.py` (`RowsByEmail`), `infer.py`
(column-name guesses).
"""

from __future__ import annotations

from .emails import EmailError, normalize_email
from .fields import CustomField
from .mapping import FieldMapping, MappedContact

__all__ = ["CustomField", "EmailError", "FieldMapping", "MappedContact", "normalize_email"]
