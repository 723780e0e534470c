"""The page frame says where chat traffic goes, and warns when the sandbox skips tokens."""

from __future__ import annotations

import pytest

from sample_app.components import layout
from sample_app.config import load_settings


@pytest.mark.parametrize(("allowed", "warned"), [("1", True), ("", False)])
def test_the_chat_page_warns_when_logins_need_no_token(
    monkeypatch: pytest.MonkeyPatch, allowed: str, warned: bool
) -> None:
    settings = load_settings(environ={"SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN": allowed}, env_file=None)
    monkeypatch.setattr(layout, "get_settings", lambda: settings)

    rendered = str(layout.sandbox_notice())

    assert "local Sendbird sandbox" in rendered
    assert ("Deny login" in rendered) is warned


def test_real_sendbird_gets_no_sandbox_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        environ={
            "SENDBIRD_APP_ID": "A1B2C3D4-0000-1111-2222-333344445555",
            "SENDBIRD_API_TOKEN": "0123456789abcdef0123456789abcdef01234567",
            "SENDBIRD_BOT_ID": "my-bot",
        },
        env_file=None,
    )
    monkeypatch.setattr(layout, "get_settings", lambda: settings)

    assert "sandbox" not in str(layout.sandbox_notice())
