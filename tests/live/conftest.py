"""Live tier: the Sendbird client, the set-up check and the widget's login against real Sendbird.

Every test in this folder is marked `live` and skipped unless `SENDBIRD_APP_ID` and
`SENDBIRD_API_TOKEN` are set in the process environment. A `.env` file is never read by the
test suite: `make live` loads it explicitly into this one command's environment (python-dotenv's
`run`, without overriding what is already exported), so real credentials reach these tests only
on purpose. `SENDBIRD_API_HOST` / `SENDBIRD_WS_HOST`, when set, replace the default hosts.

`make live` also sets `SAMPLE_APP_LIVE_REQUIRED=1`: then missing credentials make the run fail
(every test skipped is not a pass), while `make test` just reports the skips with the reason.
Users the tests create (`live-test-<hex>`) are deleted at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from sample_app.sendbird_api import SendbirdClient

_HERE = Path(__file__).resolve().parent
REQUIRED = ("SENDBIRD_APP_ID", "SENDBIRD_API_TOKEN")
LIVE_REQUIRED_VARIABLE = "SAMPLE_APP_LIVE_REQUIRED"


@dataclass(frozen=True)
class LiveTarget:
    """Where the live tests go; `api_token` is never printed (no repr)."""

    app_id: str
    api_token: str
    api_host: str | None
    ws_host: str | None = None

    @property
    def base_url(self) -> str:
        """The Platform API base URL (`SENDBIRD_API_HOST` without `/v3`, or Sendbird's)."""
        host = (self.api_host or f"https://api-{self.app_id}.sendbird.com").rstrip("/")
        return host.removesuffix("/v3").rstrip("/")

    @property
    def ws_base(self) -> str:
        """The WebSocket base URL the widget would use."""
        return (self.ws_host or f"wss://ws-{self.app_id}.sendbird.com").rstrip("/")

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
        "(run `make live`, which loads .env for this tier only; the normal suite never reads it)"
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
        ws_host=os.environ.get("SENDBIRD_WS_HOST", "").strip() or None,
    )


@pytest.fixture(scope="session")
def created_users(live_target: LiveTarget) -> Iterator[list[str]]:
    """User ids the tests created; each is deleted (`DELETE /v3/users/{id}`) at the end."""
    user_ids: list[str] = []
    yield user_ids
    failures: list[str] = []
    with httpx.Client(
        base_url=live_target.base_url,
        headers={"Api-Token": live_target.api_token},
        timeout=httpx.Timeout(10.0, connect=5.0),
    ) as http:
        for user_id in dict.fromkeys(user_ids):
            response = http.delete(f"/v3/users/{quote(user_id, safe='')}")
            if response.status_code != 200 and '"code":400201' not in response.text.replace(
                " ", ""
            ):
                failures.append(f"{user_id}: HTTP {response.status_code}")
    if failures:
        pytest.fail("could not delete live test users: " + ", ".join(failures), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under `make live`, a run without credentials fails instead of passing on skips."""
    if os.environ.get(LIVE_REQUIRED_VARIABLE) == "1" and (missing := _missing_credentials()):
        print(  # noqa: T201 - the reason belongs next to pytest's summary
            f"\nmake live: {' and '.join(missing)} not set (in .env or the environment); "
            "nothing ran against Sendbird"
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest_asyncio.fixture
async def sendbird(live_target: LiveTarget) -> AsyncIterator[SendbirdClient]:
    """A client with the real API token, closed after the test."""
    async with live_target.client() as client:
        yield client
