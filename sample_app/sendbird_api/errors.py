"""Typed errors raised by :class:`~sample_app.sendbird_api.client.SendbirdClient`.

Hierarchy::

    SendbirdError                       base class: catch this to handle "anything Sendbird"
    ├── SendbirdInputError              (also a ValueError) rejected locally, nothing was sent
    ├── SendbirdConnectionError         no usable HTTP answer: DNS, refused, reset, bad proxy
    │   └── SendbirdTimeoutError        connect/read/write timeout
    │       └── SendbirdQueueTimeoutError   waited for a call slot or pooled connection; never sent
    └── SendbirdAPIError                Sendbird (or a proxy in front of it) answered with an error
        ├── SendbirdAuthError           400401 or HTTP 401/403: the API token is wrong
        ├── SendbirdNotFoundError       400201: the resource (usually the user) does not exist
        ├── SendbirdConflictError       400202: the resource already exists
        ├── SendbirdValidationError     4001xx, 400402-400404: a field was missing or invalid
        ├── SendbirdRateLimitError      500910 or HTTP 429; has ``retry_after``
        │   └── SendbirdRetryAfterTooLongError   asked to wait longer than the policy allows
        └── SendbirdServerError         HTTP >= 500 (including HTML error pages from proxies)

Why map on Sendbird's JSON ``code`` first and the HTTP status second: Sendbird answers
almost every client error with HTTP 400, so the status alone cannot tell "user not
found" from "invalid API token": a client that checks only the status treats a wrong
API token as a missing user and tries to create it. Here :class:`SendbirdAuthError` is
never a :class:`SendbirdNotFoundError`, and ``SendbirdClient.get_user`` returns ``None``
only for code 400201. The status is the fallback for answers without a Sendbird
envelope, such as an HTML 502 page.

Messages say what went wrong and what to do next, and never contain the API token or
a session token (server-supplied text passes through :func:`~.redaction.redact`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import ClassVar

from .redaction import redact
from .retry import parse_retry_after

#: Sendbird error codes this package gives a meaning to (from Sendbird's error-code list).
INVALID_API_TOKEN = 400401
RESOURCE_NOT_FOUND = 400201
RESOURCE_ALREADY_EXISTS = 400202
RATE_LIMIT_EXCEEDED = 500910
NOT_AUTHORIZED = 400108  # the credential is valid but may not touch this resource
PLAN_LIMIT_EXCEEDED = 400306  # a quota or limit of the application's plan was reached
ORIGIN_NOT_ALLOWED = 400307  # a domain / allowed-origin restriction refused the request
APPLICATION_UNAVAILABLE = 403100  # the application is suspended (e.g. a lapsed trial)
_VALIDATION_CODES = frozenset({400402, 400403, 400404})  # missing params, bad JSON, bad URL

_MAX_DETAIL_CHARS = 200


class SendbirdError(Exception):
    """Base class for every error raised by this package."""

    #: Whether the client may send the failed request again (see :mod:`.retry`).
    retryable: ClassVar[bool] = False


class SendbirdInputError(SendbirdError, ValueError):
    """An argument was rejected locally, before any request was made.

    Obviously bad input (an empty user id, an 81-character nickname) would be rejected
    by Sendbird anyway; checking first saves a round trip and a rate-limit slot. It is
    also a :class:`ValueError` so generic input handling keeps working.

    Attributes:
        field: Name of the offending argument, e.g. ``"user_id"``.
        problem: What is wrong with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        """Create the error.

        Args:
            field: Name of the offending argument.
            problem: Human-readable description of what is wrong.
        """
        self.field = field
        self.problem = problem
        super().__init__(f"Invalid {field}: {problem}. Nothing was sent to Sendbird.")


class SendbirdConnectionError(SendbirdError):
    """No usable HTTP answer from Sendbird (DNS failure, refused/reset connection...).

    Attributes:
        endpoint: ``"METHOD /path/{template}"`` of the call that failed, if known.
        attempts: How many times the request was sent before giving up.
    """

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, endpoint: str | None = None, attempts: int = 1) -> None:
        """Create the error.

        Args:
            message: Human-readable explanation, already free of secrets.
            endpoint: Method and path template of the failed call.
            attempts: Number of attempts made.
        """
        self.endpoint = endpoint
        self.attempts = attempts
        super().__init__(message)


class SendbirdTimeoutError(SendbirdConnectionError):
    """Sendbird did not answer within the configured timeout."""


class SendbirdQueueTimeoutError(SendbirdTimeoutError):
    """The call waited too long in this process's own queue and was never sent.

    Raised when no call slot (:mod:`.call_slots`) or pooled connection came free in time.
    Not retried: the wait was local, so a retry would only join the back of the same queue
    and make it longer.
    """

    retryable: ClassVar[bool] = False


class SendbirdAPIError(SendbirdError):
    """Sendbird (or a proxy in front of it) answered with an HTTP error.

    Attributes:
        status_code: HTTP status of the response.
        code: Sendbird's numeric error code, or ``None`` when the body was not a
            Sendbird error envelope (e.g. an HTML page from a load balancer).
        message: Sendbird's ``message`` field, or a short description of the body.
        request_id: A request id header from the response, if there was one.
        endpoint: ``"METHOD /path/{template}"`` of the failed call, if known.
        retry_after: Seconds the server asked us to wait (``X-RateLimit-RetryAfter`` or
            ``Retry-After``, sent with 429 and some 503 answers); ``None`` when it did not say.
    """

    _summary: ClassVar[str] = "Sendbird returned an error"
    _hint: ClassVar[str] = ""

    def __init__(
        self,
        status_code: int,
        code: int | None,
        message: str,
        request_id: str | None = None,
        *,
        endpoint: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Create the error.

        Args:
            status_code: HTTP status of the response.
            code: Sendbird error code, if the body had one.
            message: Error text, already free of secrets.
            request_id: Request id header value, if any.
            endpoint: Method and path template of the failed call.
            retry_after: Seconds the server asked us to wait, if it said.
        """
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
        self.endpoint = endpoint
        self.retry_after = retry_after
        super().__init__(self._describe())

    def _hint_text(self) -> str:
        """Return the "what to do" part of the message; subclasses refine it."""
        if self.code is None and self.status_code == 404:
            return (
                "the URL does not exist; check the base URL "
                "(it should look like https://api-<APP_ID>.sendbird.com)"
            )
        if 300 <= self.status_code < 400:
            return (
                "got a redirect, which the client does not follow; check the base URL "
                "(https, of the form https://api-<APP_ID>.sendbird.com)"
            )
        return self._hint

    def _describe(self) -> str:
        where = f"HTTP {self.status_code}"
        if self.code is not None:
            where = f"code {self.code}, {where}"
        text = f"{self._summary} ({where})"
        if hint := self._hint_text():
            text += f": {hint}"
        if self.message:
            text += f". Details: {self.message}"
        if self.request_id:
            text += f" [request id {self.request_id}]"
        return f"{self.endpoint}: {text}" if self.endpoint else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r}, "
            f"endpoint={self.endpoint!r}, retry_after={self.retry_after!r})"
        )


class SendbirdAuthError(SendbirdAPIError):
    """The API token was rejected (code 400401, or HTTP 401/403).

    This is a configuration problem, never a sign that a user is missing.
    """

    _summary = "Sendbird rejected the API token"
    _hint = (
        "check SENDBIRD_API_TOKEN and that the base URL belongs to the same application "
        "(https://api-<APP_ID>.sendbird.com)"
    )


class SendbirdApplicationUnavailableError(SendbirdAuthError):
    """The application is not available (code 403100), e.g. its free trial has lapsed.

    A :class:`SendbirdAuthError` subclass, since nothing the app does can work until the
    application is available again, but the API token itself is fine: the fix is in the
    Dashboard's plan and billing, not in ``SENDBIRD_API_TOKEN``.
    """

    _summary = "The Sendbird application is not available"
    _hint = (
        "the application is suspended or its plan has ended (for example a free trial that "
        "expired); check the plan or trial status of this application in the Sendbird "
        "Dashboard (Settings > Application > General, Billing). The API token is not the problem"
    )


class SendbirdNotAuthorizedError(SendbirdAPIError):
    """The credential is valid but not authorized for this resource (code 400108)."""

    _summary = "Sendbird refused access to this resource"
    _hint = (
        "the request was authenticated but is not allowed to act on this resource; use the "
        "master or a secondary API token of the application that owns it (a session may only "
        "act on its own user and channels)"
    )


class SendbirdPlanLimitError(SendbirdAPIError):
    """A quota or limit of the application's plan was reached (code 400306)."""

    _summary = "Sendbird refused the request: a plan limit or quota was reached"
    _hint = (
        "the application's plan does not allow this (a quota such as monthly active users, or "
        "a feature outside the plan); check usage and the plan in the Sendbird Dashboard, or "
        "upgrade it"
    )


class SendbirdOriginNotAllowedError(SendbirdAPIError):
    """A domain or allowed-origin restriction refused the request (code 400307)."""

    _summary = "Sendbird refused the request because of a domain restriction"
    _hint = (
        "the application restricts which domains (allowed origins) may use it; add the origin "
        "the app is served from (scheme, host and port) to the allowed domains in the Sendbird "
        "Dashboard's application security settings"
    )


class SendbirdNotFoundError(SendbirdAPIError):
    """The resource does not exist (code 400201, which Sendbird sends with HTTP 400)."""

    _summary = "Sendbird could not find the resource"
    _hint = "for a user, create it first (SendbirdClient.ensure_user does both steps)"


class SendbirdConflictError(SendbirdAPIError):
    """The resource already exists (code 400202)."""

    _summary = "The resource already exists at Sendbird"
    _hint = "use the existing one (SendbirdClient.ensure_user treats this as success)"


class SendbirdValidationError(SendbirdAPIError):
    """Sendbird rejected a parameter (codes 4001xx, 400402-400404)."""

    _summary = "Sendbird rejected the request parameters"
    _hint = "check the values sent (user id, nickname, profile_url, expires_at)"


class SendbirdRateLimitError(SendbirdAPIError):
    """Too many requests (code 500910 / HTTP 429); ``retry_after`` says how long to wait."""

    retryable = True
    _summary = "Sendbird rate limit exceeded"

    def _hint_text(self) -> str:
        wait = "retry later"
        if self.retry_after is not None:
            wait = f"retry after {self.retry_after:g} s"
        return f"{wait}; cache session tokens rather than issuing one per page view"


class SendbirdRetryAfterTooLongError(SendbirdRateLimitError):
    """Sendbird asked us to wait longer than ``RetryPolicy.max_retry_after``.

    The client raises this at once instead of sleeping, because a user is usually
    waiting on the other end of the request.

    Attributes:
        max_retry_after: The policy bound that was exceeded, in seconds.
    """

    def __init__(
        self,
        status_code: int,
        code: int | None,
        message: str,
        request_id: str | None = None,
        *,
        retry_after: float,
        max_retry_after: float,
        endpoint: str | None = None,
    ) -> None:
        """Create the error.

        Args:
            status_code: HTTP status of the response.
            code: Sendbird error code, if the body had one.
            message: Error text, already free of secrets.
            request_id: Request id header value, if any.
            retry_after: Seconds the server asked us to wait.
            max_retry_after: The policy's upper bound, in seconds.
            endpoint: Method and path template of the failed call.
        """
        self.max_retry_after = max_retry_after
        super().__init__(
            status_code,
            code,
            message,
            request_id,
            retry_after=retry_after,
            endpoint=endpoint,
        )

    def _hint_text(self) -> str:
        return (
            f"Sendbird asked us to wait {self.retry_after:g} s, longer than "
            f"RetryPolicy.max_retry_after ({self.max_retry_after:g} s), so the client gave up "
            "without waiting; try again later"
        )


class SendbirdServerError(SendbirdAPIError):
    """Sendbird or a proxy in front of it failed (HTTP >= 500)."""

    retryable = True
    _summary = "Sendbird had a server-side problem"
    _hint = "this is usually temporary; retry later and check status.sendbird.com if it persists"


def error_from_response(
    status_code: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    endpoint: str | None = None,
    secrets: Iterable[str] = (),
) -> SendbirdAPIError:
    """Turn an HTTP error response into the most specific :class:`SendbirdAPIError`.

    Args:
        status_code: HTTP status of the response.
        body: Raw response body (JSON envelope, HTML page, or empty).
        headers: Response headers (for rate-limit and request-id headers).
        endpoint: Method and path template of the call, for the message.
        secrets: Values to scrub from any server-supplied text.

    Returns:
        The error instance; the caller decides whether to raise or retry it.
    """
    content_type = _header(headers, "content-type") or ""
    code, message = _parse_body(body, content_type)
    message = redact(message, secrets)
    request_id = _header(headers, "x-request-id") or _header(headers, "request-id")
    cls = _error_class(status_code, code)
    return cls(
        status_code,
        code,
        message,
        request_id,
        endpoint=endpoint,
        retry_after=parse_retry_after(headers),
    )


def _error_class(status_code: int, code: int | None) -> type[SendbirdAPIError]:
    """Pick the error class: Sendbird's ``code`` first, the HTTP status second."""
    if code is not None:
        if code == INVALID_API_TOKEN:
            return SendbirdAuthError
        if code == APPLICATION_UNAVAILABLE:
            return SendbirdApplicationUnavailableError
        if code == NOT_AUTHORIZED:  # inside the 4001xx parameter range: test it first
            return SendbirdNotAuthorizedError
        if code == PLAN_LIMIT_EXCEEDED:
            return SendbirdPlanLimitError
        if code == ORIGIN_NOT_ALLOWED:
            return SendbirdOriginNotAllowedError
        if code == RESOURCE_NOT_FOUND:
            return SendbirdNotFoundError
        if code == RESOURCE_ALREADY_EXISTS:
            return SendbirdConflictError
        if code == RATE_LIMIT_EXCEEDED:
            return SendbirdRateLimitError
        if 400100 <= code <= 400199 or code in _VALIDATION_CODES:
            return SendbirdValidationError
    # Deliberately no 404 -> NotFound: a bare 404 means a wrong base URL or a proxy,
    # and reading it as "user missing" is exactly the bug this module exists to avoid.
    if status_code in (401, 403):
        return SendbirdAuthError
    if status_code == 409:
        return SendbirdConflictError
    if status_code == 429:
        return SendbirdRateLimitError
    if status_code >= 500:
        return SendbirdServerError
    return SendbirdAPIError


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:  # plain dicts are case-sensitive; httpx.Headers is not
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _parse_body(body: bytes, content_type: str) -> tuple[int | None, str]:
    """Extract ``(code, message)`` from a Sendbird envelope or describe a foreign body."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return None, "empty response body"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = _as_code(data.get("code"))
        message = data.get("message")
        if code is not None or isinstance(message, str):
            return code, _shorten(str(message or ""))
        return None, "unexpected JSON body: " + _shorten(json.dumps(data, ensure_ascii=False))
    kind = content_type.split(";")[0].strip() or "no content type"
    return None, f"non-JSON response ({kind}): {_summarise_text(text)}"


def _as_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _summarise_text(text: str) -> str:
    """Describe a non-JSON body briefly: an HTML page's title, else its first words."""
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    has_title = title is not None and title.group(1).strip()
    text = title.group(1) if has_title and title else re.sub(r"<[^>]+>", " ", text)
    return _shorten(html.unescape(text))


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[: _MAX_DETAIL_CHARS - 1] + "…"
    return text
