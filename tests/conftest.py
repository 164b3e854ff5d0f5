"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _postgres import PostgresServer, postgres_server, require_server_binaries
from hypothesis import settings

# No per-example time limit: how long an example takes depends on the machine's load, not on the code,
# and a test must not fail because another process was busy. Speed is measured in benchmarks/.
settings.register_profile("autopilot-segments", deadline=None)
settings.load_profile("autopilot-segments")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server started for this test session (see tests/_postgres.py).

    Skipped when no server binary is installed, except in CI (`CI` set), where that is a failure:
    CI installs PostgreSQL (.ci/run), so a missing server there means the tests did not run.
    """
    require_server_binaries()
    with postgres_server() as server:
        yield server
