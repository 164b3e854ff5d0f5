"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _postgres import PostgresServer, postgres_server, require_server_binaries


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server started for this test session (see tests/_postgres.py).

    Skipped when no server binary is installed, except in CI (`CI` set), where that is a failure:
    CI installs PostgreSQL (.ci/run), so a missing server there means the tests did not run.
    """
    require_server_binaries()
    with postgres_server() as server:
        yield server
