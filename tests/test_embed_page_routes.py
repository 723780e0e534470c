"""The embed page's routes over real HTTP semantics (Starlette's test client), no browser."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sample_app import embed_page
from sample_app.config import get_settings


class Client:
    """Blocking GETs against the embed routes alone, as the backend serves them (in-process)."""

    def __init__(self) -> None:
        self._app = Starlette(routes=embed_page.routes())

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://embed") as client:
                return await client.get(path, headers=headers)

        return asyncio.run(send())


@pytest.fixture
def client() -> Iterator[Client]:
    """A client of the embed routes, with the page's cached CSP recomputed."""
    embed_page._page.cache_clear()
    yield Client()
    embed_page._page.cache_clear()


def test_page_is_the_static_file_with_security_headers(client: Client) -> None:
    response = client.get("/embed")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == embed_page.PAGE_FILE.read_text(encoding="utf-8")
    assert "window.sampleChatConfig" in response.text
    assert '<script type="module" src="/embed/embed.js"></script>' in response.text


def test_csp_allows_exactly_the_inline_config_and_the_widget_hosts(client: Client) -> None:
    csp = client.get("/embed").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    html = embed_page.PAGE_FILE.read_text(encoding="utf-8")
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    settings = get_settings()
    assert settings.widget_api_host in directives["connect-src"]
    assert settings.widget_ws_host in directives["connect-src"]
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe-eval" not in csp


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/embed/embed.js", "text/javascript; charset=utf-8"),
        ("/embed/embed.css", "text/css; charset=utf-8"),
    ],
)
def test_script_and_styles(client: Client, path: str, content_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_island_is_streamed_as_javascript(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    island = tmp_path / "chat-ai-widget-island.js"
    island.write_text("export const islandReactVersion = '18.3.1';\n")
    monkeypatch.setattr(embed_page, "ISLAND_FILE", island)
    response = client.get("/embed/island.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text == island.read_text()


def test_island_not_built_is_a_clear_503(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed_page, "ISLAND_FILE", tmp_path / "missing.js")
    response = client.get("/embed/island.js")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/plain")
    assert "make island" in response.text


def test_nothing_secret_in_the_page_or_its_script(client: Client) -> None:
    texts = [client.get(path).text for path in ("/embed", "/embed/embed.js", "/embed/embed.css")]
    api_token = get_settings().api_token.reveal()
    for text in texts:
        assert api_token not in text
        assert "api-token" not in text.lower()
        assert "/v3/" not in text  # the browser never calls the Platform API
