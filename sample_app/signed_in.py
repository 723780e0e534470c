"""Who is signed in, as every entry point checks it, and the one way to sign out.

A sign-in token (this app's own bearer secret) is resolved against the accounts database,
on a worker thread, never on the event loop, or answered from this process's cache of what
the database said a few seconds ago (`Services.sign_ins`, `sample_app.sign_in_cache`),
and the account it names is paired with the Sendbird identity this deployment derives for
it. Nothing here trusts a user id sent by a browser: the identity always comes from the
account the token resolves to.

Every sign-out (the Reflex states, the HTTP API) goes through `end_sign_in`, which ends the
sign-in in the database and then in every worker's cache, so that once it returns no check
anywhere accepts the token: the caller may then revoke the Sendbird session tokens, and a
token issued meanwhile is dropped by the check that follows its issuance. (If Redis cannot
be told, a warning says so, and other workers may accept the token until their cache's TTL.)
"""

from __future__ import annotations

from dataclasses import dataclass

from sample_app.accounts import AccountView
from sample_app.identity import SendbirdIdentity, sendbird_identity
from sample_app.services import get_services

__all__ = ["SignedInUser", "end_sign_in", "resolve_signed_in_user", "signed_in_user"]


@dataclass(frozen=True)
class SignedInUser:
    """An account whose sign-in token the server has just checked, and its Sendbird identity."""

    account: AccountView
    identity: SendbirdIdentity


def signed_in_user(account: AccountView) -> SignedInUser:
    """Pair an account with the Sendbird identity this deployment derives for it."""
    return SignedInUser(account, sendbird_identity(account, get_services().settings.user_id_prefix))


async def resolve_signed_in_user(sign_in_token: str) -> SignedInUser | None:
    """Resolve a sign-in token: from the sign-in cache, else the database on a thread.

    Returns:
        The signed-in user, or None when there is no token or it does not resolve
        (unknown, expired, revoked, or the account is disabled or gone).
    """
    if not sign_in_token:
        return None
    services = get_services()
    account = await services.sign_ins.resolve(services.accounts, sign_in_token)
    return None if account is None else signed_in_user(account)


async def end_sign_in(sign_in_token: str, *, everywhere: bool = False) -> AccountView | None:
    """Sign out: end the sign-in in the database, then in every worker's sign-in cache.

    Args:
        sign_in_token: The browser's sign-in token.
        everywhere: Also end every other sign-in of its account (all browsers), which only
            a valid sign-in may do: a stale token only ends itself.

    Returns:
        Whose sign-in it was, so the caller can revoke that user's Sendbird session tokens
        (also for an expired sign-in, since Sendbird tokens may outlive it); None when
        there is no token, or it is unknown or was already revoked.
    """
    if not sign_in_token:
        return None
    services = get_services()
    accounts, sign_ins = services.accounts, services.sign_ins
    valid = everywhere and await sign_ins.resolve(accounts, sign_in_token) is not None
    account = await sign_ins.sign_out(accounts, sign_in_token)
    if account is not None and valid:
        await sign_ins.sign_out_everywhere(accounts, account.id)
    return account
