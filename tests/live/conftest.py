"""Live tier: the Sendbird client against real Sendbird.

Every test in this folder is marked `live` and skipped unless `SENDBIRD_APP_ID` and
`SENDBIRD_API_TOKEN` are set in the process environment. A `.env` file is deliberately not
read here: real credentials reach these tests only when someone exports them on purpose.
`SENDBIRD_API_HOST`, when set, replaces `https://api-{app_id}.sendbird.com`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from sample_app.sendbird_api import SendbirdClient

_HERE = Path(__file__).resolve().parent
REQUIRED = ("SENDBIRD_APP_ID", "SENDBIRD_API_TOKEN")


@dataclass(frozen=True)
class LiveTarget:
    """Where the live tests go; `api_token` is never printed (no repr)."""

    app_id: str
    api_token: str
    api_host: str | None

    def __repr__(self) -> str:
        return f"LiveTarget(app_id={self.app_id!r}, api_host={self.api_host!r})"

    def client(self, api_token: str | None = None) -> SendbirdClient:
        """A client for this target, optionally with another API token."""
        token = self.api_token if api_token is None else api_token
        if self.api_host:
            return SendbirdClient(self.api_host, token)
        return SendbirdClient.for_application(self.app_id, token)


def _missing_credentials() -> list[str]:
    return [name for name in REQUIRED if not os.environ.get(name, "").strip()]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this folder's tests `live`; skip them without credentials in the environment.

    The hook sees every collected item of the session, so it touches only this folder's.
    """
    missing = _missing_credentials()
    skip = pytest.mark.skip(
        reason=f"live Sendbird tests need {' and '.join(missing)} in the environment "
        "(a .env file is not read for these)"
    )
    for item in items:
        if not item.path.resolve().is_relative_to(_HERE):
            continue
        item.add_marker(pytest.mark.live)
        if missing:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def live_target() -> LiveTarget:
    """The real Sendbird application named by the environment."""
    if missing := _missing_credentials():  # belt and braces: the hook already skips
        pytest.skip(f"live Sendbird tests need {' and '.join(missing)} in the environment")
    return LiveTarget(
        app_id=os.environ["SENDBIRD_APP_ID"].strip(),
        api_token=os.environ["SENDBIRD_API_TOKEN"].strip(),
        api_host=os.environ.get("SENDBIRD_API_HOST", "").strip() or None,
    )


@pytest_asyncio.fixture
async def sendbird(live_target: LiveTarget) -> AsyncIterator[SendbirdClient]:
    """A client with the real API token, closed after the test."""
    async with live_target.client() as client:
        yield client
