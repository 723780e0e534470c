"""The widget's Sendbird session, driven from the server.

The widget's custom session handler, with every decision made on the server:

1. `open_chat` (on page load): check the sign-in, make sure the account's Sendbird user
   exists, issue the first session token. Only then is the widget rendered (the widget uses
   the app's session only when `userId`, `sessionToken` and `configureSession` are all set).
2. `answer_token_request(request_id)`: the widget's `onSessionTokenRequired` arrives as
   an event; the handler re-checks the sign-in, issues a fresh token for *that* account's
   Sendbird user and answers through `token_reply` (the bridge resolves or rejects).
3. `session_refreshed` / `session_error` / `session_closed`: the other callbacks, shown in
   the session panel's status and timeline. `connection_status` is the SDK's own connection
   state as the bridge observes it: the panel says "Connected" only once the SDK has
   connected, not when the widget's bundle has mounted (`island_status`).
4. `reconnect`, `end_session`: remount with a fresh token, or revoke every token of the
   user, clear the widget's cache and unmount it. Sign-out (in `auth.py`) ends the session
   the same way.

The Sendbird API token never enters this state: handlers reach Sendbird through
`get_services()`. The session token does (the widget needs it) and is short-lived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TypedDict

import httpx
import reflex as rx
from reflex.event import EventSpec

from sample_app import routes
from sample_app.components.chat_ai_widget import (
    CONNECTION_STATES,
    SessionErrorDetail,
    TokenReply,
    clear_widget_cache_script,
)
from sample_app.identity import SendbirdIdentity
from sample_app.sendbird_api import SendbirdError
from sample_app.services import get_services
from sample_app.session_tokens import IssuedSessionToken
from sample_app.state.auth import AuthState, SignedInUser
from sample_app.state.session_phase import PHASE_DISPLAY, SessionPhase

logger = logging.getLogger(__name__)

# The session panel's history, newest first. Every event that logs sends the whole list
# again in its delta (a token refresh does), so it is kept to what the panel shows usefully.
MAX_TIMELINE_EVENTS = 20
# Browser-sent text (error messages, island details) is cut to this many characters.
MAX_REPORTED_TEXT = 300
NO_REPLY: TokenReply = {"request_id": 0, "token": "", "error": ""}
SIGNED_OUT_REPLY = "You are signed out; sign in again to continue chatting."
# Phases a late "disconnected"/"failed" must not overwrite: the session is already over.
_SESSION_OVER = frozenset({SessionPhase.CLOSED, SessionPhase.ENDED})
# A revocation that failed (after the client's own retries) is tried once more after this.
REVOCATION_RETRY_PAUSE_SECONDS = 1.0


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
    widget_api_host: str = ""
    widget_ws_host: str = ""
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
    # What the session panel shows (`phase` is a SessionPhase value).
    phase: str = SessionPhase.NOT_STARTED.value
    last_refresh_at: str = ""
    last_error: str = ""
    timeline: list[SessionEvent] = []
    # Whether the widget is rendered (a token exists and the session is not ended).
    widget_visible: bool = False

    # ---- what the panel shows of the phase ----

    @rx.var
    def status(self) -> str:
        """The phase as the panel's status text."""
        return PHASE_DISPLAY[SessionPhase(self.phase)].label

    @rx.var
    def status_tone(self) -> str:
        """The badge colour of the phase."""
        return PHASE_DISPLAY[SessionPhase(self.phase)].tone

    @rx.var
    def reconnect_offered(self) -> bool:
        """Whether Reconnect makes sense now (no widget, or its session is over or failed)."""
        return not self.widget_visible or PHASE_DISPLAY[SessionPhase(self.phase)].offers_reconnect

    # ---- helpers (private: the browser cannot call these) ----

    def _log(self, kind: str, detail: str = "") -> None:
        event: SessionEvent = {"at": _now_label(), "kind": kind, "detail": detail}
        # The raw list, not `self.timeline`: iterating Reflex's proxy of it would wrap each
        # entry in a proxy of its own, on every event that logs.
        earlier: list[SessionEvent] = self.get_value("timeline")
        self.timeline = [event, *earlier[: MAX_TIMELINE_EVENTS - 1]]

    def _set_phase(self, phase: SessionPhase) -> None:
        # Only a change: an assignment marks the var and the three computed from it dirty,
        # and each refresh would send all four again unchanged.
        if self.phase != phase.value:
            self.phase = phase.value

    def _clear_session(self) -> None:
        """Forget the token and unmount the widget (the panel's history stays)."""
        self.session_token = ""
        self.token_expires_at = ""
        self.token_reply = NO_REPLY
        self.widget_visible = False

    def _forget_chat(self) -> None:
        """Forget the account this tab chatted as (after sign-out): a clean panel."""
        self._clear_session()
        self.sendbird_user_id = ""
        self.nickname = ""
        self.last_error = ""
        self.last_refresh_at = ""
        self.timeline = []
        self._set_phase(SessionPhase.NOT_STARTED)

    async def _this_chats_user(self) -> SignedInUser | None:
        """The signed-in user, but only if it is the one this tab's widget was mounted for.

        None when the tab is signed out, its sign-in expired or was revoked, or another
        account has taken over the browser since the widget mounted.
        """
        user = await self._check_sign_in()
        if user is None or user.identity.user_id != self.sendbird_user_id:
            return None
        return user

    async def _issue_token(
        self, identity: SendbirdIdentity, *, force_new: bool, failed: SessionPhase, step: str
    ) -> IssuedSessionToken | None:
        """Issue (or reuse) a session token for `identity`, or show why it failed.

        On success the token becomes the widget's; on a Sendbird error the panel shows the
        error and the `failed` phase, and None is returned.

        The sign-in is checked again once the token exists: a sign-out (in another tab, or
        everywhere) may have happened while Sendbird was answering, and a token issued after
        that sign-out's revocation must never reach this browser. Such a token is dropped
        here unseen (it was never logged and is never sent) and None is returned.
        """
        try:
            issued = await get_services().tokens.token_for(identity, force_new=force_new)
        except SendbirdError as error:
            self.last_error = str(error)
            self._set_phase(failed)
            self._log("error", f"{step}: {error}")
            return None
        if await self._this_chats_user() is None:
            self._clear_session()
            self.last_error = SIGNED_OUT_REPLY
            self._set_phase(SessionPhase.NOT_STARTED)
            self._log("token discarded", f"{step}: signed out while it was being issued")
            return None
        self.session_token = issued.token
        self.token_expires_at = issued.expires_at.isoformat()
        self._log("token issued", f"{step}, expires {issued.expires_at:%H:%M:%S} UTC")
        return issued

    async def _end_sendbird_session(
        self, user_id: str, *, ending: str
    ) -> AsyncIterator[EventSpec | None]:
        """Unmount the widget, revoke every token of `user_id`, and forget the widget's cache.

        The widget goes first: revoked while mounted, it would report a closed session. With
        no `user_id` (nobody to revoke for) only the browser side is cleared. A revocation
        that still fails after a second try is logged for the operator and shown to the user
        as a toast (it outlives the panel, which sign-out clears).
        """
        self._clear_session()
        yield None  # push the unmount to the browser now
        if user_id:
            failure = await _revoke_with_retry(user_id)
            if failure is None:
                self._log("tokens revoked", f"{ending}: DELETE /v3/users/{{id}}/token")
            else:
                logger.warning("revoking the Sendbird tokens of %s failed: %s", user_id, failure)
                self.last_error = f"Revoking the Sendbird tokens failed: {failure}"
                self._log("error", self.last_error)
                yield rx.toast.error(
                    "Sendbird did not confirm the end of your chat session; its session "
                    "token stays valid until it expires. Try signing out again later.",
                    duration=15_000,
                )
        if self.app_id and self.bot_id:
            yield rx.call_script(clear_widget_cache_script(self.app_id, self.bot_id))

    # ---- page load ----

    @rx.event
    async def open_chat(self) -> AsyncIterator[EventSpec | None]:
        """Ensure the Sendbird user, issue the first token, then let the widget render."""
        user = await self._check_sign_in()
        if user is None:
            self._clear_session()
            yield rx.redirect(routes.SIGN_IN)
            return
        settings = get_services().settings
        self.app_id = settings.app_id
        self.bot_id = settings.bot_id
        self.widget_api_host = settings.widget_api_host
        self.widget_ws_host = settings.widget_ws_host
        self.on_sandbox = settings.is_sandbox
        if user.identity.user_id != self.sendbird_user_id:
            # Another account in this tab than last time: start from a clean panel.
            self._forget_chat()
        self.sendbird_user_id = user.identity.user_id
        self.nickname = user.identity.nickname
        self.last_error = ""
        if not await get_services().tokens.has_cached_token(user.identity):
            # Issuing takes a Sendbird round trip: show it. A returning view's cached token
            # comes at once, in the same update (one render of the page fewer).
            self._set_phase(SessionPhase.ISSUING_FIRST_TOKEN)
            yield None  # push the change to the browser now
        issued = await self._issue_token(
            user.identity, force_new=False, failed=SessionPhase.START_FAILED, step="first token"
        )
        if issued is not None:
            self.widget_visible = True
            self._set_phase(SessionPhase.CONNECTING)
        elif not self.sign_in_token:  # signed out while the token was being issued
            yield rx.redirect(routes.SIGN_IN)

    # ---- the widget's session callbacks ----

    @rx.event
    async def answer_token_request(self, request_id: int) -> None:
        """onSessionTokenRequired: issue a fresh token for the signed-in account only."""
        if not self.widget_visible:
            # No widget is meant to be live (never opened, ended, signed out): nothing to answer.
            self.token_reply = {"request_id": request_id, "token": "", "error": SIGNED_OUT_REPLY}
            return
        user = await self._this_chats_user()
        if user is None:
            self.token_reply = {"request_id": request_id, "token": "", "error": SIGNED_OUT_REPLY}
            self._log("token refused", "the browser is not signed in as this chat's user")
            return
        self._set_phase(SessionPhase.REFRESHING)
        issued = await self._issue_token(
            user.identity, force_new=True, failed=SessionPhase.REFRESH_FAILED, step="on request"
        )
        if issued is None:
            self.token_reply = {"request_id": request_id, "token": "", "error": self.last_error}
        else:
            self.token_reply = {"request_id": request_id, "token": issued.token, "error": ""}

    @rx.event
    def session_refreshed(self) -> None:
        """onSessionRefreshed: the SDK is connected again with a fresh token or key."""
        if not self.widget_visible:
            return  # no widget is meant to be live in this tab
        self.last_refresh_at = _now_label()
        self.last_error = ""
        self._set_phase(SessionPhase.REFRESHED)
        self._log("onSessionRefreshed")

    @rx.event
    def session_error(self, detail: SessionErrorDetail) -> None:
        """onSessionError: refreshing failed; the SDK asks again on its next attempt."""
        if not self.widget_visible:
            return
        message = _bounded(detail.get("message")) or "unknown error"
        code = detail.get("code", 0)
        self.last_error = f"{message} ({code})" if isinstance(code, int) and code else message
        self._set_phase(SessionPhase.SESSION_ERROR)
        self._log("onSessionError", self.last_error)

    @rx.event
    def session_closed(self) -> None:
        """onSessionClosed: the session is over (revoked); offer to reconnect."""
        if not self.widget_visible or self.phase == SessionPhase.CLOSED:
            return  # no widget is meant to be live, or the SDK reported a revocation twice
        if self.phase == SessionPhase.CONNECTION_FAILED:
            self._log("onSessionClosed", "after the refused connection")
            return  # the refused login's reason stays on the panel
        self._set_phase(SessionPhase.CLOSED)
        self._log("onSessionClosed", "reconnect to start a new session")

    @rx.event
    def island_status(self, state: str, detail: str) -> None:
        """Progress of loading the widget bundle, and its failures.

        "loading" changes nothing: the panel's phase already says the widget is on its way,
        and a state change would re-render the page while the island loads.
        """
        if not self.widget_visible:
            return
        if state == "mounted":
            # Loaded, not connected: the SDK's connection is reported by connection_status.
            if self.phase in (SessionPhase.CONNECTING, SessionPhase.RECONNECTING):
                self._set_phase(SessionPhase.WIDGET_LOADED)
            self._log("widget mounted", f"React {_bounded(detail)} island")
        elif state == "error":
            self.last_error = _bounded(detail)
            self._set_phase(SessionPhase.WIDGET_ERROR)
            self._log("widget error", self.last_error)

    @rx.event
    def connection_status(self, state: str, detail: str) -> None:
        """The Sendbird SDK's connection state, as the bridge observes it.

        `state` is one of CONNECTION_STATES; `detail` says why (the error code and message
        when the first connection fails). Anything else, and reports while no widget is
        meant to be live, are ignored.
        """
        if not self.widget_visible or state not in CONNECTION_STATES:
            return
        detail = _bounded(detail)
        phase = SessionPhase(self.phase)
        if state == "connecting":
            if phase in (SessionPhase.CONNECTING, SessionPhase.RECONNECTING):
                self._set_phase(SessionPhase.WIDGET_LOADED)
            self._log("SDK connecting", detail)
        elif state == "connected":
            if phase in (SessionPhase.CONNECTION_FAILED, SessionPhase.DISCONNECTED):
                self.last_error = ""
            if phase != SessionPhase.REFRESHED:
                self._set_phase(SessionPhase.CONNECTED)
            self._log("SDK connected", detail)
        elif state == "reconnecting":
            if phase not in _SESSION_OVER:
                self._set_phase(SessionPhase.RECONNECTING_SDK)
            self._log("SDK reconnecting", detail)
        elif state == "disconnected":
            if phase not in _SESSION_OVER:  # the disconnect after a closed session: not news
                self._set_phase(SessionPhase.DISCONNECTED)
            self._log("SDK disconnected", detail)
        else:
            # Only a refused first connection is "failed" (the bridge reports it from
            # connect()); it wins over onSessionClosed, which the SDK also fires when the
            # login is refused as deactivated/deleted (400300/400301), because it says why.
            self.last_error = detail or "The Sendbird SDK could not connect."
            self._set_phase(SessionPhase.CONNECTION_FAILED)
            self._log("SDK connection failed", self.last_error)

    # ---- user actions ----

    @rx.event
    async def reconnect(self) -> AsyncIterator[EventSpec | None]:
        """Remount the widget with a fresh token (after a closed session or an error)."""
        user = await self._check_sign_in()
        if user is None:
            self._clear_session()
            yield rx.redirect(routes.SIGN_IN)
            return
        if user.identity.user_id != self.sendbird_user_id:
            # Another account signed in since this tab's chat opened: open the chat afresh.
            self._clear_session()
            yield rx.redirect(routes.CHAT)
            return
        self._set_phase(SessionPhase.RECONNECTING)
        yield None  # push the change to the browser now
        issued = await self._issue_token(
            user.identity, force_new=True, failed=SessionPhase.RECONNECT_FAILED, step="reconnect"
        )
        if issued is None:
            if not self.sign_in_token:  # signed out while the token was being issued
                yield rx.redirect(routes.SIGN_IN)
            return
        self.widget_visible = True
        # The bridge forgets the widget's cached channel before it remounts for a new
        # remount_key: a channel deleted at Sendbird (or a user re-created without its
        # memberships) otherwise leaves the widget blank after every reconnect.
        self.remount_key += 1
        self._log("reconnect", "widget cache cleared; remounted with a new token")

    @rx.event
    async def end_session(self) -> AsyncIterator[EventSpec | None]:
        """Demo: end the chat session but stay signed in (reconnect starts a new one)."""
        user = await self._this_chats_user()
        if user is None:
            self._clear_session()
            return
        async for update in self._end_sendbird_session(user.identity.user_id, ending="ended"):
            yield update
        self._set_phase(SessionPhase.ENDED)

    # ---- sandbox demo controls ----

    async def _sandbox_action(self, action: str) -> None:
        control = get_services().sandbox_control
        user = await self._this_chats_user()
        if control is None or user is None:
            return
        user_id = user.identity.user_id
        try:
            if action == "expire_token":
                await control.expire_token(user_id)
            elif action == "expire_session_key":
                await control.expire_session_key(user_id)
            else:
                await control.revoke(user_id)
        except httpx.HTTPError as error:
            self._log("sandbox", f"{action.replace('_', ' ')} failed: {_bounded(error)}")
            return
        if action != "expire_session_key":
            # The cached token is dead at the sandbox now: the next page view must not reuse it.
            await get_services().tokens.forget(user_id)
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


async def _revoke_with_retry(user_id: str) -> SendbirdError | None:
    """Revoke every session token of `user_id`, trying once more after a short pause.

    Returns:
        None once Sendbird confirmed the revocation, else the last error.
    """
    tokens = get_services().tokens
    failure: SendbirdError | None = None
    for pause in (0.0, REVOCATION_RETRY_PAUSE_SECONDS):
        await asyncio.sleep(pause)
        try:
            await tokens.revoke(user_id)
        except SendbirdError as error:
            failure = error
        else:
            return None
    return failure


def _now_label() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _bounded(text: object) -> str:
    """Browser-sent text as a string of at most MAX_REPORTED_TEXT characters."""
    return str(text or "")[:MAX_REPORTED_TEXT]
