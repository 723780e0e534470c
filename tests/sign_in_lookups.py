"""Counting the accounts database's sign-in lookups, where they happen: at the engine."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine


class SignInLookups:
    """How many times `engine` was asked which sign-in a token is (SELECTs of auth_sessions).

    Counts from its creation; `stop()` removes the listener.
    """

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._engine = engine
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lstrip().upper()
        if text.startswith("SELECT") and "FROM AUTH_SESSIONS" in text:
            self.count += 1

    def stop(self) -> None:
        """Stop counting."""
        sa.event.remove(self._engine, "before_cursor_execute", self._seen)
