"""Who may read and write a channel: its members, or a Platform API caller.

At Sendbird a session (``Session-Key``, ``Access-Token`` or a WebSocket login) sees only the
group channels its user is a member of; the Platform API (``Api-Token``) sees all of them. The
sandbox may be reachable from browsers on a demo site, so every SDK route and WebSocket command
that touches a channel goes through :func:`require_channel_access`.

Which error: a channel URL that does not exist answers 400201 (``"Channel" not found``, what
the widget already handles for a deleted channel); a channel that exists but whose members do
not include the caller answers **400108** (``Not authorized``: Sendbird's
``UnauthorizedRequest``, "not authorized and cannot access the requested resource", see
``/work/shared/reference/sendbird-notes.md`` §1.3). 400108 is what the sandbox's WebSocket
already answered for a message into someone else's channel, and widget 1.7.8+ resets its
cached session on an unauthorized channel fetch. Telling "exists" from "not yours" reveals
little: generated channel URLs carry 48 random bits.
"""

from __future__ import annotations

from typing import Any

from .httputil import ApiError
from .store import Store

NOT_A_MEMBER_MESSAGE = 'Not authorized. "The user is not a member of the channel."'


def channel_not_found() -> ApiError:
    """Sendbird's answer for an unknown channel URL."""
    return ApiError(400201, '"Channel" not found.')


def not_a_member() -> ApiError:
    """Sendbird's answer for a channel the session's user does not belong to."""
    return ApiError(400108, NOT_A_MEMBER_MESSAGE)


def require_channel_access(store: Store, channel_url: str, caller: str | None) -> dict[str, Any]:
    """Return the channel row if ``caller`` may use it.

    Args:
        store: Persistence (called synchronously: run this on the store's thread).
        channel_url: The channel asked for.
        caller: The session's user, or ``None`` for a Platform API caller (unrestricted).

    Raises:
        ApiError: 400201 when the channel does not exist, 400108 when ``caller`` is not one
            of its members.
    """
    channel = store.get_channel(channel_url)
    if channel is None:
        raise channel_not_found()
    if caller is not None and not store.is_member(channel_url, caller):
        raise not_a_member()
    return channel
