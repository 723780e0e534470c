"""The widget's Sendbird session, driven from the server.

The custom session handler of Sendbird's guide, done where the guide says it belongs:

1. `open_chat` (on page load): resolve the signed-in account, make sure its Sendbird user
   exists, issue the first session token. Only then is the widget rendered (the widget uses
   the app's session only when `userId`, `sessionToken` and `configureSession` are all set).
2. `answer_token_request(request_id)`: the widget's `onSessionTokenRequired` arrives as
   an event; the handler re-checks the account, issues a fresh token for *that* account's
   Sendbird user and answers through `token_reply` (the bridge resolves or rejects).
3. `session_refreshed` / `session_error` / `session_closed`: the other callbacks, shown in
   the session panel's status and timeline.
4. `reconnect`, `end_session`, `sign_out`: remount with a fresh token, or revoke every token
   of the user, clear the widget's cache and unmount it.

The Sendbird API token never enters this state: handlers reach Sendbird through
`get_services()`. The session token does (the widget needs it) and is short-lived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypedDict

import reflex as rx

from sample_app import routes
from sample_app.accounts import AccountView
from sample_app.components.chat_ai_widget import (
    SessionErrorDetail,
    TokenReply,
    clear_widget_cache_script,
)
from sample_app.identity import sendbird_identity
from sample_app.sendbird_api import SendbirdError
from sample_app.services import get_services
from sample_app.session_tokens import IssuedSessionToken, SendbirdIdentity
from sample_app.state.auth import AuthState

logger = logging.getLogger(__name__)

MAX_TIMELINE_EVENTS = 50
NO_REPLY: TokenReply = {"request_id": 0, "token": "", "error": ""}


class SessionEvent(TypedDict):
    """One line of the session timeline."""

    at: str
    kind: str
    detail: str


class ChatSessionState(AuthState):
    """The widget's configuration and session for the signed-in account of this tab."""

    # Widget configuration (public by nature: the widget in the browser needs it).
    app_id: str = ""
    bot_id: str = ""
    api_host: str = ""
    ws_host: str = ""
    on_sandbox: bool = False
    # The signed-in account's Sendbird identity, derived on the server.
    sendbird_user_id: str = ""
    nickname: str = ""
    # The latest session token; the widget reads it once, at mount.
    session_token: str = ""
    token_expires_at: str = ""
    # The answer to the widget's latest onSessionTokenRequired.
    token_reply: TokenReply = NO_REPLY
    # Bumped to remount the widget (reconnect after the session closed).
    remount_key: int = 0
    # What the session panel shows.
    status: str = "Not started"
    status_tone: str = "gray"
    last_refresh_at: str = ""
    last_error: str = ""
    island_state: str = ""
    timeline: list[SessionEvent] = []
    # Whether the widget is rendered (a token exists and the session is not ended).
    widget_visible: bool = False

    # ---- helpers (not events) ----

    def _log(self, kind: str, detail: str = "") -> None:
        event: SessionEvent = {"at": _now_label(), "kind": kind, "detail": detail}
        self.timeline = [event, *self.timeline][:MAX_TIMELINE_EVENTS]

    def _set_status(self, status: str, tone: str) -> None:
        self.status = status
        self.status_tone = tone

    def _accept_token(self, issued: IssuedSessionToken) -> None:
        self.session_token = issued.token
        self.token_expires_at = issued.expires_at.isoformat()

    def _clear_session(self) -> None:
        self.session_token = ""
        self.token_expires_at = ""
        self.token_reply = NO_REPLY
        self.widget_visible = False
        self.island_state = ""

    async def _signed_in_identity(self) -> tuple[AccountView, SendbirdIdentity] | None:
        """The account behind this tab's sign-in token, checked on the server, and its identity."""
        account = await self.current_account()
        if account is None:
            return None
        return account, sendbird_identity(account, get_services().settings.user_id_prefix)

    async def _this_chats_identity(self) -> SendbirdIdentity | None:
        """The signed-in identity, but only if it is the one this tab's widget was mounted for.

        None when the tab is signed out, its sign-in session expired or was revoked, or
        another account has taken over the browser since the widget mounted.
        """
        signed_in = await self._signed_in_identity()
        if signed_in is None or signed_in[1].user_id != self.sendbird_user_id:
            return None
        return signed_in[1]

    # ---- page load ----

    @rx.event
    async def open_chat(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Ensure the Sendbird user, issue the first token, then let the widget render."""
        signed_in = await self._signed_in_identity()
        if signed_in is None:
            self._clear_session()
            yield rx.redirect(routes.SIGN_IN)
            return
        _, identity = signed_in
        services = get_services()
        settings = services.settings
        self.app_id = settings.app_id
        self.bot_id = settings.bot_id
        self.api_host = settings.widget_api_host
        self.ws_host = settings.widget_ws_host
        self.on_sandbox = settings.is_sandbox
        if identity.user_id != self.sendbird_user_id:
            # Another account in this tab than last time: start from a clean panel.
            self._clear_session()
            self.timeline = []
        self.sendbird_user_id = identity.user_id
        self.nickname = identity.nickname
        self.last_error = ""
        self._set_status("Issuing the first session token…", "amber")
        yield
        try:
            issued = await services.tokens.token_for(identity)
        except SendbirdError as error:
            self.last_error = str(error)
            self._set_status("Could not start the chat session", "red")
            self._log("error", f"first token: {error}")
            return
        self._accept_token(issued)
        self.widget_visible = True
        self._set_status("Token issued; connecting the widget", "blue")
        self._log("token issued", f"first token, expires {issued.expires_at:%H:%M:%S} UTC")

    # ---- the widget's session callbacks ----

    @rx.event
    async def answer_token_request(self, request_id: int) -> None:
        """onSessionTokenRequired: issue a fresh token for the signed-in account only."""
        identity = await self._this_chats_identity()
        if identity is None:
            self.token_reply = {
                "request_id": request_id,
                "token": "",
                "error": "You are signed out; sign in again to continue chatting.",
            }
            self._log("token refused", "the browser is not signed in as this chat's user")
            return
        self._set_status("Refreshing the session token…", "amber")
        try:
            issued = await get_services().tokens.token_for(identity, force_new=True)
        except SendbirdError as error:
            self.token_reply = {"request_id": request_id, "token": "", "error": str(error)}
            self.last_error = str(error)
            self._set_status("Token refresh failed", "red")
            self._log("token request failed", str(error))
            return
        self._accept_token(issued)
        self.token_reply = {"request_id": request_id, "token": issued.token, "error": ""}
        self._log("token issued", f"on request, expires {issued.expires_at:%H:%M:%S} UTC")

    @rx.event
    def session_refreshed(self) -> None:
        """onSessionRefreshed: the SDK is connected again with a fresh token or key."""
        self.last_refresh_at = _now_label()
        self.last_error = ""
        self._set_status("Connected (session refreshed)", "green")
        self._log("onSessionRefreshed")

    @rx.event
    def session_error(self, detail: SessionErrorDetail) -> None:
        """onSessionError: refreshing failed; the SDK asks again on its next attempt."""
        message = detail.get("message", "unknown error")
        code = detail.get("code", 0)
        self.last_error = f"{message} ({code})" if code else message
        self._set_status("Session error", "red")
        self._log("onSessionError", self.last_error)

    @rx.event
    def session_closed(self) -> None:
        """onSessionClosed: the session is over (revoked); offer to reconnect."""
        if not self.widget_visible or self.status == "Session closed":
            return  # no widget is meant to be live, or the SDK reported a revocation twice
        self._set_status("Session closed", "gray")
        self._log("onSessionClosed", "reconnect to start a new session")

    @rx.event
    def island_status(self, state: str, detail: str) -> None:
        """Progress of loading the widget bundle, and its failures."""
        self.island_state = state
        if state == "mounted":
            self._set_status("Connected", "green")
            self._log("widget mounted", f"React {detail} island")
        elif state == "error":
            self.last_error = detail
            self._set_status("Widget error", "red")
            self._log("widget error", detail)

    # ---- user actions ----

    @rx.event
    async def reconnect(self) -> AsyncIterator[None]:
        """Remount the widget with a fresh token (after a closed session or an error)."""
        signed_in = await self._signed_in_identity()
        if signed_in is None:
            self._clear_session()
            yield rx.redirect(routes.SIGN_IN)
            return
        self._set_status("Reconnecting…", "amber")
        yield
        try:
            issued = await get_services().tokens.token_for(signed_in[1], force_new=True)
        except SendbirdError as error:
            self.last_error = str(error)
            self._set_status("Reconnect failed", "red")
            self._log("error", f"reconnect: {error}")
            return
        self._accept_token(issued)
        self.widget_visible = True
        self.remount_key += 1
        self._log("reconnect", "widget remounted with a new token")

    async def _end_sendbird_session(self, user_id: str) -> AsyncIterator[rx.event.EventSpec | None]:
        """Unmount the widget, revoke every token of the user, and forget the widget's cache.

        The widget goes first: revoked while mounted, it would report a closed session.
        """
        self._clear_session()
        yield None  # push the unmount to the browser now
        try:
            await get_services().tokens.revoke(user_id)
        except SendbirdError as error:
            self.last_error = f"Revoking the Sendbird tokens failed: {error}"
            self._log("error", self.last_error)
        else:
            self._log("tokens revoked", "DELETE /v3/users/{id}/token")
        if self.app_id and self.bot_id:
            yield rx.call_script(clear_widget_cache_script(self.app_id, self.bot_id))

    @rx.event
    async def end_session(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Demo: end the chat session but stay signed in (reconnect starts a new one)."""
        identity = await self._this_chats_identity()
        if identity is None:
            self._clear_session()
            return
        async for script in self._end_sendbird_session(identity.user_id):
            yield script
        self._set_status("Session ended", "gray")

    @rx.event
    async def sign_out(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Revoke the Sendbird tokens, clear the widget, then end the app's own session."""
        signed_in = await self._signed_in_identity()
        if signed_in is not None:
            async for script in self._end_sendbird_session(signed_in[1].user_id):
                yield script
            await asyncio.to_thread(get_services().accounts.sign_out, self.auth_token)
            logger.info("account %s signed out", signed_in[0].id)
        self._clear_session()
        self.auth_token = ""
        self._forget_account()
        self.sendbird_user_id = ""
        self.timeline = []
        self._set_status("Not started", "gray")
        yield rx.redirect(routes.SIGN_IN)

    # ---- sandbox demo controls ----

    async def _sandbox_action(self, action: str) -> None:
        control = get_services().sandbox_control
        identity = await self._this_chats_identity()
        if control is None or identity is None:
            return
        await getattr(control, action)(identity.user_id)
        self._log("sandbox", action.replace("_", " "))

    @rx.event
    async def sandbox_expire_token(self) -> None:
        """Demo: expire the token now; the widget asks for a new one (onSessionTokenRequired)."""
        await self._sandbox_action("expire_token")

    @rx.event
    async def sandbox_expire_session_key(self) -> None:
        """Demo: expire the session key; the SDK re-logs in with its token."""
        await self._sandbox_action("expire_session_key")

    @rx.event
    async def sandbox_revoke(self) -> None:
        """Demo: revoke the session at Sendbird's side (onSessionClosed)."""
        await self._sandbox_action("revoke")


def _now_label() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")
