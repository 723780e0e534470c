"""Fixtures for the Sendbird client tests: one real scripted server per session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from sample_app.sendbird_api import RetryPolicy, SendbirdClient
from tests.sendbird_api.scripted_server import (
    API_TOKEN,
    ClientFactory,
    ScriptedServer,
    SleepRecorder,
)


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedServer]:
    """The shared server; tests use :func:`server`, which resets it."""
    with ScriptedServer.running() as server:
        yield server


@pytest.fixture
def server(scripted_server: ScriptedServer) -> Iterator[ScriptedServer]:
    """A freshly reset scripted server."""
    scripted_server.reset()
    yield scripted_server
    scripted_server.reset()


@pytest.fixture
def sleeps() -> SleepRecorder:
    """Records retry delays instead of sleeping."""
    return SleepRecorder()


@pytest_asyncio.fixture
async def make_client(
    server: ScriptedServer, sleeps: SleepRecorder
) -> AsyncIterator[ClientFactory]:
    """Build clients aimed at the scripted server; all are closed after the test.

    Defaults: no jitter (so delays are exact) and the recorder as ``sleep``.
    """
    clients: list[SendbirdClient] = []

    def factory(**overrides: Any) -> SendbirdClient:
        options: dict[str, Any] = {
            "retry": RetryPolicy(jitter=0),
            "sleep": sleeps,
            "timeout": httpx.Timeout(5.0),
        }
        options.update(overrides)
        base_url = options.pop("base_url", server.base_url)
        client = SendbirdClient(base_url, options.pop("api_token", API_TOKEN), **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest_asyncio.fixture
async def client(make_client: ClientFactory) -> SendbirdClient:
    """A default client aimed at the scripted server."""
    return make_client()
