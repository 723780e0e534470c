"""Who is signed in: the app's own accounts, resolved on the server for every handler.

The browser keeps one opaque sign-in session token in localStorage (`auth_token`). It is
a bearer secret of *our* app (not Sendbird's), revocable on the server, and expires. The
public vars below (`username`, `display_name`) only drive the UI: no handler trusts them.
Every handler that touches Sendbird tokens calls `current_account()`, which resolves the
session token against the database again. Page guards only redirect; they protect nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import reflex as rx

from sample_app import routes
from sample_app.accounts import (
    AccountView,
    RegistrationError,
    SignedIn,
    SignInError,
    TooManyAttemptsError,
)
from sample_app.services import get_services

logger = logging.getLogger(__name__)


class AuthState(rx.State):
    """The signed-in account of this browser tab, and the sign-in / register forms."""

    # Our own opaque sign-in session token; shared by the browser's tabs, revocable.
    auth_token: str = rx.LocalStorage("", name="sample_app_session", sync=True)
    # Display-only copy of the account (never used for decisions).
    username: str = ""
    display_name: str = ""
    # Form feedback: a message for the whole form, and one per field.
    form_error: str = ""
    field_errors: dict[str, str] = {}
    # True while a form submission is being processed (disables the button).
    submitting: bool = False

    async def current_account(self) -> AccountView | None:
        """Resolve the browser's sign-in token on the server; None if absent or no longer valid.

        An expired or revoked token is dropped from the browser as a side effect.
        """
        if not self.auth_token:
            self._forget_account()
            return None
        account = await asyncio.to_thread(get_services().accounts.resolve_session, self.auth_token)
        if account is None:
            self.auth_token = ""
            self._forget_account()
            return None
        self.username = account.username
        self.display_name = account.display_name
        return account

    def _accept_sign_in(self, signed_in: SignedIn) -> None:
        """Keep the new sign-in session token in the browser and show who signed in."""
        self.auth_token = signed_in.session_token
        self.username = signed_in.account.username
        self.display_name = signed_in.account.display_name

    def _forget_account(self) -> None:
        self.username = ""
        self.display_name = ""

    def _client_key(self) -> str:
        """What sign-in attempts are rate-limited by besides the username (the client IP)."""
        return self.router.session.client_ip or ""

    @rx.event
    async def redirect_if_signed_in(self) -> rx.event.EventSpec | None:
        """On the sign-in and register pages: go to the chat when already signed in."""
        self.form_error = ""
        self.field_errors = {}
        if await self.current_account() is not None:
            return rx.redirect(routes.CHAT)
        return None

    @rx.event
    async def sign_in(self, form_data: dict[str, Any]) -> AsyncIterator[rx.event.EventSpec | None]:
        """Check the credentials on the server and keep the new sign-in session token."""
        username = str(form_data.get("username", ""))
        password = str(form_data.get("password", ""))
        self.form_error = ""
        self.field_errors = {}
        if not username.strip() or not password:
            self.form_error = "Enter your username and password."
            return
        self.submitting = True
        yield
        try:
            signed_in = await asyncio.to_thread(
                get_services().accounts.sign_in, username, password, self._client_key()
            )
        except TooManyAttemptsError as error:
            self.form_error = (
                "Too many failed sign-ins. Try again in "
                f"{max(1, round(error.retry_after_seconds / 60))} minute(s)."
            )
        except SignInError as error:
            self.form_error = str(error)
        else:
            self._accept_sign_in(signed_in)
            logger.info("account %s signed in", signed_in.account.id)
            yield rx.redirect(routes.CHAT)
        finally:
            self.submitting = False

    @rx.event
    async def register(self, form_data: dict[str, Any]) -> AsyncIterator[rx.event.EventSpec | None]:
        """Create an account, then sign in with it; every field problem is shown at once."""
        username = str(form_data.get("username", ""))
        password = str(form_data.get("password", ""))
        confirm = str(form_data.get("confirm_password", ""))
        display_name = str(form_data.get("display_name", ""))
        self.form_error = ""
        self.field_errors = {}
        if password != confirm:
            self.field_errors = {"confirm_password": "The passwords do not match."}
            return
        self.submitting = True
        yield
        accounts = get_services().accounts
        try:
            await asyncio.to_thread(accounts.register, username, password, display_name)
            signed_in = await asyncio.to_thread(
                accounts.sign_in, username, password, self._client_key()
            )
        except RegistrationError as error:
            self.field_errors = {
                field: " ".join(messages) for field, messages in error.field_errors.items()
            }
            self.form_error = "Please correct the highlighted fields."
        except (SignInError, TooManyAttemptsError) as error:
            self.form_error = f"Your account was created, but signing in failed: {error}"
        else:
            self._accept_sign_in(signed_in)
            logger.info("account %s registered", signed_in.account.id)
            yield rx.redirect(routes.CHAT)
        finally:
            self.submitting = False
