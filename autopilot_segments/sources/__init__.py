"""Streaming readers that turn segments into rows: files (CSV, JSON Lines, Parquet, Excel, CDM folders),
tabular objects (pandas, Polars, pyarrow, DuckDB, Spark, DB-API cursors, through `rows_of`) and SQL
queries (`read_sql`).

Every reader yields plain `dict[str, Any]` rows, one at a time, in constant memory (Parquet and pandas
hold one bounded batch), so a segment of any size can be piped into `FieldMapping.map_rows` or
`Exporter.export`. Conventions shared by all readers:

- a missing value is `None`: an empty CSV cell, a JSON `null`, a pandas NaN/NaT/None/NA, a Parquet null;
- values are plain Python objects (`str`, `int`, `float`, `bool`, `datetime`, ...), never numpy scalars;
- a file is opened lazily, on the first row asked for, and closed when the rows are exhausted or the
  generator is closed; argument errors (unknown extension, missing file, missing extra) are raised at
  the call;
- malformed input raises `SourceError` naming the file and the line (or partition) at fault; messages
  never quote cell values, which may be personal data.

pandas, pyarrow, polars, duckdb and pyspark are optional extras, imported only by the readers that need
them; `rows_of` tells the kind of an object from its class, without importing anything.
"""

from __future__ import annotations

from ._cdm import cdm_entities, read_cdm
from ._common import SourceError
from ._excel import read_excel
from ._frames import from_dataframe, read_parquet
from ._open import open_source, read_any, sample_mapping_path, sample_segment_path
from ._sql import read_sql
from ._tabular import rows_of
from ._text import read_csv, read_jsonl

__all__ = [
    "SourceError",
    "cdm_entities",
    "from_dataframe",
    "open_source",
    "read_any",
    "read_cdm",
    "read_csv",
    "read_excel",
    "read_jsonl",
    "read_parquet",
    "read_sql",
    "rows_of",
    "sample_mapping_path",
    "sample_segment_path",
]
