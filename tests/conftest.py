"""Fixtures shared by several test files."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _postgres import PostgresServer, PostgresUnavailable, find_bin_dir, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server started for this test session (see tests/_postgres.py).

    Skipped when no server binary is installed, except in CI (`CI` set), where that is a failure:
    CI installs PostgreSQL (.ci/run), so a missing server there means the tests did not run.
    """
    try:
        find_bin_dir()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but PostgreSQL is not installed: {exc}", pytrace=False)
        pytest.skip(str(exc))
    with postgres_server() as server:
        yield server
