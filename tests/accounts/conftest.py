"""Fixtures for the accounts tests: a migrated SQLite file, a fake clock, cheap argon2."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import argon2
import pytest
from sqlalchemy.engine import Engine

from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    PasswordCheck,
    RateLimit,
    create_engine_for,
    upgrade_database,
)
from tests.clock import FakeClock


@pytest.fixture(scope="session")
def hasher() -> Argon2Hasher:
    """argon2id at the cheapest cost, so hashing takes microseconds in tests."""
    return Argon2Hasher(argon2.profiles.CHEAPEST)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'accounts.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A real SQLite file, migrated to head."""
    engine = create_engine_for(db_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def rate_limit() -> RateLimit:
    return RateLimit()


@pytest.fixture
def service(
    engine: Engine, hasher: Argon2Hasher, clock: FakeClock, rate_limit: RateLimit
) -> AccountService:
    return AccountService(
        engine,
        hasher=hasher,
        clock=clock,
        session_ttl=timedelta(hours=12),
        rate_limit=rate_limit,
    )


@pytest.fixture
def verified_passwords(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password `Argon2Hasher.verify_password` checks from now on, in order."""
    calls: list[str] = []
    real = Argon2Hasher.verify_password

    def spy(self: Argon2Hasher, stored: str, password: str) -> PasswordCheck:
        calls.append(password)
        return real(self, stored, password)

    monkeypatch.setattr(Argon2Hasher, "verify_password", spy)
    return calls
