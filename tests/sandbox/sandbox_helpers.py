"""Shared helpers of the sandbox tests: settings, a handle on a running sandbox, assertions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from wsclient import WidgetClient

from sample_app.sandbox import SandboxConfig, SandboxServer

APP_ID = "TESTAPP"
API_TOKEN = "sandbox-test-api-token"
BOT_ID = "bot1"


def fast_config(db_path: str, **changes: Any) -> SandboxConfig:
    """Sandbox settings with quick bot replies, for tests."""
    settings: dict[str, Any] = {
        "app_id": APP_ID,
        "api_token": API_TOKEN,
        "bot_id": BOT_ID,
        "bot_nickname": "Sandbox Bot",
        "db_path": db_path,
        "bot_typing_delay": 0.02,
        "bot_reply_delay": 0.05,
        "login_error_close_delay": 0.3,
    }
    settings.update(changes)
    return SandboxConfig(**settings)


def user_path(user_id: str, suffix: str = "") -> str:
    """``/v3/users/{id}{suffix}`` with the id percent-encoded like our client does."""
    return f"/v3/users/{quote(user_id, safe='')}{suffix}"


@dataclass
class Sandbox:
    """A running sandbox plus helpers for the common set-up steps.

    Attributes:
        server: The server under test.
        http: Client with the ``Api-Token`` header (Platform API and control surface).
        anon: Client without credentials (widget-style calls add their own headers).
    """

    server: SandboxServer
    http: httpx.Client
    anon: httpx.Client

    @property
    def config(self) -> SandboxConfig:
        """The server's settings."""
        return self.server.config

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:<port>``."""
        return self.server.ws_url

    def create_user(self, user_id: str, nickname: str = "Alice") -> dict[str, Any]:
        """Create a user through the Platform API."""
        response = self.http.post(
            "/v3/users", json={"user_id": user_id, "nickname": nickname, "profile_url": ""}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def issue_token(self, user_id: str, expires_at: int | None = None) -> str:
        """Issue a session token through the Platform API."""
        body = {} if expires_at is None else {"expires_at": expires_at}
        response = self.http.post(user_path(user_id, "/token"), json=body)
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def control(self, user_id: str, action: str) -> dict[str, Any]:
        """``POST /__sandbox__/users/{id}/{action}``."""
        response = self.http.post(f"/__sandbox__/users/{quote(user_id, safe='')}/{action}")
        assert response.status_code == 200, response.text
        return response.json()

    def create_channel(self, session_key: str, user_id: str) -> str:
        """Create the widget's channel (user + bot) with the user's session key."""
        response = self.anon.post(
            "/v3/group_channels",
            headers={"Session-Key": session_key},
            json={
                "user_ids": [user_id, BOT_ID],
                "is_distinct": False,
                "name": "AI Chatbot Widget Channel",
                "data": '{"first_message_data":[]}',
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["channel_url"]

    async def connect(
        self,
        *,
        token: str | None = None,
        key: str | None = None,
        user_id: str | None = None,
        subprotocol: str | None = None,
    ) -> WidgetClient:
        """Open a widget-like socket (no LOGI read yet)."""
        return await WidgetClient.open(
            self.ws_url, APP_ID, token=token, key=key, user_id=user_id, subprotocol=subprotocol
        )

    async def login(self, user_id: str = "user1", nickname: str = "Alice") -> WidgetClient:
        """Create the user, issue a token, connect and read the successful LOGI."""
        self.create_user(user_id, nickname)
        token = self.issue_token(user_id)
        client = await self.connect(token=token, user_id=user_id)
        logi = await client.read_login()
        assert "error" not in logi, logi
        return client

    async def chat(self, user_id: str = "user1") -> tuple[WidgetClient, str]:
        """A logged-in socket and the channel it shares with the bot."""
        client = await self.login(user_id)
        assert client.logi is not None
        return client, self.create_channel(client.logi["key"], user_id)


def assert_error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    """Check Sendbird's error envelope and return it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] is True
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) == {"error", "code", "message"}
    return body
