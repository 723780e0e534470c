"""The chat WebSocket the widget's SDK connects to.

The credential travels as the WebSocket subprotocol: the URL-encoded JSON ``{"token": ...}`` on
the first connect and ``{"auth": <session key>}`` on reconnects. Chrome drops the connection
unless the server echoes exactly the offered ``Sec-WebSocket-Protocol`` value, so the sandbox
accepts with that value verbatim.

Frames are ``CODE`` + JSON + a newline; a frame may carry several commands. Bad input (malformed
lines, unknown commands, invalid JSON, oversize frames) is answered with ``EROR`` and the socket
stays usable: a test or a buggy client must not take the whole sandbox down.

Store work runs on ``ctx.db`` (never on the loop), one function per command, so a check and
the write it guards stay together; a socket's commands are handled one after the other, so
its messages are stored and acked in the order they were sent. A session may read and write
only the channels its user belongs to (:mod:`.access`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import zlib
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import unquote

from starlette.websockets import WebSocket

from .access import require_channel_access
from .bot import reply_to
from .context import SandboxContext
from .credentials import IssuedKey, raise_for_session_key, short_hash
from .httputil import ApiError, now_ms
from .hub import Connection, encode_command
from .payloads import logi_payload, member_user, message_json
from .store import CREDENTIAL_OK, sha256_hex

logger = logging.getLogger("sample_app.sandbox.ws")

SILENT_COMMANDS = frozenset({"TPST", "TPEN", "MACK", "DLVR", "PONG"})
MAX_ERROR_STREAK = 100
TYPING_START = 10900
TYPING_END = 10901
_REQ_ID_RE = re.compile(r'"req_id"\s*:\s*"([^"\\]{1,128})"')
_CODE_RE = re.compile(r"^[A-Z]{4}$")


class FrameError(Exception):
    """A command that must be answered with ``EROR``."""

    def __init__(self, code: int, message: str, req_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.req_id = req_id


def parse_credential(
    subprotocol: str | None, headers: dict[str, str]
) -> tuple[str | None, str | None]:
    """Extract ``(token, session_key)`` from the subprotocol (or native SDK headers).

    Returns:
        A pair where at most one element is set.
    """
    if subprotocol:
        try:
            data = json.loads(unquote(subprotocol))
        except ValueError:
            data = None
        if isinstance(data, dict):
            token, auth = data.get("token"), data.get("auth")
            if isinstance(auth, str) and auth:
                return None, auth
            if isinstance(token, str) and token:
                return token, None
    native_auth = headers.get("sendbird-ws-auth")
    if native_auth:
        return None, native_auth
    native_token = headers.get("sendbird-ws-token")
    if native_token:
        return native_token, None
    return None, None


def split_commands(text: str) -> list[tuple[str, dict[str, Any] | FrameError]]:
    """Split a frame into ``(code, payload)`` pairs; bad lines become :class:`FrameError`."""
    commands: list[tuple[str, dict[str, Any] | FrameError]] = []
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        req_id = _guess_req_id(line)
        code = line[:4]
        if not _CODE_RE.match(code):
            commands.append(
                (
                    "????",
                    FrameError(
                        400403,
                        "Malformed frame: expected a 4-letter command followed by a JSON object.",
                        req_id,
                    ),
                )
            )
            continue
        body = line[4:].strip()
        if not body:
            commands.append((code, {}))
            continue
        try:
            payload = json.loads(body)
        except ValueError:
            commands.append((code, FrameError(400403, f"Invalid JSON payload for {code}.", req_id)))
            continue
        if not isinstance(payload, dict):
            commands.append(
                (code, FrameError(400403, f"The payload of {code} must be a JSON object.", req_id))
            )
            continue
        commands.append((code, payload))
    return commands


def _guess_req_id(text: str) -> str | None:
    """Best-effort ``req_id`` of a frame that cannot be parsed, so the EROR can carry it."""
    match = _REQ_ID_RE.search(text)
    return match.group(1) if match else None


class ChatSocket:
    """Protocol handler for one accepted socket.

    Args:
        ctx: The sandbox instance.
        conn: The registered connection.
    """

    def __init__(self, ctx: SandboxContext, conn: Connection) -> None:
        self.ctx = ctx
        self.conn = conn
        self.config = ctx.config

    # -- login ----------------------------------------------------------------------------

    async def login(self, token: str | None, key: str | None, query: dict[str, str]) -> bool:
        """Authenticate from the handshake credential and send LOGI (success or error)."""
        self.ctx.stats.websocket["LOGI"] += 1
        try:
            app_id = query.get("ai")
            if app_id and app_id != self.config.app_id:
                raise ApiError(400304, "Application not found.")
            wanted = query.get("user_id") or None
            user_id, how = await self.ctx.db.run(self._identify, token, key, wanted)
            if refusal := self.ctx.take_login_refusal(user_id):
                raise refusal
            user, key_value, digest, expires_at = await self.ctx.db.run(
                self._open_session, user_id, key
            )
        except ApiError as error:
            self.ctx.stats.websocket["login_errors"] += 1
            logger.info(
                "conn %d: login failed with %d (%s)", self.conn.conn_id, error.code, error.message
            )
            await self.conn.send(
                "LOGI", {"error": True, "code": error.code, "message": error.message}
            )
            return False
        self.conn.user_id = user_id
        self.bind_key(digest, expires_at)
        logger.info("conn %d: user %r logged in with %s", self.conn.conn_id, user_id, how)
        payload = logi_payload(
            user, key=key_value, ekey=secrets.token_urlsafe(24), login_ts=now_ms()
        )
        await self.conn.send("LOGI", payload)
        return True

    def _identify(self, token: str | None, key: str | None, wanted: str | None) -> tuple[str, str]:
        """The user behind the handshake credential, and how it logged in (store thread)."""
        if key is not None:
            check = self.ctx.credentials.check_session_key_digest(sha256_hex(key))
            raise_for_session_key(check)
            if wanted and wanted != check.user_id:
                raise ApiError(400303, "Invalid session key.")
            return check.user_id, f"session key {sha256_hex(key)[:12]}..."
        if token is not None:
            user_id = self.ctx.credentials.require_token(token, wanted)
            return user_id, f"token {short_hash(token)}..."
        if self.config.allow_login_without_token and wanted:
            # Sendbird without "Deny login": a user id alone connects, creating the user.
            if self.ctx.store.get_user(wanted) is None:
                self.ctx.store.create_user(wanted, "", "", now=now_ms())
            return wanted, "no token (login without a token is allowed)"
        raise ApiError(400302, "A session token is required.")

    def _open_session(self, user_id: str, key: str | None) -> tuple[dict[str, Any], str, str, int]:
        """The user row and the session key to bind (the presented one or a new one)."""
        user = self.ctx.require_user(user_id)
        if key is not None:
            check = self.ctx.credentials.check_session_key_digest(sha256_hex(key))
            raise_for_session_key(check)
            key_value, digest, expires_at = key, sha256_hex(key), check.expires_at
        else:
            issued = self.ctx.credentials.issue_session_key(user_id)
            key_value, digest, expires_at = issued.key, issued.key_sha256, issued.expires_at
        self.ctx.store.mark_login(user_id)
        return user, key_value, digest, expires_at

    def bind_key(self, digest: str, expires_at: int) -> None:
        """Make ``digest`` the socket's session key and arm its expiry timer."""
        self.conn.key_sha256 = digest
        self.conn.key_expires_at = expires_at
        self.conn.expr_sent_for = None
        delay = max(0.0, (expires_at - now_ms()) / 1000)
        loop = asyncio.get_running_loop()
        handle = loop.call_later(delay, self._key_timer_fired, digest)
        self.conn.set_key_timer(handle)

    def _key_timer_fired(self, digest: str) -> None:
        if self.conn.closed or self.conn.key_sha256 != digest:
            return
        self.ctx.hub.spawn(self._send_key_expired(digest), name=f"expr-{self.conn.conn_id}")

    async def _send_key_expired(self, digest: str) -> None:
        check = await self.ctx.db.run(self.ctx.credentials.check_session_key_digest, digest)
        if check.state == CREDENTIAL_OK:
            # The loop's monotonic timer fired a little before the wall-clock expiry.
            self.bind_key(digest, check.expires_at)
            return
        if self.conn.expr_sent_for == digest or self.conn.key_sha256 != digest:
            return
        self.conn.expr_sent_for = digest
        logger.info(
            "conn %d: session key of %r expired, sending EXPR 400309",
            self.conn.conn_id,
            self.conn.user_id,
        )
        await self.conn.send("EXPR", {"reason": 400309, "expires_in": 0})

    async def linger_after_login_error(self) -> None:
        """Leave the socket open briefly (the SDK closes it itself), then close it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.login_error_close_delay
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                message = await asyncio.wait_for(self.conn.websocket.receive(), remaining)
            except TimeoutError:
                break
            except Exception:  # socket already gone
                return
            if message["type"] == "websocket.disconnect":
                self.conn.closed = True
                return
        await self.conn.close(1000, "login failed")

    # -- receive loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the peer leaves or the sandbox closes the socket."""
        while True:
            try:
                message = await self.conn.websocket.receive()
            except Exception:  # closed under our feet
                return
            if message["type"] == "websocket.disconnect":
                self.conn.closed = True
                return
            if message["type"] != "websocket.receive":
                continue
            text = await self._decode(message)
            if text is None:
                continue
            for code, payload in split_commands(text):
                await self._dispatch(code, payload)
            if self.conn.error_streak > MAX_ERROR_STREAK:
                logger.warning("conn %d: too many protocol errors, closing", self.conn.conn_id)
                await self.conn.close(1008, "too many protocol errors")
                return

    async def _decode(self, message: MutableMapping[str, Any]) -> str | None:
        """Frame text, or ``None`` after answering ``EROR`` for oversize or undecodable data."""
        limit = self.config.ws_max_payload
        text = message.get("text")
        if text is not None:
            size = len(text.encode("utf-8"))
            if size > limit:
                await self._send_oversize(size, _guess_req_id(text))
                return None
            return str(text)
        data: bytes = message.get("bytes") or b""
        if len(data) > limit:
            await self._send_oversize(len(data), None)
            return None
        try:
            if data[:2] == b"\x1f\x8b":
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = inflater.decompress(data, limit + 1)
                if len(data) > limit:
                    await self._send_oversize(len(data), None)
                    return None
            return data.decode("utf-8")
        except (UnicodeDecodeError, zlib.error):
            await self._send_error(
                "????", FrameError(400403, "Binary frame is neither UTF-8 text nor gzip.")
            )
            return None

    async def _send_oversize(self, size: int, req_id: str | None) -> None:
        await self._send_error(
            "????",
            FrameError(
                400111,
                f"Frame too large: {size} bytes (limit {self.config.ws_max_payload}).",
                req_id,
            ),
        )

    async def _send_error(self, code: str, error: FrameError) -> None:
        self.conn.error_streak += 1
        self.ctx.stats.websocket["EROR"] += 1
        logger.info(
            "conn %d: EROR %d for %s: %s", self.conn.conn_id, error.code, code, error.message
        )
        payload: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.req_id:
            payload["req_id"] = error.req_id
        await self.conn.send("EROR", payload)

    async def _dispatch(self, code: str, payload: dict[str, Any] | FrameError) -> None:
        if isinstance(payload, FrameError):
            await self._send_error(code, payload)
            return
        self.ctx.stats.websocket[code] += 1
        req_id = payload.get("req_id")
        req_id = req_id if isinstance(req_id, str) else None
        handler = {
            "PING": self.on_ping,
            "LOGI": self.on_logi,
            "MESG": self.on_mesg,
            "READ": self.on_read,
        }.get(code)
        if handler is None:
            if code in SILENT_COMMANDS:
                return
            await self._send_error(
                code, FrameError(400111, f"Unknown or unsupported command: {code}.", req_id)
            )
            return
        try:
            await handler(payload, req_id)
            self.conn.error_streak = 0
        except ApiError as error:
            await self._send_error(code, FrameError(error.code, error.message, req_id))

    # -- commands -------------------------------------------------------------------------

    async def on_ping(self, payload: dict[str, Any], req_id: str | None) -> None:
        """``PING`` → ``PONG``; the SDK only checks the command code."""
        await self.conn.send("PONG", {"id": payload.get("id"), "ts": now_ms()})

    async def on_logi(self, payload: dict[str, Any], req_id: str | None) -> None:
        """Session key refresh: validate the token, answer a FULL LOGI with ``new_key``."""
        token = payload.get("token")
        try:
            user_id = await self.ctx.db.run(
                self.ctx.credentials.require_token,
                token if isinstance(token, str) else None,
                self.conn.user_id,
            )
            if refusal := self.ctx.take_login_refusal(user_id):
                raise refusal

            def refresh() -> tuple[dict[str, Any], IssuedKey]:
                user = self.ctx.require_user(user_id)
                return user, self.ctx.credentials.issue_session_key(user_id)

            user, issued = await self.ctx.db.run(refresh)
        except ApiError as error:
            self.ctx.stats.websocket["login_errors"] += 1
            logger.info(
                "conn %d: key refresh for %r failed with %d",
                self.conn.conn_id,
                self.conn.user_id,
                error.code,
            )
            reply: dict[str, Any] = {"error": True, "code": error.code, "message": error.message}
            if req_id is not None:
                reply["req_id"] = req_id
            await self.conn.send("LOGI", reply)
            return
        self.bind_key(issued.key_sha256, issued.expires_at)
        logger.info(
            "conn %d: session key of %r refreshed with token %s...",
            self.conn.conn_id,
            user_id,
            short_hash(str(token)),
        )
        body = logi_payload(user, key=issued.key, ekey=secrets.token_urlsafe(24), login_ts=now_ms())
        body["new_key"] = issued.key
        if req_id is not None:
            body["req_id"] = req_id
        await self.conn.send("LOGI", body)

    def _require_session(self, user_id: str | None, key_sha256: str | None) -> str:
        """The socket's user, if its session key is still usable (store thread)."""
        if user_id is None or key_sha256 is None:
            raise ApiError(400108, "Not logged in.")
        check = self.ctx.credentials.check_session_key_digest(key_sha256)
        raise_for_session_key(check)
        return user_id

    def _require_member(self, channel_url: object, user_id: str) -> str:
        """The channel URL of a command, if the user belongs to it (store thread)."""
        if channel_url is None:
            raise ApiError(400105, '"channel_url" is required.')
        if not isinstance(channel_url, str):
            raise ApiError(400100, '"channel_url" should be a string.')
        require_channel_access(self.ctx.store, channel_url, user_id)
        return channel_url

    async def on_mesg(self, payload: dict[str, Any], req_id: str | None) -> None:
        """Store a user message, ack it (same ``req_id``) and let the bot answer."""
        text = payload.get("message")
        fields = {}
        for name in ("custom_type", "data"):
            value = payload.get(name, "")
            fields[name] = value if isinstance(value, str) else ""
        mention_type = payload.get("mention_type", "users")
        user_id, key_sha256 = self.conn.user_id, self.conn.key_sha256

        def store_message() -> tuple[str, dict[str, Any], list[str]]:
            sender = self._require_session(user_id, key_sha256)
            channel_url = self._require_member(payload.get("channel_url"), sender)
            if text is None:
                raise ApiError(400105, '"message" is required.')
            if not isinstance(text, str):
                raise ApiError(400100, '"message" should be a string.')
            row = self.ctx.store.add_message(
                channel_url,
                sender,
                text,
                custom_type=fields["custom_type"],
                data=fields["data"],
                mention_type=mention_type if isinstance(mention_type, str) else "users",
                now=now_ms(),
            )
            return channel_url, row, self.ctx.store.member_ids(channel_url)

        channel_url, row, members = await self.ctx.db.run(store_message)
        await self.conn.send("MESG", message_json(row, req_id=req_id))
        await self.ctx.hub.send_to_users(members, "MESG", message_json(row), exclude=self.conn)
        bot_id = self.config.bot_id
        if row["user_id"] != bot_id and bot_id in members:
            self.ctx.hub.spawn(
                bot_answer(self.ctx, channel_url, str(text)), name=f"bot-{row['msg_id']}"
            )

    async def on_read(self, payload: dict[str, Any], req_id: str | None) -> None:
        """Mark the channel read and ack with the reader and a timestamp."""
        user_id, key_sha256 = self.conn.user_id, self.conn.key_sha256
        ts = now_ms()

        def mark_read() -> tuple[str, dict[str, Any]]:
            reader = self._require_session(user_id, key_sha256)
            channel_url = self._require_member(payload.get("channel_url"), reader)
            self.ctx.store.mark_read(channel_url, reader, ts)
            return channel_url, self.ctx.require_user(reader)

        channel_url, user = await self.ctx.db.run(mark_read)
        reply: dict[str, Any] = {
            "channel_url": channel_url,
            "channel_type": "group",
            "user": member_user(user, online=True),
            "ts": ts,
        }
        if req_id is not None:
            reply = {"req_id": req_id, **reply}
        await self.conn.send("READ", reply)


async def bot_answer(ctx: SandboxContext, channel_url: str, text: str) -> None:
    """Typing start, deterministic reply, typing end, then the reply message (no ``req_id``)."""
    config = ctx.config

    def bot_and_members() -> tuple[dict[str, Any] | None, list[str]]:
        return ctx.store.get_user(config.bot_id), ctx.store.member_ids(channel_url)

    bot, members = await ctx.db.run(bot_and_members)
    if bot is None:
        return
    bot_obj = member_user(bot, online=True)

    def typing(cat: int) -> dict[str, Any]:
        return {
            "cat": cat,
            "channel_url": channel_url,
            "channel_type": "group",
            "data": bot_obj,
            "ts": now_ms(),
        }

    await asyncio.sleep(config.bot_typing_delay)
    await ctx.hub.send_to_users(members, "SYEV", typing(TYPING_START))
    reply = reply_to(text)
    await asyncio.sleep(config.bot_reply_delay)
    await ctx.hub.send_to_users(members, "SYEV", typing(TYPING_END))

    def store_reply() -> dict[str, Any] | None:
        if ctx.store.get_channel(channel_url) is None:
            return None
        return ctx.store.add_message(
            channel_url,
            config.bot_id,
            reply.text,
            extended_payload=reply.extended_payload,
            now=now_ms(),
        )

    row = await ctx.db.run(store_reply)
    if row is None:
        return
    await ctx.hub.send_to_users(members, "MESG", message_json(row))
    logger.info("bot answered in %s (topic %s)", channel_url, reply.topic)


async def handle_websocket(ctx: SandboxContext, websocket: WebSocket) -> None:
    """ASGI WebSocket entry point: accept with the echoed subprotocol, log in, serve."""
    offered = list(websocket.scope.get("subprotocols") or [])
    subprotocol = offered[0] if offered else None
    headers = {k.lower(): v for k, v in websocket.headers.items()}
    token, key = parse_credential(subprotocol, headers)
    query = dict(websocket.query_params)
    await websocket.accept(subprotocol=subprotocol)
    conn = ctx.hub.new_connection(websocket)
    ctx.stats.websocket["connections"] += 1
    socket = ChatSocket(ctx, conn)
    try:
        if not await socket.login(token, key, query):
            await socket.linger_after_login_error()
            return
        await socket.run()
    finally:
        ctx.hub.remove(conn)
        conn.closed = True
        if conn.user_id and not ctx.hub.connections_of(conn.user_id):
            ctx.db.submit(ctx.store.set_last_seen, conn.user_id, now_ms())
        logger.info("conn %d: closed (user %r)", conn.conn_id, conn.user_id)


__all__ = ["ChatSocket", "encode_command", "handle_websocket", "parse_credential", "split_commands"]
