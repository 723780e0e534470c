"""Async client for the handful of Sendbird Platform API calls this app needs.

The client runs on our server only: it carries the application's ``Api-Token``, which
must never reach a browser. It wraps one ``httpx.AsyncClient`` (connection pooling
works per instance, so keep one client per process and close it on shutdown) and adds
what httpx deliberately leaves to the caller: typed errors (see :mod:`.errors`),
retries with backoff and ``Retry-After`` handling (see :mod:`.retry`), a bounded number of
calls in flight with a first-come-first-served queue in front of a pool of the same size
(see :mod:`.call_slots`), local input validation, redacted logging and per-endpoint call
counting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from .call_slots import DEFAULT_CALLS_IN_FLIGHT, CallSlots
from .errors import (
    SendbirdAPIError,
    SendbirdConflictError,
    SendbirdConnectionError,
    SendbirdError,
    SendbirdInputError,
    SendbirdNotFoundError,
    SendbirdQueueTimeoutError,
    SendbirdRateLimitError,
    SendbirdRetryAfterTooLongError,
    SendbirdTimeoutError,
    error_from_response,
)
from .models import SendbirdBot, SendbirdUser, SessionToken, datetime_to_unix_ms
from .redaction import RedactingFilter, redact
from .retry import RetryPolicy

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_METADATA_ITEMS",
    "MAX_NICKNAME_LENGTH",
    "MAX_PROFILE_URL_LENGTH",
    "MAX_USER_ID_LENGTH",
    "SendbirdClient",
    "encode_path_segment",
]

#: Connect within 5 s, then allow 10 s per read/write: generous for Sendbird, short
#: enough that a Reflex event handler does not hang when the network does.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: Idle pooled connections are closed after this long (Sendbird's load balancers drop
#: idle keep-alive connections after about a minute; reusing one they dropped costs a retry).
KEEPALIVE_EXPIRY_SECONDS = 30.0

# Field limits from Sendbird's user resource documentation.
MAX_USER_ID_LENGTH = 80
MAX_NICKNAME_LENGTH = 80
MAX_PROFILE_URL_LENGTH = 2048
MAX_METADATA_ITEMS = 5

USER_AGENT = f"sendbird-reflex-sample/0.1 (python-httpx/{httpx.__version__})"

# Path templates double as the keys of ``call_counts`` and as what gets logged, so a
# log line never contains a concrete user id or token.
USERS = "/v3/users"
USER = "/v3/users/{user_id}"
USER_TOKEN = "/v3/users/{user_id}/token"  # noqa: S105 - a path template, not a secret
BOT = "/v3/bots/{bot_id}"

_APP_ID = re.compile(r"[A-Za-z0-9-]+")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces or newlines


def encode_path_segment(value: str) -> str:
    """Percent-encode ``value`` as exactly one URL path segment.

    ``quote(value, safe="")`` escapes ``/``, ``?``, ``#``, ``%``, spaces and all
    non-ASCII (as UTF-8), so any user id reaches Sendbird intact. Dots are unreserved
    and stay as they are, except that the ids ``"."`` and ``".."`` would be read as
    dot-segments and removed by URL normalisation (httpx does this), so those are
    escaped as ``%2E``.

    Args:
        value: The raw segment, e.g. a user id.

    Returns:
        An ASCII string safe to place between two ``/``.
    """
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


class SendbirdClient:
    """Sendbird Platform API client (users and session tokens).

    Example::

        async with SendbirdClient("https://api-APP_ID.sendbird.com", api_token) as sb:
            await sb.ensure_user("sample-42", "Ada")
            token = await sb.issue_session_token("sample-42", now + timedelta(minutes=30))

    Attributes:
        call_counts: HTTP requests sent so far, keyed by ``"METHOD /path/{template}"``
            (every attempt counts, retries included, because each one spends
            rate-limit budget). The token service and the benchmarks read it.
    """

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        timeout: httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        logger: logging.Logger | None = None,
        calls_in_flight: int | None = DEFAULT_CALLS_IN_FLIGHT,
    ) -> None:
        """Create a client. It opens connections lazily, so this does no I/O.

        Args:
            base_url: ``https://api-<APP_ID>.sendbird.com`` (a trailing ``/v3`` is
                accepted and dropped), or the URL of a local emulator.
            api_token: The application's master or secondary API token.
            timeout: httpx timeouts; defaults to :data:`DEFAULT_TIMEOUT`.
            retry: Retry policy; defaults to ``RetryPolicy()``.
            transport: httpx transport, for tests or custom networking.
            sleep: Coroutine used to wait between retries; tests inject a recorder.
            logger: Where to log; defaults to this module's logger.
            calls_in_flight: Calls this client has at Sendbird at once; the rest queue in
                order for at most the pool timeout (``SendbirdQueueTimeoutError``), and the
                connection pool has as many connections. ``None`` leaves both to httpx's
                defaults (100 connections, its own pool queue): the plain configuration the
                capacity benchmark compares against.

        Raises:
            SendbirdInputError: The base URL or the API token is unusable.
        """
        if not isinstance(api_token, str) or not _HEADER_SAFE.fullmatch(api_token):
            # The token itself is never echoed, not even in this message.
            raise SendbirdInputError(
                "api_token",
                "must be a non-empty string of visible ASCII characters (check SENDBIRD_API_TOKEN)",
            )
        self._base_url = _normalise_base_url(base_url)
        self._timeout = timeout if timeout is not None else DEFAULT_TIMEOUT
        self._retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._secrets = (api_token,)
        self._logger = logger if logger is not None else logging.getLogger(__name__)
        self._log_filter = RedactingFilter(self._secrets)
        self._logger.addFilter(self._log_filter)
        self._closed = False
        self.call_counts: Counter[str] = Counter()
        self._slots: CallSlots | None = None
        limits = httpx.Limits()  # httpx's defaults: 100 connections, 20 kept alive
        if calls_in_flight is not None:
            pool_wait = self._timeout.pool if self._timeout.pool is not None else 10.0
            self._slots = CallSlots(calls_in_flight, max_wait=pool_wait)
            limits = httpx.Limits(
                max_connections=calls_in_flight,
                max_keepalive_connections=calls_in_flight,
                keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
            )
        self._http = httpx.AsyncClient(
            base_url=self._base_url,
            headers={
                "Api-Token": api_token,
                "Content-Type": "application/json; charset=utf8",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=self._timeout,
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def for_application(cls, application_id: str, api_token: str, **kwargs: Any) -> Self:
        """Create a client for Sendbird's hosted API of ``application_id``.

        Args:
            application_id: The Sendbird application id (``SENDBIRD_APP_ID``).
            api_token: The application's API token.
            **kwargs: Passed on to the constructor.
        """
        if not isinstance(application_id, str) or not _APP_ID.fullmatch(application_id):
            raise SendbirdInputError(
                "application_id",
                "must contain only letters, digits and '-' (check SENDBIRD_APP_ID)",
            )
        return cls(f"https://api-{application_id}.sendbird.com", api_token, **kwargs)

    @property
    def base_url(self) -> str:
        """The normalised base URL requests go to (no secrets in it)."""
        return self._base_url

    @property
    def call_slots(self) -> CallSlots | None:
        """The bound on calls in flight, or None when httpx's pool alone queues them."""
        return self._slots

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._retry

    def __repr__(self) -> str:
        return f"SendbirdClient(base_url={self._base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._http.aclose()
        self._logger.removeFilter(self._log_filter)

    # ----------------------------------------------------------------- users

    async def get_user(self, user_id: str) -> SendbirdUser | None:
        """Fetch a user, or ``None`` if Sendbird says it does not exist.

        ``None`` means exactly code 400201. Every other failure, notably a rejected
        API token (400401), raises, so a misconfiguration can never look like a
        missing user.

        Raises:
            SendbirdInputError: ``user_id`` is empty or too long.
            SendbirdError: Any other failure (see :mod:`.errors`).
        """
        _check_user_id(user_id)
        try:
            data = await self._request("GET", USER, user_id=user_id)
        except SendbirdNotFoundError:
            return None
        return SendbirdUser.from_api(_expect_object(data, "GET " + USER))

    async def create_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SendbirdUser:
        """Create a user.

        Args:
            user_id: The new user's id.
            nickname: Display name.
            profile_url: Avatar URL, or ``""``.
            metadata: String key/value pairs stored with the user (at most
                ``MAX_METADATA_ITEMS``); the app uses them to mark the users it created.

        Raises:
            SendbirdInputError: A field is empty or too long.
            SendbirdConflictError: The user already exists (400202).
            SendbirdError: Any other failure.
        """
        _check_user_id(user_id)
        _check_text("nickname", nickname, MAX_NICKNAME_LENGTH)
        _check_text("profile_url", profile_url, MAX_PROFILE_URL_LENGTH)
        _check_metadata(metadata)
        body: dict[str, Any] = {
            "user_id": user_id,
            "nickname": nickname,
            "profile_url": profile_url,
        }
        if metadata:
            body["metadata"] = dict(metadata)
        data = await self._request("POST", USERS, json_body=body)
        return SendbirdUser.from_api(_expect_object(data, "POST " + USERS))

    async def ensure_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> SendbirdUser:
        """Return the user, creating it (with ``metadata``) if it does not exist yet.

        Idempotent and safe under concurrency: if another worker (or a retried request
        of ours) creates the user between our read and our create, Sendbird answers
        400202 and we read the user back instead of failing. An existing user is
        returned as is: neither its nickname (see ``update_user``) nor its metadata is
        changed here, so callers can inspect the returned ``metadata`` to decide whether
        the user is theirs.

        Raises:
            SendbirdInputError: A field is empty or too long.
            SendbirdError: Any other failure.
        """
        _check_text("nickname", nickname, MAX_NICKNAME_LENGTH)
        _check_text("profile_url", profile_url, MAX_PROFILE_URL_LENGTH)
        _check_metadata(metadata)
        user = await self.get_user(user_id)
        if user is not None:
            return user
        try:
            return await self.create_user(user_id, nickname, profile_url, metadata)
        except SendbirdConflictError as conflict:
            user = await self.get_user(user_id)
            if user is None:  # created and deleted again in between: report what we saw
                raise conflict
            return user

    async def update_user(
        self,
        user_id: str,
        *,
        nickname: str | None = None,
        profile_url: str | None = None,
    ) -> SendbirdUser:
        """Change a user's nickname and/or profile URL (``PUT /v3/users/{user_id}``).

        Raises:
            SendbirdInputError: Nothing to change, or a field is too long.
            SendbirdNotFoundError: The user does not exist.
            SendbirdError: Any other failure.
        """
        _check_user_id(user_id)
        body: dict[str, str] = {}
        if nickname is not None:
            _check_text("nickname", nickname, MAX_NICKNAME_LENGTH)
            body["nickname"] = nickname
        if profile_url is not None:
            _check_text("profile_url", profile_url, MAX_PROFILE_URL_LENGTH)
            body["profile_url"] = profile_url
        if not body:
            raise SendbirdInputError("update_user", "pass nickname and/or profile_url")
        data = await self._request("PUT", USER, user_id=user_id, json_body=body)
        return SendbirdUser.from_api(_expect_object(data, "PUT " + USER))

    # ------------------------------------------------------------------ bots

    async def get_bot(self, bot_id: str) -> SendbirdBot | None:
        """Fetch a bot of this application, or ``None`` if Sendbird says it does not exist.

        Like :meth:`get_user`, ``None`` means exactly code 400201 (no such bot in the
        application the API token belongs to); every other failure raises. The bot's own
        ``bot_token`` in the answer is dropped.

        Raises:
            SendbirdInputError: ``bot_id`` is empty or too long.
            SendbirdError: Any other failure (see :mod:`.errors`).
        """
        _check_user_id(bot_id, field="bot_id")
        try:
            data = await self._request("GET", BOT, bot_id=bot_id)
        except SendbirdNotFoundError:
            return None
        return SendbirdBot.from_api(_expect_object(data, "GET " + BOT))

    # -------------------------------------------------------- session tokens

    async def issue_session_token(self, user_id: str, expires_at: datetime) -> SessionToken:
        """Issue a session token that Sendbird accepts until ``expires_at``.

        Sendbird's default lifetime is 7 days, far too long for a token that sits in
        a browser, so the expiry is always sent explicitly (as Unix milliseconds).

        Args:
            user_id: An existing Sendbird user.
            expires_at: Timezone-aware expiry time.

        Returns:
            The token and the expiry Sendbird actually granted.

        Raises:
            SendbirdInputError: ``user_id`` is invalid or ``expires_at`` is naive.
            SendbirdNotFoundError: The user does not exist (create it first).
            SendbirdError: Any other failure.
        """
        _check_user_id(user_id)
        if not isinstance(expires_at, datetime):
            raise SendbirdInputError("expires_at", "must be a datetime")
        try:
            expires_ms = datetime_to_unix_ms(expires_at)
        except ValueError as exc:
            raise SendbirdInputError("expires_at", str(exc)) from None
        data = await self._request(
            "POST", USER_TOKEN, user_id=user_id, json_body={"expires_at": expires_ms}
        )
        return SessionToken.from_api(_expect_object(data, "POST " + USER_TOKEN))

    async def revoke_session_tokens(self, user_id: str) -> None:
        """Revoke every session token of a user (used on sign-out).

        Raises:
            SendbirdInputError: ``user_id`` is invalid.
            SendbirdNotFoundError: The user does not exist.
            SendbirdError: Any other failure.
        """
        _check_user_id(user_id)
        # Urgent: a sign-out's revocation must not queue behind a burst of issuances.
        await self._request("DELETE", USER_TOKEN, user_id=user_id, urgent=True)

    # -------------------------------------------------------------- plumbing

    async def _request(
        self,
        method: str,
        template: str,
        *,
        user_id: str | None = None,
        bot_id: str | None = None,
        json_body: Mapping[str, object] | None = None,
        urgent: bool = False,
    ) -> Any:
        """Send one API call with retries; return the decoded JSON body (or ``None``).

        Retries follow :mod:`.retry`. The path is built from already percent-encoded
        segments; httpx keeps valid percent-escapes as they are, so ``%2F`` reaches
        the server unchanged (the test suite checks this against a real server).
        """
        endpoint = f"{method} {template}"
        path = template
        if user_id is not None:
            path = template.replace("{user_id}", encode_path_segment(user_id))
        if bot_id is not None:
            path = path.replace("{bot_id}", encode_path_segment(bot_id))
        content = None
        if json_body is not None:
            content = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
        policy = self._retry
        attempt = 0
        previous: SendbirdError | None = None
        while True:
            attempt += 1
            started = time.perf_counter()
            cause: Exception | None = None
            retry_after: float | None = None
            failure: SendbirdError
            try:
                response = await self._send(method, path, content, endpoint, urgent=urgent)
            except SendbirdQueueTimeoutError as queued:
                self._log_attempt(endpoint, "queue timeout", attempt, started)
                if previous is not None:
                    # An earlier attempt was sent (and may have taken effect): its failure
                    # is what the caller must see, not "not sent".
                    raise previous from queued
                raise
            except httpx.PoolTimeout as exc:
                # Waiting for one of our own connections: the request never left this
                # process, and a retry would only queue again behind the same requests.
                self._log_attempt(endpoint, type(exc).__name__, attempt, started)
                if previous is not None:
                    raise previous from exc
                raise self._queue_timeout_error(endpoint, attempt) from exc
            except httpx.TimeoutException as exc:
                cause, failure = exc, self._timeout_error(exc, endpoint, attempt)
                outcome = type(exc).__name__
            except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
                cause, failure = exc, self._connection_error(exc, endpoint, attempt)
                outcome = type(exc).__name__
            except httpx.HTTPError as exc:
                # Unsupported scheme, malformed request...: retrying cannot help.
                self._log_attempt(endpoint, type(exc).__name__, attempt, started)
                raise self._connection_error(exc, endpoint, attempt) from exc
            else:
                outcome = str(response.status_code)
                if response.is_success:
                    self._log_attempt(endpoint, outcome, attempt, started)
                    return self._decode(response, endpoint)
                failure = error_from_response(
                    response.status_code,
                    response.content,
                    response.headers,
                    endpoint=endpoint,
                    secrets=self._secrets,
                )
                retry_after = failure.retry_after
            self._log_attempt(endpoint, outcome, attempt, started)

            if not failure.retryable:
                raise failure
            if retry_after is not None and retry_after > policy.max_retry_after:
                if isinstance(failure, SendbirdRateLimitError):
                    raise SendbirdRetryAfterTooLongError(
                        failure.status_code,
                        failure.code,
                        failure.message,
                        failure.request_id,
                        retry_after=retry_after,
                        max_retry_after=policy.max_retry_after,
                        endpoint=endpoint,
                    )
                raise failure  # a 5xx asking for a long pause: give up now, don't wait
            if attempt > policy.max_retries:
                raise failure from cause
            previous = failure
            delay = policy.compute_delay(attempt, retry_after)
            self._logger.warning(
                "Sendbird %s failed (%s); retry %d of %d in %.2f s",
                endpoint,
                _short_reason(failure, outcome),
                attempt,
                policy.max_retries,
                delay,
            )
            await self._sleep(delay)

    async def _send(
        self, method: str, path: str, content: bytes | None, endpoint: str, *, urgent: bool
    ) -> httpx.Response:
        """One HTTP exchange, inside a call slot when calls in flight are bounded.

        The slot is held for the exchange only, never across a retry's backoff sleep, so a
        call that waits to retry does not keep others from Sendbird.
        """
        if self._slots is None:
            self.call_counts[endpoint] += 1
            return await self._http.request(method, path, content=content)
        async with self._slots.slot(endpoint, urgent=urgent):
            self.call_counts[endpoint] += 1
            return await self._http.request(method, path, content=content)

    def _queue_timeout_error(self, endpoint: str, attempts: int) -> SendbirdQueueTimeoutError:
        limit = self._timeout.pool
        limit_text = f" within the pool timeout ({limit:g} s)" if limit is not None else ""
        return SendbirdQueueTimeoutError(
            f"{endpoint}: not sent; no pooled connection to Sendbird came free{limit_text}. "
            "Sendbird is slow or the worker is overloaded; the call was not retried, which "
            "would only lengthen the queue",
            endpoint=endpoint,
            attempts=attempts,
        )

    def _log_attempt(self, endpoint: str, outcome: str, attempt: int, started: float) -> None:
        # Path *template* only: no user id, no headers, no body, hence no token.
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._logger.debug(
            "Sendbird %s -> %s (attempt %d, %.0f ms)", endpoint, outcome, attempt, elapsed_ms
        )

    def _decode(self, response: httpx.Response, endpoint: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise SendbirdAPIError(
                response.status_code,
                None,
                "the success response was not JSON; is the base URL pointing at Sendbird?",
                endpoint=endpoint,
            ) from None

    def _timeout_error(
        self, exc: httpx.TimeoutException, endpoint: str, attempts: int
    ) -> SendbirdTimeoutError:
        phase, limit = {
            httpx.ConnectTimeout: ("connect", self._timeout.connect),
            httpx.ReadTimeout: ("read", self._timeout.read),
            httpx.WriteTimeout: ("write", self._timeout.write),
        }.get(type(exc), ("request", None))
        limit_text = f" ({limit:g} s)" if limit is not None else ""
        return SendbirdTimeoutError(
            f"{endpoint}: Sendbird did not answer within the {phase} timeout{limit_text} "
            f"after {attempts} attempt(s); check the network or raise the timeout",
            endpoint=endpoint,
            attempts=attempts,
        )

    def _connection_error(
        self, exc: httpx.HTTPError, endpoint: str, attempts: int
    ) -> SendbirdConnectionError:
        detail = redact(str(exc) or type(exc).__name__, self._secrets)
        return SendbirdConnectionError(
            f"{endpoint}: could not talk to Sendbird at {self._base_url} after {attempts} "
            f"attempt(s) ({type(exc).__name__}: {detail}); check the network and the base URL",
            endpoint=endpoint,
            attempts=attempts,
        )


def _normalise_base_url(base_url: str) -> str:
    if not isinstance(base_url, str):
        raise SendbirdInputError("base_url", "must be a string")
    try:
        url = httpx.URL(base_url.strip())
    except httpx.InvalidURL:
        raise SendbirdInputError("base_url", "is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise SendbirdInputError(
            "base_url", "must be an http(s) URL such as https://api-<APP_ID>.sendbird.com"
        )
    if url.query or url.fragment or url.userinfo:
        raise SendbirdInputError("base_url", "must not contain credentials, a query or a fragment")
    text = str(url).rstrip("/")
    # Sendbird documents the base URL as ".../v3"; our paths already start with /v3.
    if text.endswith("/v3"):
        text = text[: -len("/v3")]
    return text


def _check_user_id(user_id: object, field: str = "user_id") -> None:
    if not isinstance(user_id, str):
        raise SendbirdInputError(field, "must be a string")
    if not user_id:
        raise SendbirdInputError(field, "must not be empty")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise SendbirdInputError(
            field,
            f"is {len(user_id)} characters long; Sendbird allows at most {MAX_USER_ID_LENGTH}",
        )


def _check_text(field: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        raise SendbirdInputError(field, "must be a string")
    if len(value) > limit:
        raise SendbirdInputError(
            field, f"is {len(value)} characters long; Sendbird allows at most {limit}"
        )


def _check_metadata(metadata: object) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise SendbirdInputError("metadata", "must be a mapping of strings to strings")
    if len(metadata) > MAX_METADATA_ITEMS:
        raise SendbirdInputError(
            "metadata",
            f"has {len(metadata)} items; Sendbird allows at most {MAX_METADATA_ITEMS}",
        )
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise SendbirdInputError("metadata", "keys must be non-empty strings, values strings")


def _expect_object(data: Any, endpoint: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SendbirdError(f"{endpoint}: Sendbird returned no JSON object; unexpected response")
    return data


def _short_reason(failure: SendbirdError, outcome: str) -> str:
    if isinstance(failure, SendbirdAPIError):
        code = f" code {failure.code}" if failure.code is not None else ""
        return f"HTTP {failure.status_code}{code}"
    return outcome
