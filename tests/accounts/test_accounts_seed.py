"""The demo-account seeder: idempotent, configurable, runnable as a module from anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy.engine import Engine

from sample_app.accounts import (
    AccountService,
    Argon2Hasher,
    RegistrationError,
    SignInError,
    create_engine_for,
)
from sample_app.accounts import seed as seed_module
from sample_app.accounts.seed import (
    DEFAULT_DEMO_PASSWORD,
    DEMO_ACCOUNTS,
    SeedResult,
    default_db_url,
    demo_password,
    seed_demo_accounts,
)
from tests.accounts.helpers import count_rows

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point `main()` at a `.env` in the test's directory (absent until a test writes it).

    A developer's own `.env` must not change what these tests see, and whatever `main()`
    loads into `os.environ` is undone afterwards.
    """
    path = tmp_path / ".env"
    monkeypatch.setattr(seed_module, "ENV_FILE", path)
    with mock.patch.dict(os.environ):
        yield path


def test_seed_is_idempotent(engine: Engine, hasher: Argon2Hasher) -> None:
    first = seed_demo_accounts(engine, DEFAULT_DEMO_PASSWORD, hasher=hasher)
    assert first == [
        SeedResult("alice", "Alice Example", created=True),
        SeedResult("bob", "Bob Example", created=True),
    ]
    second = seed_demo_accounts(engine, "a different password", hasher=hasher)
    assert second == [
        SeedResult("alice", "Alice Example", created=False),
        SeedResult("bob", "Bob Example", created=False),
    ]
    assert count_rows(engine, "accounts") == 2
    # Re-running did not reset the password.
    service = AccountService(engine, hasher=hasher)
    assert service.sign_in("alice", DEFAULT_DEMO_PASSWORD, "c").account.display_name == (
        "Alice Example"
    )


def test_seed_refuses_a_weak_password(engine: Engine, hasher: Argon2Hasher) -> None:
    with pytest.raises(RegistrationError) as raised:
        seed_demo_accounts(engine, "short", hasher=hasher)
    assert set(raised.value.field_errors) == {"password"}
    assert count_rows(engine, "accounts") == 0


def test_documented_defaults() -> None:
    assert DEFAULT_DEMO_PASSWORD == "sendbird-demo-2026"
    assert [(d.username, d.display_name) for d in DEMO_ACCOUNTS] == [
        ("alice", "Alice Example"),
        ("bob", "Bob Example"),
    ]
    assert default_db_url({}) == "sqlite:///reflex.db"
    assert default_db_url({"REFLEX_DB_URL": "postgresql://db/app"}) == "postgresql://db/app"
    assert demo_password({}) == DEFAULT_DEMO_PASSWORD
    assert demo_password({"DEMO_PASSWORD": "my own demo pass"}) == "my own demo pass"


def test_main_migrates_seeds_and_reports(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hasher: Argon2Hasher,
) -> None:
    monkeypatch.setattr(seed_module, "AccountService", _cheap_service(hasher))
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    monkeypatch.setenv("REFLEX_DB_URL", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert seed_module.main([]) == 0
    out = capsys.readouterr().out
    assert "created alice (Alice Example) with the default demo password" in out
    assert "created bob (Bob Example)" in out
    assert (tmp_path / "from-env.db").exists()

    assert seed_module.main(["--db-url", f"sqlite:///{tmp_path / 'from-env.db'}"]) == 0
    out = capsys.readouterr().out
    assert "found alice (Alice Example); left unchanged" in out
    assert "found bob (Bob Example); left unchanged" in out


def test_main_reads_dot_env_but_the_real_environment_wins(
    tmp_path: Path,
    env_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hasher: Argon2Hasher,
) -> None:
    monkeypatch.setattr(seed_module, "AccountService", _cheap_service(hasher))
    dotenv_db = tmp_path / "from-dotenv.db"
    env_file.write_text(
        f"REFLEX_DB_URL=sqlite:///{dotenv_db}\nDEMO_PASSWORD=password-from-dotenv\n",
        encoding="utf-8",
    )
    monkeypatch.delenv("REFLEX_DB_URL", raising=False)
    monkeypatch.setenv("DEMO_PASSWORD", "password-from-the-environment")

    assert seed_module.main([]) == 0
    out = capsys.readouterr().out
    assert f"accounts database: sqlite:///{dotenv_db}" in out  # unset, so .env's value
    assert "created alice (Alice Example) with DEMO_PASSWORD" in out
    assert os.environ["DEMO_PASSWORD"] == "password-from-the-environment"
    engine = create_engine_for(f"sqlite:///{dotenv_db}")
    try:
        service = AccountService(engine, hasher=hasher)
        assert service.sign_in("alice", "password-from-the-environment", "c")
        with pytest.raises(SignInError):
            service.sign_in("alice", "password-from-dotenv", "c")
    finally:
        engine.dispose()


def test_main_rejects_a_weak_demo_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "alice12345678")
    assert seed_module.main(["--db-url", f"sqlite:///{tmp_path / 'x.db'}"]) == 2
    err = capsys.readouterr().err
    assert "DEMO_PASSWORD is not acceptable" in err
    assert "Password must not contain your username." in err
    assert not (tmp_path / "x.db").exists()


def test_runs_as_a_module_from_another_directory(tmp_path: Path) -> None:
    """`python -m sample_app.accounts.seed` with the real (default-cost) hasher."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DEMO_PASSWORD": "another-demo-pass",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    # Set but empty: the real environment wins over any .env, and empty means the default.
    env["REFLEX_DB_URL"] = ""
    result = subprocess.run(
        [sys.executable, "-m", "sample_app.accounts.seed"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "accounts database: sqlite:///reflex.db" in result.stdout
    assert "created alice (Alice Example) with DEMO_PASSWORD" in result.stdout
    assert (tmp_path / "reflex.db").exists()


def _cheap_service(hasher: Argon2Hasher) -> type[AccountService]:
    class CheapAccountService(AccountService):
        def __init__(self, engine: Engine, **kwargs: object) -> None:
            kwargs["hasher"] = hasher
            super().__init__(engine, **kwargs)  # type: ignore[arg-type]

    return CheapAccountService
