"""Shared state of one sandbox instance and the session operations that span its parts.

Revoking a user, for instance, touches the store (tokens and keys), and every live socket of the
user (``EXPR`` then close). The Platform API (``DELETE /v3/users/{id}/token``) and the control
surface (``/__sandbox__/users/{id}/revoke``) must behave identically, so the operation lives
here rather than in either of them.
"""

from __future__ import annotations

import logging
from typing import Any

from .config import SandboxConfig
from .credentials import Credentials
from .faults import FaultEngine, Stats
from .httputil import ApiError, now_ms
from .hub import Hub
from .store import Store

logger = logging.getLogger("sample_app.sandbox")

EXPR_TOKEN_EXPIRED = 400302
EXPR_KEY_EXPIRED = 400309
EXPR_REVOKED = 400310


def user_not_found() -> ApiError:
    """Sendbird's answer for an unknown user id."""
    return ApiError(400201, '"User" not found.')


class SandboxContext:
    """Everything one sandbox instance owns.

    Args:
        config: Settings; ``db_path`` decides where data lives.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.credentials = Credentials(self.store, config)
        self.faults = FaultEngine(config.rate_limits)
        self.stats = Stats()
        self.hub = Hub()
        self.ensure_bot()

    def ensure_bot(self) -> None:
        """Create the bot user if it is missing (fresh database or after reset)."""
        self.store.ensure_user(
            self.config.bot_id, self.config.bot_nickname, is_bot=True, now=now_ms()
        )

    def require_user(self, user_id: str) -> dict[str, Any]:
        """Return the user row or raise 400201."""
        user = self.store.get_user(user_id)
        if user is None:
            raise user_not_found()
        return user

    async def reset(self) -> None:
        """Drop all data, faults, counters and sockets; re-create the bot."""
        await self.hub.cancel_tasks()
        closed = await self.hub.close_all(1000, "sandbox reset")
        self.store.reset()
        self.ensure_bot()
        self.faults.reset()
        self.stats.reset()
        logger.info("sandbox reset (%d sockets closed)", closed)

    async def expire_tokens(self, user_id: str) -> dict[str, Any]:
        """Expire every token of the user now and tell its sockets (``EXPR 400302``)."""
        self.require_user(user_id)
        count = self.store.expire_tokens(user_id, now_ms())
        notified = await self.hub.send_to_users(
            [user_id], "EXPR", {"reason": EXPR_TOKEN_EXPIRED, "expires_in": 0}
        )
        logger.info(
            "expired %d token(s) of user %r, %d socket(s) notified", count, user_id, notified
        )
        return {
            "ok": True,
            "user_id": user_id,
            "tokens_expired": count,
            "connections_notified": notified,
        }

    async def expire_session_keys(self, user_id: str) -> dict[str, Any]:
        """Expire every session key of the user now and tell its sockets (``EXPR 400309``)."""
        self.require_user(user_id)
        count = self.store.expire_session_keys(user_id, now_ms())
        notified = 0
        for conn in self.hub.connections_of(user_id):
            conn.expr_sent_for = conn.key_sha256
            if await conn.send("EXPR", {"reason": EXPR_KEY_EXPIRED, "expires_in": 0}):
                notified += 1
        logger.info(
            "expired %d session key(s) of user %r, %d socket(s) notified", count, user_id, notified
        )
        return {
            "ok": True,
            "user_id": user_id,
            "session_keys_expired": count,
            "connections_notified": notified,
        }

    async def revoke(self, user_id: str) -> dict[str, Any]:
        """Revoke all tokens and session keys of the user; ``EXPR 400310`` and close sockets."""
        self.require_user(user_id)
        tokens = self.store.revoke_tokens(user_id)
        keys = self.store.revoke_session_keys(user_id)
        conns = self.hub.connections_of(user_id)
        for conn in conns:
            await conn.send("EXPR", {"reason": EXPR_REVOKED, "expires_in": 0})
            await conn.close(1000, "session revoked")
        logger.info(
            "revoked user %r: %d token(s), %d session key(s), %d socket(s) closed",
            user_id,
            tokens,
            keys,
            len(conns),
        )
        return {
            "ok": True,
            "user_id": user_id,
            "tokens_revoked": tokens,
            "session_keys_revoked": keys,
            "connections_closed": len(conns),
        }

    async def disconnect(self, user_id: str) -> dict[str, Any]:
        """Close the user's sockets without touching credentials (the SDK reconnects)."""
        self.require_user(user_id)
        conns = self.hub.connections_of(user_id)
        for conn in conns:
            await conn.close(1000, "closed by sandbox control")
        logger.info("closed %d socket(s) of user %r", len(conns), user_id)
        return {"ok": True, "user_id": user_id, "connections_closed": len(conns)}

    async def delete_user(self, user_id: str) -> None:
        """Delete a user (Platform API ``DELETE /v3/users/{id}``); its sockets are closed."""
        self.require_user(user_id)
        for conn in self.hub.connections_of(user_id):
            await conn.send("EXPR", {"reason": 400301, "expires_in": 0})
            await conn.close(1000, "user deleted")
        self.store.delete_user(user_id)
        logger.info("deleted user %r", user_id)

    async def shutdown(self) -> None:
        """Stop background work, close sockets and the database."""
        await self.hub.cancel_tasks()
        await self.hub.close_all(1001, "sandbox shutting down")
        self.store.close()
