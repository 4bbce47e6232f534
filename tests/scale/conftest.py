"""Fixtures of the scale-out tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scale.postgres import PostgresServer


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A running throwaway Postgres server for the module's tests; stopped and removed afterwards."""
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()
