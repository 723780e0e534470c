"""Who is signed in: sign-in, registration and sign-out, checked on the server every time.

The browser keeps one opaque *sign-in token* in localStorage (`sign_in_token`). It is a
bearer secret of this app (not Sendbird's), revocable on the server, and it expires. The
public vars below (`username`, `display_name`) only drive the UI: no handler trusts them.
Every handler that touches Sendbird session tokens calls `_check_sign_in()`, which resolves
the sign-in token again (`sample_app.signed_in`: the database, or the few-second sign-in
cache that every sign-out clears). Page guards only redirect; they protect nothing.

Sign-out lives here, next to sign-in. It ends the sign-in first, in the database and every
worker's sign-in cache (so no token request of this browser passes the check any more),
then the chat's Sendbird session.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import reflex as rx
from reflex.event import EventSpec

from sample_app import routes
from sample_app.accounts import (
    RegistrationError,
    SignedIn,
    SignInError,
    TooManyRegistrationsError,
)
from sample_app.services import get_services
from sample_app.signed_in import (
    SignedInUser,
    end_sign_in,
    resolve_signed_in_user,
    signed_in_user,
)

logger = logging.getLogger(__name__)

# The localStorage key of the sign-in token (shared by the browser's tabs).
SIGN_IN_TOKEN_STORAGE_KEY = "sample_app_sign_in_token"  # noqa: S105 - a key name, not a secret
# The localStorage key of the device token (kept across sign-outs: it marks this browser
# as one that has signed in before, so others' failures cannot lock it out).
DEVICE_TOKEN_STORAGE_KEY = "sample_app_device_token"  # noqa: S105 - a key name, not a secret

_T = TypeVar("_T")


class AuthState(rx.State):
    """The signed-in account of this browser tab, and the sign-in / register forms."""

    # Our own opaque sign-in token; shared by the browser's tabs, revocable.
    sign_in_token: str = rx.LocalStorage("", name=SIGN_IN_TOKEN_STORAGE_KEY, sync=True)
    # Given after a successful sign-in and sent with the next ones; not cleared on sign-out.
    # The server only trusts it as far as it finds its hash bound to the account.
    device_token: str = rx.LocalStorage("", name=DEVICE_TOKEN_STORAGE_KEY, sync=True)
    # Display-only copy of the account (never used for decisions).
    username: str = ""
    display_name: str = ""
    # Form feedback: a message for the whole form, and one per field.
    form_error: str = ""
    field_errors: dict[str, str] = {}
    # True while a form submission is being processed (disables the button).
    submitting: bool = False

    # ---- helpers (private: the browser cannot call these) ----

    async def _check_sign_in(self) -> SignedInUser | None:
        """Resolve this browser's sign-in token on the server.

        Returns:
            The signed-in user, or None when there is no token or it no longer resolves
            (expired, revoked, account gone); a dead token is then dropped from the browser.
        """
        user = await resolve_signed_in_user(self.sign_in_token)
        if user is None:
            self._forget_sign_in()
            return None
        # Assigned only when changed: Reflex sends (and with Redis stores) every assigned
        # var again, and a token refresh checks the sign-in twice.
        if self.username != user.account.username:
            self.username = user.account.username
        if self.display_name != user.account.display_name:
            self.display_name = user.account.display_name
        return user

    def _accept_sign_in(self, signed_in: SignedIn) -> None:
        """Keep the new sign-in and device tokens in the browser and show who signed in."""
        self.sign_in_token = signed_in.sign_in_token
        if signed_in.device_token and signed_in.device_token != self.device_token:
            self.device_token = signed_in.device_token
        self.username = signed_in.account.username
        self.display_name = signed_in.account.display_name

    async def _drop_previous_widget(self) -> None:
        """A new sign-in in this tab: the widget session from before it is over.

        Its token may be revoked already (a sign-out in another tab), and the widget reads
        its token once, at mount: the chat page must mount it afresh, with the token
        `open_chat` issues for this sign-in, instead of showing the old one first.
        """
        # The chat state derives from this one, so it is imported here, not at the top.
        from sample_app.state.chat_session import ChatSessionState

        chat = await self.get_state(ChatSessionState)
        chat._clear_session()

    def _forget_sign_in(self) -> None:
        """Drop the sign-in token from this browser, and the names shown for it."""
        if self.sign_in_token:
            self.sign_in_token = ""
        self.username = ""
        self.display_name = ""

    def _client_key(self) -> str:
        """What sign-ins and registrations are rate-limited by: the client IP.

        Behind a reverse proxy this is the proxy's address unless Reflex's
        `trusted_proxy_hops` is set (README, Security), and then every visitor would share
        one client's limits.
        """
        return self.router.session.client_ip or ""

    @staticmethod
    async def _hash_bound(call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run an accounts call that hashes passwords on the bounded hashing executor.

        The default executor is what every token request's `resolve_sign_in` waits for;
        keeping argon2id off it means a flood of sign-ins or registrations only queues
        behind itself.
        """
        loop = asyncio.get_running_loop()
        executor = get_services().hashing_executor
        return await loop.run_in_executor(executor, functools.partial(call, *args, **kwargs))

    def _clear_form(self) -> None:
        self.form_error = ""
        self.field_errors = {}

    # ---- pages ----

    @rx.event
    async def redirect_if_signed_in(self) -> EventSpec | None:
        """On the sign-in and register pages: go to the chat when already signed in."""
        self._clear_form()
        if await self._check_sign_in() is not None:
            return rx.redirect(routes.CHAT)
        return None

    # ---- forms ----

    @rx.event
    async def sign_in(self, form_data: dict[str, Any]) -> AsyncIterator[EventSpec | None]:
        """Check the credentials on the server and keep the new sign-in token."""
        username = str(form_data.get("username", ""))
        password = str(form_data.get("password", ""))
        self._clear_form()
        if not username.strip() or not password:
            self.form_error = "Enter your username and password."
            return
        self.submitting = True
        yield None  # push the change to the browser now
        try:
            signed_in = await self._hash_bound(
                get_services().accounts.sign_in,
                username,
                password,
                self._client_key(),
                self.device_token,
            )
        except SignInError as error:  # TooManyAttemptsError included: its text says when
            self.form_error = str(error)
        else:
            self._accept_sign_in(signed_in)
            await self._drop_previous_widget()
            logger.info("account %s signed in", signed_in.account.id)
            yield rx.redirect(routes.CHAT)
        finally:
            self.submitting = False

    @rx.event
    async def register(self, form_data: dict[str, Any]) -> AsyncIterator[EventSpec | None]:
        """Create an account, then sign in with it; every field problem is shown at once."""
        username = str(form_data.get("username", ""))
        password = str(form_data.get("password", ""))
        confirm = str(form_data.get("confirm_password", ""))
        display_name = str(form_data.get("display_name", ""))
        self._clear_form()
        if password != confirm:
            self.field_errors = {"confirm_password": "The passwords do not match."}
            return
        self.submitting = True
        yield None  # push the change to the browser now
        accounts = get_services().accounts
        client_key = self._client_key()
        try:
            await self._hash_bound(
                accounts.register, username, password, display_name, client_key=client_key
            )
            signed_in = await self._hash_bound(
                accounts.sign_in, username, password, client_key, self.device_token
            )
        except TooManyRegistrationsError as error:
            self.form_error = str(error)
        except RegistrationError as error:
            self.field_errors = {
                field: " ".join(messages) for field, messages in error.field_errors.items()
            }
            self.form_error = "Please correct the highlighted fields."
        except SignInError as error:  # TooManyAttemptsError included
            self.form_error = f"Your account was created, but signing in failed: {error}"
        else:
            self._accept_sign_in(signed_in)
            await self._drop_previous_widget()
            logger.info("account %s registered", signed_in.account.id)
            # A new account has no Sendbird user yet: its first chat creates it, then issues
            # (two Platform API calls), instead of issuing first and getting 400201.
            new_user_id = signed_in_user(signed_in.account).identity.user_id
            get_services().tokens.note_new_user(new_user_id)
            yield rx.redirect(routes.CHAT)
        finally:
            self.submitting = False

    # ---- sign-out ----

    @rx.event
    async def sign_out(self) -> AsyncIterator[EventSpec | None]:
        """End this browser's sign-in, then its Sendbird session, and go to sign-in."""
        async for update in self._sign_out(everywhere=False):
            yield update

    @rx.event
    async def sign_out_everywhere(self) -> AsyncIterator[EventSpec | None]:
        """End every sign-in of this account (all browsers), then its Sendbird session."""
        async for update in self._sign_out(everywhere=True):
            yield update

    async def _sign_out(self, *, everywhere: bool) -> AsyncIterator[EventSpec | None]:
        # The chat state derives from this one, so it is imported here, not at the top.
        from sample_app.state.chat_session import ChatSessionState

        # An expired sign-in still names its account, whose Sendbird tokens may outlive it.
        account = await end_sign_in(self.sign_in_token, everywhere=everywhere)
        self._forget_sign_in()
        chat = await self.get_state(ChatSessionState)
        user_id = signed_in_user(account).identity.user_id if account else ""
        async for update in chat._end_sendbird_session(user_id, ending="signed out"):
            yield update
        chat._forget_chat()
        if account is not None:
            logger.info("account %s signed out%s", account.id, " everywhere" if everywhere else "")
        yield rx.redirect(routes.SIGN_IN)
