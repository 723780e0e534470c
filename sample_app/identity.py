"""Who an account of this app is at Sendbird: `SendbirdIdentity` and how it is derived.

This module is the only place that maps an account to a Sendbird user. The Sendbird user
id is derived on the server from the signed-in account, never taken from the browser, so
a tab cannot ask for someone else's session token by sending another id. The display name
becomes the Sendbird nickname, and the widget is given the same nickname (its default,
"User", would otherwise overwrite it on every connect).

The id is `{prefix}{sendbird_key}`: the deployment's `SENDBIRD_USER_ID_PREFIX` followed by
the account's random key, set once at registration. It is deliberately not the integer
account id: ids start again at 1 when the accounts database is recreated or moved, and two
deployments sharing one Sendbird application would hand out the same ids, so a new person
would inherit someone else's Sendbird user, channels and history. A random key never
repeats. As a second line of defence, `sample_app.session_tokens` marks the users this app
creates and refuses to issue tokens for an existing user without that mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sample_app.accounts import AccountView

__all__ = ["SendbirdIdentity", "sendbird_identity"]


@dataclass(frozen=True)
class SendbirdIdentity:
    """A Sendbird user as the server derived it from a signed-in account.

    Attributes:
        user_id: Sendbird user id.
        nickname: Display name; the widget's ``userNickName`` gets the same value.
        profile_url: Avatar URL, or ``""``.
    """

    user_id: str
    nickname: str
    profile_url: str = ""

    def __post_init__(self) -> None:
        """Fail early on values that can never be a Sendbird user."""
        if not isinstance(self.user_id, str) or not self.user_id:
            raise ValueError("SendbirdIdentity.user_id must be a non-empty string")
        if not isinstance(self.nickname, str) or not isinstance(self.profile_url, str):
            raise ValueError("SendbirdIdentity.nickname and profile_url must be strings")


def sendbird_identity(account: AccountView, prefix: str) -> SendbirdIdentity:
    """The Sendbird identity of `account`: user id `{prefix}{sendbird_key}`, name and avatar.

    Raises:
        ValueError: The account has no Sendbird key; without one every such account would
            share the user id `{prefix}`.
    """
    if not account.sendbird_key:
        raise ValueError("the account has no sendbird_key; run the accounts migrations")
    return SendbirdIdentity(
        user_id=f"{prefix}{account.sendbird_key}",
        nickname=account.display_name,
        profile_url=account.profile_url or "",
    )
