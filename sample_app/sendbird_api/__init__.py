"""Server-side client for Sendbird's Platform API (users and session tokens).

Create one ``SendbirdClient(base_url, api_token)`` per process and close it on shutdown.
Call ``ensure_user`` once per user, then ``issue_session_token(user_id, expires_at)``.
Failures raise typed ``SendbirdError`` subclasses after transient ones were retried;
``SendbirdAuthError`` means a configuration problem, never "user missing".
The API token never leaves the server and never appears in messages or logs.
"""

from .call_slots import DEFAULT_CALLS_IN_FLIGHT, CallSlots
from .client import DEFAULT_TIMEOUT, SendbirdClient, encode_path_segment
from .errors import (
    SendbirdAPIError,
    SendbirdApplicationUnavailableError,
    SendbirdAuthError,
    SendbirdConflictError,
    SendbirdConnectionError,
    SendbirdError,
    SendbirdInputError,
    SendbirdNotAuthorizedError,
    SendbirdNotFoundError,
    SendbirdOriginNotAllowedError,
    SendbirdPlanLimitError,
    SendbirdQueueTimeoutError,
    SendbirdRateLimitError,
    SendbirdRetryAfterTooLongError,
    SendbirdServerError,
    SendbirdTimeoutError,
    SendbirdValidationError,
)
from .models import SendbirdBot, SendbirdUser, SessionToken
from .redaction import RedactingFilter, redact
from .retry import RetryPolicy, parse_retry_after

__all__ = [
    "DEFAULT_CALLS_IN_FLIGHT",
    "DEFAULT_TIMEOUT",
    "CallSlots",
    "RedactingFilter",
    "RetryPolicy",
    "SendbirdAPIError",
    "SendbirdApplicationUnavailableError",
    "SendbirdAuthError",
    "SendbirdBot",
    "SendbirdClient",
    "SendbirdConflictError",
    "SendbirdConnectionError",
    "SendbirdError",
    "SendbirdInputError",
    "SendbirdNotAuthorizedError",
    "SendbirdNotFoundError",
    "SendbirdOriginNotAllowedError",
    "SendbirdPlanLimitError",
    "SendbirdQueueTimeoutError",
    "SendbirdRateLimitError",
    "SendbirdRetryAfterTooLongError",
    "SendbirdServerError",
    "SendbirdTimeoutError",
    "SendbirdUser",
    "SendbirdValidationError",
    "SessionToken",
    "encode_path_segment",
    "parse_retry_after",
    "redact",
]
