"""Spark DataFrames: a real local Spark session, rows streamed to the driver partition by partition.

The JVM takes seconds to start, so every Spark test lives here and shares one session.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pyspark import sql as pyspark_sql

from autopilot_segments import Exporter
from autopilot_segments.sandbox import Sandbox
from autopilot_segments.sources import rows_of
from tests._exporting import make_client, make_mapping

# PySpark 4.x warns that it does not know pandas 3 yet; nothing here goes through pandas.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")

PLAIN = {str, int, float, bool, Decimal, dt.datetime, dt.date, type(None)}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = (
        pyspark_sql.SparkSession.builder.master("local[1]")
        .appName("autopilot-segments-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_rows_are_plain_python_with_none_for_null_and_nan(spark: Any) -> None:
    types = pyspark_sql.types
    schema = types.StructType(
        [
            types.StructField("Email", types.StringType()),
            types.StructField("tier", types.LongType()),
            types.StructField("score", types.DoubleType()),
            types.StructField("joined", types.TimestampType()),
            types.StructField("day", types.DateType()),
            types.StructField("amount", types.DecimalType(10, 2)),
            types.StructField("active", types.BooleanType()),
        ]
    )
    data = [
        (
            "ann@example.com",
            1,
            0.5,
            dt.datetime(2023, 6, 15, 12, 3, 2),
            dt.date(2023, 12, 20),
            Decimal("1.50"),
            True,
        ),
        ("bob@example.com", None, math.nan, None, None, None, None),
        (None, 3, None, dt.datetime(2024, 1, 1), dt.date(2024, 2, 29), Decimal("-2.25"), False),
    ]
    rows = list(rows_of(spark.createDataFrame(data, schema)))
    assert rows == [
        {
            "Email": "ann@example.com",
            "tier": 1,
            "score": 0.5,
            "joined": dt.datetime(2023, 6, 15, 12, 3, 2),
            "day": dt.date(2023, 12, 20),
            "amount": Decimal("1.50"),
            "active": True,
        },
        {"Email": "bob@example.com", **dict.fromkeys(("tier", "score", "joined", "day", "amount", "active"))},
        {
            "Email": None,
            "tier": 3,
            "score": None,
            "joined": dt.datetime(2024, 1, 1),
            "day": dt.date(2024, 2, 29),
            "amount": Decimal("-2.25"),
            "active": False,
        },
    ]
    assert {type(v) for row in rows for v in row.values()} <= PLAIN


def test_spark_rows_reach_the_driver_one_partition_at_a_time(spark: Any) -> None:
    frame = spark.range(0, 400, numPartitions=4).selectExpr("concat('u', id, '@example.com') AS Email")
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("one-partition", "rows_of reads partition by partition")
    try:
        rows = iter(rows_of(frame))
        first = next(rows)
        jobs_after_first = len(tracker.getJobIdsForGroup("one-partition"))
        rest = list(rows)
        jobs_after_all = len(tracker.getJobIdsForGroup("one-partition"))
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert first == {"Email": "u0@example.com"}
    assert len(rest) == 399
    # toLocalIterator runs one job per partition, only when the previous partition has been read.
    assert jobs_after_first < jobs_after_all
    assert jobs_after_all - jobs_after_first >= 3


def test_a_spark_dataframe_exports_end_to_end_to_the_sandbox(spark: Any) -> None:
    n = 3000
    frame = spark.range(0, n, numPartitions=6).selectExpr(
        "CASE WHEN id % 1000 = 999 THEN 'not an email' ELSE concat('user', id, '@example.com') END AS Email",
        "concat('First', id) AS first_name",
        "CASE WHEN id % 2 = 0 THEN id % 5 ELSE NULL END AS tier",
    )
    with Sandbox() as sb:
        report = Exporter(make_client(sb), make_mapping()).export(frame, segment="From Spark")
        assert report.total_rows == n
        assert report.exported == n - 3
        assert report.counts["invalid_email"] == 3
        assert report.list_id is not None
        assert len(sb.list_members(report.list_id)) == n - 3
        assert sb.contacts["user10@example.com"]["FirstName"] == "First10"
        custom = sb.contacts["user11@example.com"].get("custom_fields", [])
        assert [f for f in custom if f["kind"] == "Tier"] == []  # a null tier is not sent
