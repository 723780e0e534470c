"""Shared state of one sandbox instance and the session operations that span its parts.

Revoking a user, for instance, touches the store (tokens and keys), and every live socket of the
user (``EXPR`` then close). The Platform API (``DELETE /v3/users/{id}/token``) and the control
surface (``/__sandbox__/users/{id}/revoke``) must behave identically, so the operation lives
here rather than in either of them.

The store's work runs on :attr:`SandboxContext.db`, never on the event loop; each operation
hands it one function for all its reads and writes, then talks to the sockets on the loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .config import SandboxConfig
from .credentials import Credentials
from .dbthread import DatabaseThread
from .faults import FaultEngine, Stats
from .httputil import ApiError, now_ms
from .hub import Hub
from .store import Store

logger = logging.getLogger("sample_app.sandbox")

EXPR_TOKEN_EXPIRED = 400302
EXPR_KEY_EXPIRED = 400309
EXPR_REVOKED = 400310

ANY_USER = "*"
"""The user id under which a login refusal applies to everyone."""
DEFAULT_REFUSAL_MESSAGE = "Login refused by the sandbox."
LOGIN_REFUSAL_MESSAGES = {
    400300: "User is deactivated.",
    400301: "User not found.",
    400302: "Invalid session token.",
    400303: "Invalid session key.",
    400309: "This session has expired.",
    400310: "The session has been revoked.",
    400500: "Too many user websocket connections.",
    500901: "Internal error.",
}


@dataclass
class LoginRefusal:
    """A pending "refuse the next LOGIs" order of the control surface.

    Attributes:
        code: Sendbird error code sent in the failed LOGI.
        remaining: LOGIs still to refuse; -1 means until cleared.
        message: Error message sent with it.
    """

    code: int
    remaining: int
    message: str

    def to_json(self, user_id: str) -> dict[str, Any]:
        """The refusal as the control surface shows it."""
        return {
            "user_id": user_id,
            "code": self.code,
            "count": self.remaining,
            "message": self.message or DEFAULT_REFUSAL_MESSAGE,
        }


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
        self.db = DatabaseThread()
        self.store = Store(
            config.db_path, credential_retention_ms=int(config.credential_retention * 1000)
        )
        self.credentials = Credentials(self.store, config)
        self.faults = FaultEngine(config.rate_limits)
        self.stats = Stats()
        self.hub = Hub()
        self.login_refusals: dict[str, LoginRefusal] = {}
        self.ensure_bot()

    def ensure_bot(self) -> None:
        """Create the bot user if it is missing (fresh database or after reset)."""
        self.store.ensure_user(
            self.config.bot_id, self.config.bot_nickname, is_bot=True, now=now_ms()
        )

    def require_user(self, user_id: str) -> dict[str, Any]:
        """Return the user row or raise 400201 (a store call: run it on :attr:`db`)."""
        user = self.store.get_user(user_id)
        if user is None:
            raise user_not_found()
        return user

    def _reset_data(self) -> None:
        self.store.reset()
        self.ensure_bot()

    async def reset(self) -> None:
        """Drop all data, faults, counters and sockets; re-create the bot."""
        await self.hub.cancel_tasks()
        closed = await self.hub.close_all(1000, "sandbox reset")
        await self.db.run(self._reset_data)
        self.faults.reset()
        self.login_refusals.clear()
        self.stats.reset()
        logger.info("sandbox reset (%d sockets closed)", closed)

    async def expire_tokens(self, user_id: str) -> dict[str, Any]:
        """Expire every token issued to the user so far and tell its sockets (``EXPR 400302``).

        The user's token version goes up, so older tokens answer 400302 (not 400310, as a
        revoke would) and tokens issued from now on carry the new version.
        """

        def expire() -> int:
            self.require_user(user_id)
            now = now_ms()
            before = self.store.bump_token_version(user_id, revoke=False, now=now)
            return self.store.count_live_tokens(user_id, int(before["version"]), now)

        count = await self.db.run(expire)
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

        def expire() -> int:
            self.require_user(user_id)
            return self.store.expire_session_keys(user_id, now_ms())

        count = await self.db.run(expire)
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
        """Revoke all tokens and session keys of the user; ``EXPR 400310`` and close sockets.

        As at Sendbird, revoking all tokens increments the user's token version: every token
        issued before (a JWT carrying an older ``v``) answers 400310 from then on.
        """

        def revoke() -> tuple[int, int]:
            self.require_user(user_id)
            now = now_ms()
            before = self.store.bump_token_version(user_id, revoke=True, now=now)
            tokens = self.store.count_live_tokens(user_id, int(before["revoked_below"]), now)
            return tokens, self.store.revoke_session_keys(user_id, now)

        tokens, keys = await self.db.run(revoke)
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
        await self.db.run(self.require_user, user_id)
        conns = self.hub.connections_of(user_id)
        for conn in conns:
            await conn.close(1000, "closed by sandbox control")
        logger.info("closed %d socket(s) of user %r", len(conns), user_id)
        return {"ok": True, "user_id": user_id, "connections_closed": len(conns)}

    async def delete_user(self, user_id: str) -> dict[str, Any]:
        """Delete a user (``DELETE /v3/users/{id}``, or the dashboard); sockets get ``EXPR 400301``.

        Its credentials and channel memberships go with it, so a user re-created with the
        same id has no channels and none of its old tokens work.
        """
        await self.db.run(self.require_user, user_id)
        conns = self.hub.connections_of(user_id)
        for conn in conns:
            await conn.send("EXPR", {"reason": 400301, "expires_in": 0})
            await conn.close(1000, "user deleted")
        deleted = await self.db.run(self.store.delete_user, user_id)
        self.login_refusals.pop(user_id, None)
        logger.info(
            "deleted user %r (%d membership(s), %d socket(s) closed)",
            user_id,
            deleted["memberships"],
            len(conns),
        )
        return {
            "ok": True,
            "user_id": user_id,
            "memberships_deleted": deleted["memberships"],
            "connections_closed": len(conns),
        }

    def refuse_login(
        self, user_id: str, code: int, count: int, message: str | None = None
    ) -> dict[str, Any]:
        """Make the next ``count`` LOGIs of ``user_id`` (``"*"``: anyone) fail with ``code``.

        ``count`` -1 refuses until cleared, 0 clears the refusal. The refusal applies to the
        handshake login and to in-socket LOGI (session key refresh) alike.
        """
        if count == 0:
            self.login_refusals.pop(user_id, None)
            return {"user_id": user_id, "code": code, "count": 0, "message": ""}
        refusal = LoginRefusal(code, count, message or LOGIN_REFUSAL_MESSAGES.get(code, ""))
        self.login_refusals[user_id] = refusal
        logger.info("refusing the next %d login(s) of %r with %d", count, user_id, code)
        return refusal.to_json(user_id)

    def take_login_refusal(self, user_id: str) -> ApiError | None:
        """The error the next LOGI of ``user_id`` must get, consuming one refusal, or None."""
        for key in (user_id, ANY_USER):
            refusal = self.login_refusals.get(key)
            if refusal is None:
                continue
            if refusal.remaining > 0:
                refusal.remaining -= 1
                if refusal.remaining == 0:
                    del self.login_refusals[key]
            self.stats.websocket["logins_refused"] += 1
            return ApiError(refusal.code, refusal.message or DEFAULT_REFUSAL_MESSAGE)
        return None

    async def shutdown(self) -> None:
        """Stop background work, close sockets and the database (after queued store work)."""
        await self.hub.cancel_tasks()
        await self.hub.close_all(1001, "sandbox shutting down")
        if not self.db.closed:
            await self.db.run(self.store.close)
            self.db.shutdown()
