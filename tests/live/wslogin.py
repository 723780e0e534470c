"""A minimal Sendbird WebSocket login, shaped like chat SDK 4.14.1 inside the widget.

The credential travels as the WebSocket subprotocol (`encodeURIComponent(JSON.stringify(
{"token": ...}))`, or `{}` without one), the query carries `ai` (app id) and `user_id`, and the
server's first frame is `LOGI{...}`: the user's session on success, `LOGI{"error":true,"code":...}`
on failure. Sendbird may also just close the socket; both count as refused.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

_URI_COMPONENT_SAFE = "-_.!~*'()"


@dataclass(frozen=True)
class LoginResult:
    """What the server answered to a login attempt (never holds the token)."""

    accepted: bool
    code: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        state = "accepted" if self.accepted else "refused"
        return f"LOGI {state} (code {self.code}): {self.detail}"


def ws_url(ws_host: str, app_id: str, user_id: str) -> str:
    params = {
        "p": "JS",
        "pv": "pytest-live",
        "sv": "4.14.1",
        "ai": app_id,
        "user_id": user_id,
        "active": "1",
        "SB-User-Agent": "JS/c4.14.1//u3.14.10/oweb",
        "include_extra_data": "premium_feature_list,file_upload_size_limit",
        "expiring_session": "1",
    }
    return f"{ws_host.rstrip('/')}/?{urlencode(params)}"


async def try_login(
    ws_host: str, app_id: str, user_id: str, token: str | None, wait: float = 10.0
) -> LoginResult:
    """Open the socket with `token` (or none) and report the first LOGI."""
    credential: dict[str, str] = {} if token is None else {"token": token}
    subprotocol = quote(json.dumps(credential, separators=(",", ":")), safe=_URI_COMPONENT_SAFE)
    try:
        async with asyncio.timeout(wait):
            async with connect(
                ws_url(ws_host, app_id, user_id),
                subprotocols=[Subprotocol(subprotocol)],
                open_timeout=wait,
            ) as socket:
                while True:
                    raw = await socket.recv()
                    text = raw.decode() if isinstance(raw, bytes) else raw
                    for line in text.splitlines():
                        if line.startswith("LOGI"):
                            return _parse_logi(line[4:], user_id)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else None
        reason = closed.rcvd.reason if closed.rcvd is not None else ""
        return LoginResult(False, code, f"closed before LOGI: {reason}")
    except InvalidHandshake as exc:
        return LoginResult(False, None, f"handshake refused: {type(exc).__name__}")
    except TimeoutError:
        return LoginResult(False, None, f"no LOGI within {wait:g} s")


def _parse_logi(payload: str, user_id: str) -> LoginResult:
    data: Any = json.loads(payload)
    if not isinstance(data, dict):
        return LoginResult(False, None, "LOGI without a JSON object")
    if data.get("error"):
        return LoginResult(False, data.get("code"), str(data.get("message", "")))
    if data.get("user_id") != user_id:
        return LoginResult(False, None, f"LOGI for another user: {data.get('user_id')!r}")
    return LoginResult(True, None, "session key issued" if data.get("key") else "no key")
