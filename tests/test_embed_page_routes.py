"""The embed page's routes over real HTTP semantics (Starlette's test client), no browser."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sample_app import embed_page
from sample_app.components import chat_ai_widget
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

    def send(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[httpx.Response, bytes]:
        """The response and its body as sent, still encoded (`get` decodes it)."""

        async def send() -> tuple[httpx.Response, bytes]:
            transport = httpx.ASGITransport(app=self._app)
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://embed") as client,
                client.stream(method, path, headers=headers) as response,
            ):
                return response, b"".join([chunk async for chunk in response.aiter_raw()])

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


@dataclass
class FakeIsland:
    """A built island in a temporary directory, as widget-island/build.mjs leaves it."""

    manifest: Path
    hash: str
    bundle: Path

    @property
    def path(self) -> str:
        return f"/embed/island.{self.hash}.js"

    def sibling(self, suffix: str) -> Path:
        return self.bundle.with_name(self.bundle.name + suffix)


@pytest.fixture
def island(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIsland:
    """A current build (bundle, .gz, .br, manifest), next to a stale build's files."""
    code = b"export const islandReactVersion = '18.3.1';\n" * 20
    digest = hashlib.sha256(code).hexdigest()[:12]
    bundle = tmp_path / f"chat-ai-widget-island.{digest}.js"
    bundle.write_bytes(code)
    bundle.with_name(bundle.name + ".gz").write_bytes(gzip.compress(code))
    # Not real brotli (Python has no brotli codec); tests/test_island_build.py checks the real.
    bundle.with_name(bundle.name + ".br").write_bytes(b"brotli:" + code[:40])
    (tmp_path / "chat-ai-widget-island.0123456789ab.js").write_text("export const stale = 1;\n")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"file": bundle.name, "hash": digest}))
    monkeypatch.setattr(chat_ai_widget, "ISLAND_MANIFEST", manifest)
    return FakeIsland(manifest, digest, bundle)


IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.mark.parametrize(
    ("accept_encoding", "encoding", "suffix"),
    [
        ("gzip, deflate, br, zstd", "br", ".br"),  # what Chromium sends
        ("br", "br", ".br"),
        ("gzip", "gzip", ".gz"),
        ("br;q=0, gzip", "gzip", ".gz"),
        ("*", "br", ".br"),
        ("*, br;q=0", "gzip", ".gz"),
        ("identity", None, ""),
        ("", None, ""),
        ("deflate", None, ""),
    ],
)
def test_hashed_island_is_immutable_and_precompressed(
    client: Client, island: FakeIsland, accept_encoding: str, encoding: str | None, suffix: str
) -> None:
    response, body = client.send("GET", island.path, {"Accept-Encoding": accept_encoding})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers.get("content-encoding") == encoding
    assert body == island.sibling(suffix).read_bytes()
    assert response.headers["content-length"] == str(len(body))
    if encoding == "gzip":
        assert gzip.decompress(body) == island.bundle.read_bytes()
    # Each encoding is its own representation: its own ETag, which a browser can revalidate.
    etag = response.headers["etag"]
    assert island.hash in etag
    again = client.get(
        island.path, headers={"Accept-Encoding": accept_encoding, "If-None-Match": etag}
    )
    assert again.status_code == 304


def test_encodings_fall_back_when_a_sibling_is_missing(client: Client, island: FakeIsland) -> None:
    island.sibling(".br").unlink()
    response, body = client.send("GET", island.path, {"Accept-Encoding": "br, gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert body == island.sibling(".gz").read_bytes()

    island.sibling(".gz").unlink()
    response, body = client.send("GET", island.path, {"Accept-Encoding": "br, gzip"})
    assert "content-encoding" not in response.headers
    assert body == island.bundle.read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/embed/island.0123456789ab.js",  # a stale build, still on disk: not served
        "/embed/island.ffffffffffff.js",  # never built
        "/embed/island.chat-ai-widget-island.js",
        "/embed/island.0123456789AB.js",  # the hash is lower-case hex
    ],
)
def test_any_other_hash_is_a_404(client: Client, island: FakeIsland, path: str) -> None:
    response = client.get(path, headers={"Accept-Encoding": "br, gzip"})

    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-cache"
    assert "/embed/island.js" in response.text
    assert "stale" not in response.text


def test_the_build_before_the_current_is_still_served(client: Client, island: FakeIsland) -> None:
    # A page loaded before the last deploy names the build before it; the manifest names
    # that one as "previous", and it is served as immutable as the current one.
    code = b"export const islandReactVersion = '18.3.0';\n" * 20
    digest = hashlib.sha256(code).hexdigest()[:12]
    previous = island.manifest.with_name(f"chat-ai-widget-island.{digest}.js")
    previous.write_bytes(code)
    previous.with_name(previous.name + ".gz").write_bytes(gzip.compress(code))
    island.manifest.write_text(
        json.dumps(
            {"file": island.bundle.name, "hash": island.hash, "previous": {"file": previous.name}}
        )
    )

    response, body = client.send("GET", f"/embed/island.{digest}.js", {"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(body) == code
    assert digest in response.headers["etag"]
    # The current build is still the one /embed/island.js names.
    redirect = client.get("/embed/island.js")
    assert redirect.headers["location"] == island.path
    # A stale build on disk that the manifest does not name stays a 404.
    assert client.get("/embed/island.0123456789ab.js").status_code == 404
    # So does the previous build once its file is gone.
    previous.unlink()
    assert client.get(f"/embed/island.{digest}.js").status_code == 404


def test_head_sends_the_headers_only(client: Client, island: FakeIsland) -> None:
    response, body = client.send("HEAD", island.path, {"Accept-Encoding": "br"})

    assert response.status_code == 200
    assert response.headers["content-encoding"] == "br"
    assert response.headers["content-length"] == str(island.sibling(".br").stat().st_size)
    assert body == b""


def test_unhashed_island_redirects_to_the_current_build(client: Client, island: FakeIsland) -> None:
    response = client.get("/embed/island.js")

    assert response.status_code == 307
    assert response.headers["location"] == island.path
    # The redirect is revalidated on every load, so a rebuild is picked up at once.
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"

    rebuilt = island.bundle.with_name("chat-ai-widget-island.fedcba987654.js")
    rebuilt.write_text("export const islandReactVersion = '18.3.1'; // rebuilt\n")
    island.manifest.write_text(json.dumps({"file": rebuilt.name, "pad": "a rebuild"}))
    assert client.get("/embed/island.js").headers["location"] == "/embed/island.fedcba987654.js"
    assert client.get(island.path).status_code == 404
    assert client.get("/embed/island.fedcba987654.js").text == rebuilt.read_text()


@pytest.mark.parametrize("path", ["/embed/island.js", "/embed/island.0123456789ab.js"])
def test_island_not_built_is_a_clear_503(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(chat_ai_widget, "ISLAND_MANIFEST", tmp_path / "missing.json")
    response = client.get(path)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/plain")
    assert "make island" in response.text


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip, deflate, br, zstd", {"br", "gzip"}),
        ("BR;Q=0.5, GZIP;q=1.0", {"br", "gzip"}),
        ("br;q=0", set()),
        ("gzip;q=0.000", set()),
        ("br;q=nonsense, gzip", {"gzip"}),
        ("*;q=0.1", {"br", "gzip"}),
        ("*;q=0, br", {"br"}),
        ("", set()),
        (" , ;, br ;q=1", {"br"}),
    ],
)
def test_accept_encoding_parsing(header: str, accepted: set[str]) -> None:
    assert embed_page.accepted_encodings(header) == accepted


def test_nothing_secret_in_the_page_or_its_script(client: Client) -> None:
    texts = [client.get(path).text for path in ("/embed", "/embed/embed.js", "/embed/embed.css")]
    api_token = get_settings().api_token.reveal()
    for text in texts:
        assert api_token not in text
        assert "api-token" not in text.lower()
        assert "/v3/" not in text  # the browser never calls the Platform API
