"""The one place that hides secrets from messages and log lines.

Two kinds of secret pass through this package: the application's ``Api-Token`` (which
can administer the whole Sendbird application) and the session tokens we issue for
users (each one lets a browser act as that user until it expires). Neither may end up
in an exception message, a ``repr`` or a log record, because those are routinely copied
into bug reports, CI output and log aggregators.

The client is written so that it never *puts* a secret in a message in the first
place (it logs path templates, never headers or bodies). :func:`redact` and
:class:`RedactingFilter` are the second line of defence for text we do not control,
such as an error message echoed back by a server or a proxy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "[REDACTED]"

# Sendbird's new-style session tokens are JWT-shaped ("eyJhbGciOi..."). Anything that
# looks like a JWT is hidden even when we do not know the exact value, e.g. a token
# issued by another process and echoed back in a server message.
_JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,2}")

# Secrets shorter than this are not scrubbed by value: replacing every "a" in a log
# line because someone configured the token "a" would destroy the message and hide
# nothing of value. Real Api-Tokens are 40 hex characters.
_MIN_SECRET_LENGTH = 8


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with known secrets and token-shaped strings replaced.

    Args:
        text: Any human-readable text that may have come from outside our code.
        secrets: Exact values to hide (typically the API token).

    Returns:
        The text with every occurrence of a secret, and of anything that looks like
        a JWT, replaced by ``[REDACTED]``.
    """
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return _JWT_LIKE.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Logging filter that scrubs secrets from records before handlers see them.

    The client installs one on its logger for as long as it is open. It rewrites the
    formatted message only when something had to be hidden, so ordinary records keep
    their lazy ``%``-style arguments.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Create a filter.

        Args:
            secrets: Exact values to hide in addition to JWT-shaped strings.
        """
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        # The default repr is harmless, but be explicit: the secrets stay private.
        return f"<RedactingFilter secrets={len(self._secrets)}>"

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the handler's problem, not ours
            return True
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
