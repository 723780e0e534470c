"""How an account of this app maps to a Sendbird user.

The Sendbird user id is derived on the server from the account's database id, never taken
from the browser: a tab cannot ask for someone else's token by sending another id. The
display name becomes the Sendbird nickname, and the widget gets the same nickname (its
default, "User", would otherwise overwrite it on every connect).
"""

from sample_app.accounts import AccountView
from sample_app.session_tokens import SendbirdIdentity


def sendbird_identity(account: AccountView, prefix: str) -> SendbirdIdentity:
    """The Sendbird identity of `account` (`{prefix}{account id}`)."""
    return SendbirdIdentity(
        user_id=f"{prefix}{account.id}",
        nickname=account.display_name,
        profile_url=account.profile_url or "",
    )
