"""Who is signed in, as every entry point checks it: the Reflex states and the HTTP API.

A sign-in token (this app's own bearer secret) is resolved against the accounts database
on a worker thread, never on the event loop, and the account it names is paired with the
Sendbird identity this deployment derives for it. Nothing here trusts a user id sent by a
browser: the identity always comes from the account the token resolves to.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sample_app.accounts import AccountView
from sample_app.identity import SendbirdIdentity, sendbird_identity
from sample_app.services import get_services

__all__ = ["SignedInUser", "resolve_signed_in_user", "signed_in_user"]


@dataclass(frozen=True)
class SignedInUser:
    """An account whose sign-in token the server has just checked, and its Sendbird identity."""

    account: AccountView
    identity: SendbirdIdentity


def signed_in_user(account: AccountView) -> SignedInUser:
    """Pair an account with the Sendbird identity this deployment derives for it."""
    return SignedInUser(account, sendbird_identity(account, get_services().settings.user_id_prefix))


async def resolve_signed_in_user(sign_in_token: str) -> SignedInUser | None:
    """Resolve a sign-in token on a worker thread (the database call blocks).

    Returns:
        The signed-in user, or None when there is no token or it does not resolve
        (unknown, expired, revoked, or the account is disabled or gone).
    """
    if not sign_in_token:
        return None
    account = await asyncio.to_thread(get_services().accounts.resolve_sign_in, sign_in_token)
    return None if account is None else signed_in_user(account)
