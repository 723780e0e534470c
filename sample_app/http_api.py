"""The HTTP API: Sendbird session tokens for pages that are not Reflex pages (the embed variant).

Served by the Reflex backend itself (same process, same port), through Reflex's own hook
`rx.App(api_transformer=...)`:

* `POST /api/sendbird/session-token` (`Authorization: Bearer <sign-in token>`, optional
  JSON body `{"refresh": false}`): the signed-in account's Sendbird session token and
  everything the widget needs besides (user id, nickname, app and bot ids, the widget's
  hosts). `refresh: true` is the widget's `onSessionTokenRequired` (a new token, `force_new`).
* `DELETE /api/sendbird/session[?sign_out=true]`: revoke the caller's Sendbird session
  tokens; with `sign_out=true` end the sign-in first, then revoke (`AuthState._sign_out`'s
  order).
* `GET /api/openapi.json` (and `GET /api/docs`): the schema.

It decides exactly as the Reflex handlers do, through the same collaborators: the sign-in is
resolved and ended by `sample_app.signed_in` (the database, or the few-second sign-in cache
that every sign-out clears), the Sendbird identity is derived from the account, never taken
from the request, and tokens come from the one
`SessionTokenService` of the process (its cache, single flight and issuance budget). As in
`ChatSessionState._issue_token`, the sign-in is checked again once the token exists: a token
issued while the caller signed out is dropped unseen.

Errors are JSON `{"error": "<machine word>", "message": "<sentence>"}` (`ErrorBody`): 401 for
no, a malformed, an unknown, an expired or a revoked sign-in (`WWW-Authenticate: Bearer`),
409 for a Sendbird user this app did not create, 422 for a malformed request, 429 over the
issuance budget (`Retry-After`), 502 when Sendbird answered with an error, 503 when it could
not be reached, timed out or rate-limited the app (`Retry-After` when known). No token of any
kind (sign-in, session or API) appears in a response body or a log line.

CORS: Reflex wraps the whole backend in a `CORSMiddleware` built from
`rx.Config.cors_allowed_origins` (by default any origin, with credentials), and it answers
preflights before a request reaches us. `SampleApp` (the app's `rx.App`) therefore wraps the
finished backend in `ApiCorsGuard` (only the request-id middleware is further out), which
owns CORS for the API's paths only: it answers their preflights itself (an origin of
`API_CORS_ALLOWED_ORIGINS` gets POST and DELETE with the `Authorization` and `Content-Type`
headers, no credentials; every other origin gets nothing) and strips Reflex's
`Access-Control-*` headers from their responses to any origin not on that list. Same-origin
callers (the embed page is served by this backend) need no CORS at all. The rest of the
backend (the Reflex socket, `/ping`) is untouched.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import reflex as rx
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sample_app.event_socket import EventSocketShortcut
from sample_app.issuance_budget import IssuanceBudgetExceededError
from sample_app.request_context import EventRequestIds, RequestIdMiddleware
from sample_app.sendbird_api import (
    SendbirdAPIError,
    SendbirdConnectionError,
    SendbirdError,
    SendbirdRateLimitError,
    SendbirdServerError,
    SendbirdTimeoutError,
)
from sample_app.services import get_services
from sample_app.session_tokens import ForeignSendbirdUserError
from sample_app.signed_in import (
    SignedInUser,
    end_sign_in,
    resolve_signed_in_user,
    signed_in_user,
)

__all__ = [
    "API_PATH_PREFIXES",
    "CORS_ALLOWED_ORIGINS_VARIABLE",
    "OPENAPI_URL",
    "SESSION_PATH",
    "SESSION_TOKEN_PATH",
    "ApiCorsGuard",
    "ErrorBody",
    "SampleApp",
    "SessionTokenRequest",
    "SessionTokenResponse",
    "api_transformer",
    "cors_allowed_origins",
    "create_api",
]

logger = logging.getLogger(__name__)

SESSION_TOKEN_PATH = "/api/sendbird/session-token"  # noqa: S105 - a path, not a secret
SESSION_PATH = "/api/sendbird/session"
OPENAPI_URL = "/api/openapi.json"
DOCS_URL = "/api/docs"
#: Paths the API owns; everything else goes to the embed page's routes, then to Reflex.
API_PATH_PREFIXES = ("/api/sendbird/", OPENAPI_URL, DOCS_URL)
#: Other origins (scheme://host[:port], comma-separated) whose pages may call the API.
CORS_ALLOWED_ORIGINS_VARIABLE = "API_CORS_ALLOWED_ORIGINS"
#: What an allowed origin may do (preflight answers).
CORS_ALLOWED_METHODS = ("POST", "DELETE")
CORS_ALLOWED_HEADERS = ("authorization", "content-type")
CORS_MAX_AGE_SECONDS = 600
#: Response headers a cross-origin page may read (the retry hint of 429 and 503).
CORS_EXPOSED_HEADERS = ("Retry-After",)

ErrorWord = Literal[
    "not_signed_in",
    "signed_out",
    "foreign_sendbird_user",
    "invalid_request",
    "not_found",
    "method_not_allowed",
    "too_many_token_requests",
    "sendbird_error",
    "sendbird_unavailable",
    "cors_not_allowed",
]


# ------------------------------------------------------------------------------- models


class SessionTokenRequest(BaseModel):
    """The body of `POST /api/sendbird/session-token` (optional: `{}` and none mean defaults)."""

    model_config = ConfigDict(extra="forbid")

    refresh: bool = Field(
        default=False,
        description=(
            "true when the widget's onSessionTokenRequired asked: Sendbird rejected the "
            "previous token, so a new one is issued instead of the cached one."
        ),
    )


class SessionTokenResponse(BaseModel):
    """A session token for the signed-in account, and the widget's configuration."""

    user_id: str = Field(description="The Sendbird user id (the widget's userId).")
    nickname: str = Field(description="The Sendbird nickname (the widget's userNickName).")
    token: str = Field(description="The Sendbird session token (the widget's sessionToken).")
    expires_at: datetime = Field(description="When Sendbird stops accepting it (ISO 8601, UTC).")
    expires_at_ms: int = Field(description="The same instant as Unix milliseconds.")
    app_id: str = Field(description="The Sendbird application id (the widget's applicationId).")
    bot_id: str = Field(description="The AI chatbot's id (the widget's botId).")
    api_host: str = Field(description="The widget's REST base URL (apiHost).")
    ws_host: str = Field(description="The widget's WebSocket base URL (wsHost).")


class ErrorBody(BaseModel):
    """Every error response of the API."""

    error: ErrorWord = Field(description="A machine-readable word for the failure.")
    message: str = Field(description="A sentence for people; never contains a token.")


class ApiError(Exception):
    """An error answer: status, body and headers."""

    def __init__(
        self,
        status: int,
        error: ErrorWord,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error: ErrorWord = error
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        """The JSON response for this error."""
        body = ErrorBody(error=self.error, message=self.message)
        return JSONResponse(body.model_dump(), status_code=self.status, headers=self.headers)


def _error_doc(description: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return doc


_RETRY_AFTER = {"Retry-After": "Whole seconds to wait before asking again (at least 1)."}
_UNAUTHORIZED = _error_doc(
    "No sign-in token, or one that is unknown, expired or revoked.",
    {"WWW-Authenticate": "Bearer"},
)
_INVALID = _error_doc("The request is malformed (query or JSON body).")
_SENDBIRD_ERROR = _error_doc("Sendbird answered with an error.")
_SENDBIRD_UNAVAILABLE = _error_doc(
    "Sendbird could not be reached, timed out, or rate-limited the app.",
    {"Retry-After": "Seconds to wait, when Sendbird said."},
)


# ------------------------------------------------------------------------------- errors

_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="sample_app"'}
_INVALID_TOKEN_CHALLENGE = {
    "WWW-Authenticate": 'Bearer realm="sample_app", error="invalid_token"',
}


def _not_signed_in(*, token_given: bool) -> ApiError:
    if not token_given:
        return ApiError(
            401,
            "not_signed_in",
            "Send the sign-in token as 'Authorization: Bearer <token>'.",
            _BEARER_CHALLENGE,
        )
    return ApiError(
        401,
        "not_signed_in",
        "The sign-in token is unknown, expired or revoked; sign in again.",
        _INVALID_TOKEN_CHALLENGE,
    )


def _unavailable(error: SendbirdAPIError, message: str) -> ApiError:
    """503 for a Sendbird that asked us to wait, passing its `Retry-After` on when it gave one."""
    headers = {}
    if error.retry_after is not None:
        headers["Retry-After"] = _retry_after(error.retry_after)
    return ApiError(503, "sendbird_unavailable", message, headers)


def _retry_after(seconds: float) -> str:
    """A Retry-After value: whole seconds, at least 1."""
    return str(max(math.ceil(seconds), 1)) if math.isfinite(seconds) else "1"


def _sendbird_failure(error: SendbirdError, *, action: str) -> ApiError:
    """The API's answer to a failure of the token service or the Sendbird client.

    The message is one of a few fixed sentences (plus Sendbird's status and code), not the
    client's text: that names endpoints and server-supplied details meant for operators,
    who find the whole error in the warning logged here.
    """
    if isinstance(error, IssuanceBudgetExceededError):
        # Its text says only "try again in N s": safe and useful to show as it is.
        return ApiError(
            429,
            "too_many_token_requests",
            str(error),
            {"Retry-After": _retry_after(error.retry_after)},
        )
    logger.warning("%s failed: %s", action, error)
    if isinstance(error, ForeignSendbirdUserError):
        return ApiError(
            409,
            "foreign_sendbird_user",
            "Your account's Sendbird user exists but was not created by this app, so no "
            "session token is issued for it; ask the operator of this site.",
        )
    if isinstance(error, SendbirdRateLimitError):
        return _unavailable(
            error, "Sendbird is limiting this app's requests right now; try again later."
        )
    if isinstance(error, SendbirdTimeoutError):
        return ApiError(
            503, "sendbird_unavailable", "Sendbird did not answer in time; try again later."
        )
    if isinstance(error, SendbirdConnectionError):
        return ApiError(
            503, "sendbird_unavailable", "Sendbird could not be reached; try again later."
        )
    if isinstance(error, SendbirdServerError) and error.status_code == 503:
        return _unavailable(error, "Sendbird is temporarily unavailable; try again later.")
    if isinstance(error, SendbirdAPIError):
        code = f"code {error.code}, " if error.code is not None else ""
        return ApiError(
            502,
            "sendbird_error",
            f"Sendbird answered with an error ({code}HTTP {error.status_code}); "
            "try again later or ask the operator of this site.",
        )
    return ApiError(
        502, "sendbird_error", "The request to Sendbird failed; ask the operator of this site."
    )


# ------------------------------------------------------------------------------- the API

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="signInToken",
    description="The app's sign-in token (localStorage 'sample_app_sign_in_token').",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _sign_in_token(credentials: HTTPAuthorizationCredentials | None) -> str:
    """The bearer token of the request, or a 401 when there is none."""
    if credentials is None or not credentials.credentials.strip():
        raise _not_signed_in(token_given=False)
    return credentials.credentials.strip()


async def _signed_in(sign_in_token: str) -> SignedInUser:
    user = await resolve_signed_in_user(sign_in_token)
    if user is None:
        raise _not_signed_in(token_given=True)
    return user


async def issue_session_token(
    credentials: BearerCredentials,
    response: Response,
    payload: Annotated[SessionTokenRequest | None, Body()] = None,
) -> SessionTokenResponse:
    """Issue (or reuse) the signed-in account's Sendbird session token.

    `refresh: true` (the widget's onSessionTokenRequired) asks for a new token. The same
    issuance budget as the Reflex pages applies: over it, 429 with Retry-After.
    """
    sign_in_token = _sign_in_token(credentials)
    user = await _signed_in(sign_in_token)
    refresh = payload.refresh if payload is not None else False
    services = get_services()
    try:
        issued = await services.tokens.token_for(user.identity, force_new=refresh)
    except SendbirdError as error:
        raise _sendbird_failure(
            error, action=f"issuing a session token for {user.identity.user_id}"
        ) from None
    # A sign-out may have happened while Sendbird answered: such a token never leaves.
    again = await resolve_signed_in_user(sign_in_token)
    if again is None or again.identity.user_id != user.identity.user_id:
        logger.info("session token for %s discarded: signed out meanwhile", user.identity.user_id)
        raise ApiError(
            401,
            "signed_out",
            "You signed out while the session token was being issued; sign in again.",
            _INVALID_TOKEN_CHALLENGE,
        )
    settings = services.settings
    response.headers["Cache-Control"] = "no-store"  # a secret: no cache keeps it
    logger.info(
        "session token for %s handed out over HTTP (%s, expires %s)",
        user.identity.user_id,
        "refresh" if refresh else "page view",
        issued.expires_at.isoformat(),
    )
    return SessionTokenResponse(
        user_id=issued.user_id,
        nickname=user.identity.nickname,
        token=issued.token,
        expires_at=issued.expires_at,
        expires_at_ms=issued.expires_at_ms,
        app_id=settings.app_id,
        bot_id=settings.bot_id,
        api_host=settings.widget_api_host,
        ws_host=settings.widget_ws_host,
    )


async def end_session(
    credentials: BearerCredentials,
    sign_out: Annotated[
        bool,
        Query(description="Also end this sign-in (first), as signing out of the app does."),
    ] = False,
) -> Response:
    """Revoke the caller's Sendbird session tokens; with `sign_out=true` end the sign-in first.

    With `sign_out=true` an expired (but not revoked) sign-in is accepted, as the app's
    sign-out accepts it: its account's Sendbird tokens may outlive it.
    """
    sign_in_token = _sign_in_token(credentials)
    services = get_services()
    if sign_out:
        account = await end_sign_in(sign_in_token)
        if account is None:
            raise _not_signed_in(token_given=True)
        user = signed_in_user(account)
        logger.info("account %s signed out over HTTP", account.id)
    else:
        user = await _signed_in(sign_in_token)
    user_id = user.identity.user_id
    try:
        await services.tokens.revoke(user_id)
    except SendbirdError as error:
        raise _sendbird_failure(error, action=f"revoking the session tokens of {user_id}") from None
    logger.info("session tokens of %s revoked over HTTP", user_id)
    return Response(status_code=204)


def _validation_message(error: RequestValidationError) -> str:
    """Where the request is malformed, without echoing what was sent."""
    places = []
    for problem in error.errors()[:5]:
        location = ".".join(str(part) for part in problem.get("loc", ()))
        places.append(f"{location}: {problem.get('msg', 'invalid')}")
    detail = "; ".join(places) or "it could not be read"
    return f"The request is malformed ({detail})."[:500]


async def _on_api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return error.response()


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return ApiError(422, "invalid_request", _validation_message(error)).response()


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    word: ErrorWord = "not_found"
    message = "There is no such API endpoint."
    if error.status_code == 405:
        word, message = "method_not_allowed", "This endpoint does not accept that method."
    elif error.status_code != 404:
        word, message = "invalid_request", "The request could not be handled."
    return ApiError(error.status_code, word, message, error.headers).response()


def create_api() -> FastAPI:
    """The API as a FastAPI app (its routes carry their full paths under /api)."""
    api = FastAPI(
        title="Sendbird session tokens for the AI chatbot widget",
        version="1.0.0",
        description=(
            "Session tokens for the signed-in account of this app, for pages that embed "
            "Sendbird's AI chatbot widget. Authenticate with the app's sign-in token."
        ),
        openapi_url=OPENAPI_URL,
        docs_url=DOCS_URL,
        redoc_url=None,
    )
    api.add_api_route(
        SESSION_TOKEN_PATH,
        issue_session_token,
        methods=["POST"],
        response_model=SessionTokenResponse,
        operation_id="issueSessionToken",
        summary="Get a Sendbird session token for the signed-in account",
        responses={
            401: _UNAUTHORIZED,
            409: _error_doc("The account's Sendbird user exists but this app did not create it."),
            422: _INVALID,
            429: _error_doc("Over the issuance budget; nothing was issued.", _RETRY_AFTER),
            502: _SENDBIRD_ERROR,
            503: _SENDBIRD_UNAVAILABLE,
        },
    )
    api.add_api_route(
        SESSION_PATH,
        end_session,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        operation_id="endSession",
        summary="Revoke the caller's Sendbird session tokens (and optionally sign out)",
        responses={
            204: {"description": "Revoked (and signed out, with sign_out=true)."},
            401: _UNAUTHORIZED,
            422: _INVALID,
            502: _SENDBIRD_ERROR,
            503: _SENDBIRD_UNAVAILABLE,
        },
    )
    api.add_exception_handler(ApiError, _on_api_error)
    api.add_exception_handler(RequestValidationError, _on_validation_error)
    api.add_exception_handler(StarletteHTTPException, _on_http_error)
    return api


def _is_api_path(path: str) -> bool:
    return path.startswith(API_PATH_PREFIXES[0]) or path in API_PATH_PREFIXES[1:]


def api_transformer(reflex_asgi: ASGIApp) -> ASGIApp:
    """Reflex's `api_transformer`: the API's paths go to the API, the rest as before.

    The API gets its paths whole (so an unknown path or method there is the API's JSON 404
    or 405, not Reflex's); the embed page's routes come next; Reflex's own app gets
    everything else.
    """
    from sample_app import embed_page, readiness

    api = create_api()
    rest = Router(routes=[*embed_page.routes(), *readiness.routes(), Mount("", app=reflex_asgi)])

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_api_path(scope["path"]):
            await api(scope, receive, send)
        else:
            await rest(scope, receive, send)

    return dispatch


# ------------------------------------------------------------------------------- CORS


def _normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case; a ValueError for anything else (or `*`)."""
    text = origin.strip().rstrip("/")
    parts = urlsplit(text)
    if (
        text == "*"
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
        or "*" in text
    ):
        raise ValueError(
            f"{CORS_ALLOWED_ORIGINS_VARIABLE}: {origin!r} is not an origin; list origins as "
            "scheme://host[:port], comma-separated (never '*')"
        )
    return text.lower()


def cors_allowed_origins(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The origins `API_CORS_ALLOWED_ORIGINS` lists (none by default: same origin only).

    Raises:
        ValueError: An entry is not `scheme://host[:port]`, or is `*`.
    """
    env = os.environ if environ is None else environ
    raw = env.get(CORS_ALLOWED_ORIGINS_VARIABLE, "")
    return frozenset(_normalise_origin(item) for item in raw.split(",") if item.strip())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _without_cors_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if not k.lower().startswith(b"access-control-")]


def _add_vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for index, (key, value) in enumerate(headers):
        if key.lower() == b"vary":
            if b"origin" not in value.lower():
                headers[index] = (key, value + b", Origin")
            return headers
    headers.append((b"vary", b"Origin"))
    return headers


class ApiCorsGuard:
    """The API's own CORS policy, over Reflex's allow-all one (outside all but request ids).

    For the API's paths only. A preflight is answered here and never reaches Reflex's
    CORS middleware: an origin of `allowed_origins` gets the API's methods and headers
    (no credentials, cached for 10 minutes); any other origin gets a 403 with no
    `Access-Control-*` header. An actual request goes through, and its response loses
    every `Access-Control-*` header Reflex added; a listed origin then gets its own
    `Access-Control-Allow-Origin` (and `Retry-After` exposed), never credentials.
    Same-origin requests need no CORS header and get none.
    """

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed_origins = frozenset(_normalise_origin(o) for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Apply the API's CORS policy to its paths; pass everything else through."""
        if scope["type"] != "http" or not _is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin.lower() in self.allowed_origins
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(scope, send, origin, allowed=allowed)
            return

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = _add_vary_origin(_without_cors_headers(message.get("headers", [])))
                if allowed:
                    exposed = ", ".join(CORS_EXPOSED_HEADERS).encode()
                    headers += [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-expose-headers", exposed),
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_guarded)

    async def _preflight(self, scope: Scope, send: Send, origin: str, *, allowed: bool) -> None:
        method = (_header(scope, b"access-control-request-method") or "").strip().upper()
        requested = _header(scope, b"access-control-request-headers") or ""
        headers = {h.strip().lower() for h in requested.split(",") if h.strip()}
        granted = (
            allowed and method in CORS_ALLOWED_METHODS and headers <= set(CORS_ALLOWED_HEADERS)
        )
        response_headers: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if granted:
            status = 204
            body = b""
            response_headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-methods", ", ".join(CORS_ALLOWED_METHODS).encode()),
                (b"access-control-allow-headers", b"Authorization, Content-Type"),
                (b"access-control-max-age", str(CORS_MAX_AGE_SECONDS).encode()),
            ]
        else:
            status = 403
            body = (
                ErrorBody(
                    error="cors_not_allowed",
                    message="This origin may not call the API from a browser.",
                )
                .model_dump_json()
                .encode()
            )
            response_headers.append((b"content-type", b"application/json"))
        response_headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------- the app


class SampleApp(rx.App):
    """`rx.App` whose backend ends in `ApiCorsGuard` and request ids (module docstring).

    Reflex builds the backend in `App.__call__` (`reflex run`, production servers and the
    test harness alike), with its own CORS middleware outermost; this wraps that result
    once more, then in `RequestIdMiddleware` (`sample_app.request_context`), outermost, so
    that every request, preflights included, has its id. The allowed origins are read then,
    from `API_CORS_ALLOWED_ORIGINS`. Event handlers get ids of their own (`EventRequestIds`,
    a Reflex event middleware, first in line).
    """

    def __post_init__(self) -> None:
        """Set up the app as Reflex does, then give each event handler a request id."""
        super().__post_init__()  # type: ignore[no-untyped-call]
        self.add_middleware(EventRequestIds(), index=0)

    def __call__(self) -> ASGIApp:
        """Build the Reflex backend, put the API's CORS policy, then request ids around it.

        The event WebSocket skips the HTTP layers in between (`EventSocketShortcut`), but
        not its request id.
        """
        backend = ApiCorsGuard(super().__call__(), cors_allowed_origins())
        return RequestIdMiddleware(EventSocketShortcut(backend, self))
