"""Create the demo accounts, so a fresh checkout can sign in straight away.

Usage::

    python -m sample_app.accounts.seed [--db-url URL]

It reads the repository's `.env` first, like `rxconfig.py` does, without overriding
variables that are already set in the environment. The database URL defaults to
`REFLEX_DB_URL`, else `sqlite:///reflex.db` (the same rule as `rxconfig.py`; a relative
SQLite path is relative to the current directory, so run it from the repository root like
`reflex run`). The schema is migrated first.

Demo accounts (password from `DEMO_PASSWORD`, else `sendbird-demo-2026`):

=========  ===============
username   display name
=========  ===============
alice      Alice Example
bob        Bob Example
=========  ===============

Running it again is harmless: existing accounts are reported and left as they are (their
passwords are not reset). The default password is public, so never seed a database that
is reachable by others without setting `DEMO_PASSWORD`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from sample_app.accounts.database import create_engine_for, upgrade_database
from sample_app.accounts.errors import RegistrationError
from sample_app.accounts.models import Account
from sample_app.accounts.passwords import Argon2Hasher, check_password_strength
from sample_app.accounts.service import AccountService
from sample_app.config import ENV_FILE, load_env_file

__all__ = [
    "DEFAULT_DB_URL",
    "DEFAULT_DEMO_PASSWORD",
    "DEMO_ACCOUNTS",
    "DemoAccount",
    "SeedResult",
    "default_db_url",
    "demo_password",
    "main",
    "seed_demo_accounts",
]

DEFAULT_DB_URL = "sqlite:///reflex.db"
DEFAULT_DEMO_PASSWORD = "sendbird-demo-2026"  # noqa: S105 - documented public demo password


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """One demo account to create."""

    username: str
    display_name: str
    profile_url: str = ""


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("alice", "Alice Example"),
    DemoAccount("bob", "Bob Example"),
)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What happened to one demo account.

    Attributes:
        username: The demo account.
        display_name: Its display name in the database.
        created: True if it was created now, False if it already existed.
    """

    username: str
    display_name: str
    created: bool


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """Return `REFLEX_DB_URL` from `environ` (default: the process), else the default."""
    env = os.environ if environ is None else environ
    return env.get("REFLEX_DB_URL", "").strip() or DEFAULT_DB_URL


def demo_password(environ: Mapping[str, str] | None = None) -> str:
    """Return `DEMO_PASSWORD` from `environ` (default: the process), else the default."""
    env = os.environ if environ is None else environ
    return env.get("DEMO_PASSWORD", "") or DEFAULT_DEMO_PASSWORD


def seed_demo_accounts(
    engine: Engine,
    password: str,
    *,
    hasher: Argon2Hasher | None = None,
    accounts: Sequence[DemoAccount] = DEMO_ACCOUNTS,
) -> list[SeedResult]:
    """Create each demo account that does not exist yet (the schema must be migrated).

    Returns:
        One result per demo account, in order.

    Raises:
        RegistrationError: if `password` fails the password policy, or a demo account's
            fields are invalid.
    """
    service = AccountService(engine, hasher=hasher)
    results: list[SeedResult] = []
    for demo in accounts:
        try:
            view = service.register(demo.username, password, demo.display_name, demo.profile_url)
            results.append(SeedResult(view.username, view.display_name, created=True))
        except RegistrationError as error:
            existing = _find(engine, demo.username)
            if existing is None or set(error.field_errors) != {"username"}:
                raise
            results.append(SeedResult(existing.username, existing.display_name, created=False))
    return results


def _find(engine: Engine, username: str) -> Account | None:
    with Session(engine) as session:
        return session.exec(select(Account).where(Account.username == username)).first()


def main(argv: Sequence[str] | None = None) -> int:
    """Read `.env`, migrate the database and create the demo accounts; print what happened.

    `.env` (`ENV_FILE`) never overrides a variable that is already set, so the real
    environment wins over it.
    """
    load_env_file(ENV_FILE)
    parser = argparse.ArgumentParser(
        prog="python -m sample_app.accounts.seed",
        description="Create the demo accounts (alice, bob) if they do not exist yet.",
    )
    parser.add_argument(
        "--db-url",
        default=None,
        help=f"SQLAlchemy database URL (default: $REFLEX_DB_URL or {DEFAULT_DB_URL})",
    )
    args = parser.parse_args(argv)
    db_url = args.db_url or default_db_url()
    password = demo_password()
    problems = list(
        dict.fromkeys(
            problem
            for demo in DEMO_ACCOUNTS
            for problem in check_password_strength(password, demo.username)
        )
    )
    if problems:
        print("DEMO_PASSWORD is not acceptable:", *problems, sep="\n  ", file=sys.stderr)  # noqa: T201
        return 2
    shown_url = sa.make_url(db_url).render_as_string(hide_password=True)
    print(f"accounts database: {shown_url}")  # noqa: T201

    engine = create_engine_for(db_url)
    try:
        upgrade_database(engine)
        results = seed_demo_accounts(engine, password)
    finally:
        engine.dispose()
    using = "DEMO_PASSWORD" if os.environ.get("DEMO_PASSWORD") else "the default demo password"
    for result in results:
        if result.created:
            print(f"created {result.username} ({result.display_name}) with {using}")  # noqa: T201
        else:
            print(f"found {result.username} ({result.display_name}); left unchanged")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
