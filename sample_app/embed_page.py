"""The embed variant: a plain page that mounts the widget with a script tag, no Reflex runtime.

`routes()` gives the backend its GET routes (wired in by `sample_app.http_api`'s
`api_transformer`), so the page works wherever the backend runs, with or without the Reflex
frontend on the same port:

* ``/embed``: `sample_app/embed/index.html`, a static page (nothing is rendered into it)
  carrying a ``window.sampleChatConfig`` object and one module script;
* ``/embed/embed.js`` and ``/embed/embed.css``: the page's script and styles;
* ``/embed/island.<hash>.js``: the widget island built by ``make island``
  (``assets/widget-island/chat-ai-widget-island.<hash>.js``, the build its manifest names,
  or the one before it while its file is kept), cached as immutable and sent precompressed
  (brotli or gzip, as the browser accepts); any other hash is a 404;
* ``/embed/island.js``: a redirect to the current ``/embed/island.<hash>.js``, revalidated
  on every load, so a page can name one URL and still never run a stale build.

Both island routes answer 503 with a plain-text hint when the island has not been built.

The script finds the sign-in token the Reflex pages keep in ``localStorage``, gets session
tokens from ``POST /api/sendbird/session-token`` and mounts the widget through the island's
``mountChatAiWidget``. Nothing secret is in any of these files: the page is static and the
server adds only headers. Its Content-Security-Policy allows the inline config script by its
SHA-256 and connections only to this origin and the widget's Sendbird (or sandbox) hosts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.staticfiles import NotModifiedResponse

from sample_app.components.chat_ai_widget import IslandBuild, IslandNotBuiltError, island_build
from sample_app.config import get_settings

EMBED_DIR = Path(__file__).resolve().parent / "embed"
PAGE_FILE = EMBED_DIR / "index.html"
SCRIPT_FILE = EMBED_DIR / "embed.js"
STYLE_FILE = EMBED_DIR / "embed.css"

PAGE_PATH = "/embed"
SCRIPT_PATH = "/embed/embed.js"
STYLE_PATH = "/embed/embed.css"
ISLAND_PATH = "/embed/island.js"
ISLAND_HASHED_PATH = "/embed/island.{hash}.js"

JAVASCRIPT = "text/javascript; charset=utf-8"
ISLAND_NOT_BUILT = (
    "The chat widget island is not built: run `make island` (or `make run`, which builds it) "
    "to bundle the widget from widget-island/ into assets/widget-island/.\n"
)
ISLAND_UNKNOWN = (
    "No such build of the chat widget island: /embed/island.js redirects to the current one.\n"
)

# Inline <script> elements without a src (the config object): allowed by hash, nothing else.
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

# Sent with every response of these routes.
_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Revalidate on every load (cheap: ETag / Last-Modified), so an edited script or the
    # island redirect is never served stale from a browser cache.
    "Cache-Control": "no-cache",
}
# The hashed island: its name changes with its content, so a browser may keep it a year
# without asking again. Vary: the same URL comes in three encodings.
_IMMUTABLE_HEADERS = {
    **_COMMON_HEADERS,
    "Cache-Control": "public, max-age=31536000, immutable",
    "Vary": "Accept-Encoding",
}
# Precompressed siblings written by widget-island/build.mjs, the smallest first.
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def inline_script_hashes(html: str) -> list[str]:
    """CSP sources (``'sha256-…'``) for the page's inline scripts."""
    hashes = []
    for body in _INLINE_SCRIPT.findall(html):
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return hashes


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (CSP matches origins, not paths)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(html: str, widget_api_host: str, widget_ws_host: str) -> str:
    """The embed page's Content-Security-Policy.

    Scripts: this origin (the page's script and the island) and the inline config object by
    hash. Connections: this origin (the HTTP API) and the widget's REST and WebSocket hosts.
    Styles allow 'unsafe-inline' because the widget injects its own <style> elements
    (styled-components and its stylesheet); images allow https:, data: and blob: for bot
    avatars and files the chat shows.
    """
    sendbird = f"{_origin(widget_api_host)} {_origin(widget_ws_host)}"
    directives = [
        "default-src 'self'",
        f"script-src 'self' {' '.join(inline_script_hashes(html))}".rstrip(),
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: https: {_origin(widget_api_host)}",
        "media-src 'self' data: blob: https:",
        "font-src 'self' data:",
        f"connect-src 'self' {sendbird}",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    return "; ".join(directives)


@lru_cache(maxsize=1)
def _page() -> tuple[bytes, str]:
    """The page's bytes and its CSP (the file and the settings do not change at run time)."""
    html = PAGE_FILE.read_text(encoding="utf-8")
    settings = get_settings()
    csp = content_security_policy(html, settings.widget_api_host, settings.widget_ws_host)
    return html.encode("utf-8"), csp


async def embed_page(request: Request) -> Response:
    """``GET /embed``: the static page, with its security headers."""
    body, csp = _page()
    headers = {**_COMMON_HEADERS, "Content-Security-Policy": csp}
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def _file(
    request: Request, path: Path, media_type: str, headers: dict[str, str] = _COMMON_HEADERS
) -> Response:
    """A file with an ETag; 304 when the browser already has this version."""
    response = FileResponse(path, media_type=media_type, headers=headers, stat_result=path.stat())
    if_none_match = request.headers.get("if-none-match", "")
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    if if_none_match and response.headers["etag"] in tags:
        return NotModifiedResponse(response.headers)
    return response


async def embed_script(request: Request) -> Response:
    """``GET /embed/embed.js``: the page's script."""
    return _file(request, SCRIPT_FILE, JAVASCRIPT)


async def embed_style(request: Request) -> Response:
    """``GET /embed/embed.css``: the page's styles."""
    return _file(request, STYLE_FILE, "text/css; charset=utf-8")


def accepted_encodings(accept_encoding: str) -> set[str]:
    """The content codings an ``Accept-Encoding`` header accepts (``q=0`` refuses one)."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding.lower()] = weight
    wildcard = weights.pop("*", 0.0)
    return {coding for coding, _ in _ENCODINGS if weights.get(coding, wildcard) > 0}


def island_path(build: IslandBuild) -> str:
    """The embed route of one island build: ``/embed/island.<hash>.js``."""
    return ISLAND_HASHED_PATH.format(hash=build.hash)


def _island_not_built() -> Response:
    return PlainTextResponse(
        ISLAND_NOT_BUILT, status_code=503, headers={**_COMMON_HEADERS, "Retry-After": "60"}
    )


def _island_unknown() -> Response:
    return PlainTextResponse(ISLAND_UNKNOWN, status_code=404, headers=_COMMON_HEADERS)


async def island_redirect(request: Request) -> Response:
    """``GET /embed/island.js``: 307 to the current hashed island (the redirect revalidates)."""
    try:
        build = island_build()
    except IslandNotBuiltError:
        return _island_not_built()
    return RedirectResponse(island_path(build), status_code=307, headers=_COMMON_HEADERS)


async def island_script(request: Request) -> Response:
    """``GET /embed/island.<hash>.js``: that build, in the best encoding accepted.

    Only the hashes the manifest names are served: the current build, and the one before it
    (a page loaded before the last deploy still names it). An older or made-up one is a 404,
    never a stale file that happens to be on disk.
    """
    try:
        current = island_build()
    except IslandNotBuiltError:
        return _island_not_built()
    wanted = request.path_params["hash"]
    build = current if wanted == current.hash else current.previous
    if build is None or wanted != build.hash:
        return _island_unknown()
    try:
        return _island_file(request, build)
    except FileNotFoundError:  # removed by a rebuild since the manifest was read
        return _island_unknown()


def _island_file(request: Request, build: IslandBuild) -> Response:
    """`build`'s bundle in the best encoding the request accepts, cached as immutable."""
    accepted = accepted_encodings(request.headers.get("accept-encoding", ""))
    for coding, suffix in _ENCODINGS:
        variant = build.encoded(suffix)
        if coding in accepted and variant.is_file():
            headers = {
                **_IMMUTABLE_HEADERS,
                "Content-Encoding": coding,
                "ETag": f'"{build.hash}-{coding}"',
            }
            return _file(request, variant, JAVASCRIPT, headers)
    headers = {**_IMMUTABLE_HEADERS, "ETag": f'"{build.hash}"'}
    return _file(request, build.file, JAVASCRIPT, headers)


def routes() -> list[BaseRoute]:
    """The embed page's HTTP routes (GET; Starlette answers HEAD for them too)."""
    return [
        Route(PAGE_PATH, embed_page, methods=["GET"]),
        Route(SCRIPT_PATH, embed_script, methods=["GET"]),
        Route(STYLE_PATH, embed_style, methods=["GET"]),
        Route(ISLAND_PATH, island_redirect, methods=["GET"]),
        Route(ISLAND_HASHED_PATH, island_script, methods=["GET"]),
    ]
