"""What nginx sends a browser for the widget island, the pages and the embed routes.

The island's name carries its content hash, so nginx marks it immutable (a returning
visitor's browser does not even revalidate it) and sends its precompressed brotli or gzip
sibling (`brotli_static`, `gzip_static`); pages and the manifest stay revalidated.
"""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from deploy.demo_site import DemoSite
from sample_app import routes
from sample_app.accounts import AccountService
from sample_app.components.chat_ai_widget import ISLAND_MANIFEST, island_build
from sample_app.embed_page import island_path
from tests.browser.helpers import LAUNCHER, PASSWORD, sign_in, unique_username, wait_for_chat

IMMUTABLE = "public, max-age=31536000, immutable"


def fetch(url: str, accept_encoding: str) -> tuple[httpx.Response, bytes]:
    """GET `url`; the response and its body as sent (httpx would decode gzip)."""
    headers = {"Accept-Encoding": accept_encoding}
    with httpx.stream("GET", url, headers=headers, timeout=10) as response:
        return response, b"".join(response.iter_raw())


@pytest.mark.parametrize(
    ("accept_encoding", "encoding"),
    [("gzip, deflate, br, zstd", "br"), ("gzip", "gzip"), ("identity", None)],
)
def test_the_island_is_immutable_and_precompressed_through_nginx(
    site: DemoSite, accept_encoding: str, encoding: str | None
) -> None:
    build = island_build()
    bundle = build.file.read_bytes()

    response, body = fetch(f"{site.url}/{build.asset}", accept_encoding)

    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers.get("content-encoding") == encoding
    if encoding == "br":
        assert body == build.encoded(".br").read_bytes()  # what build.mjs wrote (decoded there)
    elif encoding == "gzip":
        assert gzip.decompress(body) == bundle
    else:
        assert body == bundle


def test_only_hashed_names_are_immutable(site: DemoSite) -> None:
    legal_name = json.loads(ISLAND_MANIFEST.read_text())["legal"]
    legal = httpx.get(f"{site.url}/widget-island/{legal_name}", timeout=5)
    manifest = httpx.get(f"{site.url}/widget-island/manifest.json", timeout=5)
    page = httpx.get(f"{site.url}/", timeout=5)

    assert legal.status_code == 200
    assert legal.headers["cache-control"] == IMMUTABLE
    assert "@license React" in legal.text
    # Not hashed, so revalidated: the manifest (it names the current build) and the pages.
    assert manifest.status_code == 200
    assert manifest.headers["cache-control"] == "no-cache"
    assert page.headers["cache-control"] == "no-cache"


def test_the_embed_island_through_nginx(site: DemoSite) -> None:
    build = island_build()
    alias = httpx.get(f"{site.url}/embed/island.js", timeout=10)

    assert alias.status_code == 307
    assert alias.headers["location"] == island_path(build)
    assert alias.headers["cache-control"] == "no-cache"
    response, body = fetch(f"{site.url}{island_path(build)}", "gzip, deflate, br, zstd")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["content-encoding"] == "br"
    assert body == build.encoded(".br").read_bytes()


def island_requests(site: DemoSite) -> int:
    """How many requests for the island nginx has logged so far."""
    log = (site.logs_dir / "nginx-access.log").read_text()
    return log.count(f"GET /{island_build().asset} ")


def test_a_returning_view_does_not_ask_for_the_island_again(
    context: BrowserContext, site: DemoSite, accounts: AccountService
) -> None:
    """The browser keeps the immutable island: the next view of the chat page sends nothing."""
    # The account is made in the database: the tier's browser registrations share one
    # client address, and its registration limit (5 per 10 minutes) is the other tests'.
    username = unique_username("returning")
    accounts.register(username, PASSWORD, "Returning Visitor")
    first = context.new_page()
    sign_in(first, username)
    wait_for_chat(first)
    assert island_requests(site) >= 1
    before = island_requests(site)
    first.close()

    again = context.new_page()
    again.goto(routes.CHAT)
    expect(again.locator(LAUNCHER)).to_be_visible(timeout=20_000)

    assert island_requests(site) == before
