"""The export engine: `Exporter` and the flows behind it; destinations only through `_destinations.base`."""

from .exporter import Exporter, RowMapper, auto_concurrency

__all__ = ["Exporter", "RowMapper", "auto_concurrency"]
