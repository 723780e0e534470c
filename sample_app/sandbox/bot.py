"""The sandbox's chatbot: deterministic, instant and about the session flow it is part of.

A real Sendbird AI bot would need an LLM and network access. The sandbox only needs a bot that
answers every message, so the widget's full cycle (typing indicator, reply bubble, suggested
reply chips) can be tested, and whose answers are stable enough to assert on. The answers
explain what the demo is about: the server issues session tokens through the Platform API and
the widget refreshes them through ``onSessionTokenRequired``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUESTIONS = {
    "token": "How are session tokens issued?",
    "session": "What is a session key?",
    "expire": "What happens when a token expires?",
    "revoke": "How do I revoke a session?",
    "sandbox": "What can the sandbox do?",
}

TOPIC_ORDER = ("revoke", "expire", "sandbox", "session", "token", "help")

KEYWORDS: dict[str, tuple[str, ...]] = {
    "revoke": ("revok", "logout", "log out", "sign out", "400310", "onsessionclosed"),
    "expire": ("expir", "refresh", "renew", "400302", "onsessiontokenrequired"),
    "sandbox": ("sandbox", "fault", "outage", "429", "rate limit", "stats", "reset", "control"),
    "session": (
        "session key",
        "session-key",
        "session_key",
        "sessionkey",
        "key",
        "400309",
        "reconnect",
        "logi",
    ),
    "token": ("token", "session", "api-token", "api token", "platform api"),
    "help": ("help", "hi", "hello", "hey", "start", "what can you do", "who are you"),
}

ANSWERS = {
    "help": (
        "Hi! I'm the Sandbox Bot, running inside the local Sendbird sandbox. This chat "
        "demonstrates server-issued session tokens:\n"
        "1. The Reflex server calls the Platform API (POST /v3/users/{user_id}/token with the "
        "Api-Token header, which never reaches the browser) and passes the session token to "
        "the widget.\n"
        "2. The widget logs in over the WebSocket with that token and receives a session key.\n"
        "3. When the token expires, the widget calls onSessionTokenRequired; the handler asks "
        "the server for a fresh token and calls resolve(token).\n"
        'Ask me about "token", "session key", "expire", "revoke" or "sandbox".'
    ),
    "token": (
        "Session tokens are minted by your server, never by the browser: "
        "POST /v3/users/{user_id}/token with the Api-Token header returns "
        '{"token", "expires_at"} (Unix milliseconds, 7 days by default). Cache a valid token '
        "per user on the server instead of minting one per page view: Sendbird rate-limits "
        "POST calls (5 per second on a free trial). The widget needs userId, sessionToken and "
        "configureSession all set, otherwise it silently switches to an anonymous user."
    ),
    "session": (
        "After the WebSocket login (LOGI) the widget holds a session key. The SDK sends it as "
        "the Session-Key header on REST calls and uses it to reconnect without the token. "
        "Session keys expire on their own; the server then sends EXPR 400309 and the SDK "
        "refreshes the key with its current token, with no callback involved unless that "
        "token has expired as well."
    ),
    "expire": (
        "When the session token expires the server sends EXPR 400302 and the SDK calls "
        "onSessionTokenRequired(resolve, reject). The handler should fetch a new token from "
        "your server and call resolve(token); reject(error) ends in onSessionError and "
        "resolve(null) closes the session. Try it: POST "
        "/__sandbox__/users/{user_id}/expire-token (with the Api-Token header) and keep "
        "chatting."
    ),
    "revoke": (
        "DELETE /v3/users/{user_id}/token revokes every session token and session key of the "
        "user. Connected widgets receive EXPR 400310, onSessionClosed fires and the socket "
        "closes; remount the widget with a new token afterwards. In the sandbox, POST "
        "/__sandbox__/users/{user_id}/revoke does the same."
    ),
    "sandbox": (
        "The sandbox control surface lives under /__sandbox__/ and needs the Api-Token header: "
        "reset, users/{user_id}/expire-token, users/{user_id}/expire-session-key, "
        "users/{user_id}/revoke, faults (inject 429, 5xx or delays on any /v3 route), outage, "
        "tokens (issued tokens, digests only) and stats (calls per route)."
    ),
}

MAX_ECHO_CHARS = 200


@dataclass(frozen=True)
class BotReply:
    """What the bot answers.

    Attributes:
        topic: Which canned topic matched (``default`` when none did).
        text: The reply message.
        suggested_replies: Strings shown as chips by the widget
            (``extended_message_payload.suggested_replies``).
    """

    topic: str
    text: str
    suggested_replies: tuple[str, ...]

    @property
    def extended_payload(self) -> dict[str, list[str]]:
        """The ``extended_message_payload`` attached to the reply message."""
        return {"suggested_replies": list(self.suggested_replies)}


def classify(message: str) -> str:
    """Return the topic of a user message (first matching topic in :data:`TOPIC_ORDER`)."""
    text = " ".join(message.lower().split())
    for topic in TOPIC_ORDER:
        for keyword in KEYWORDS[topic]:
            if " " in keyword or not keyword.isalpha():
                if keyword in text:
                    return topic
            elif re.search(rf"\b{re.escape(keyword)}", text):
                if len(keyword) <= 3 and not re.search(rf"\b{re.escape(keyword)}\b", text):
                    continue
                return topic
    return "default"


def reply_to(message: str) -> BotReply:
    """Compute the bot's answer. Pure: the same message always gives the same reply."""
    topic = classify(message)
    if topic == "default":
        quoted = " ".join(message.split())
        if len(quoted) > MAX_ECHO_CHARS:
            quoted = quoted[: MAX_ECHO_CHARS - 1] + "…"
        text = (
            f'You said: "{quoted}". I\'m a deterministic sandbox bot, so I answer from a few '
            "topics: session tokens, session keys, expiry, revocation and the sandbox "
            'controls. Type "help" for an overview.'
        )
    else:
        text = ANSWERS[topic]
    suggestions = tuple(question for key, question in QUESTIONS.items() if key != topic)
    return BotReply(topic=topic, text=text, suggested_replies=suggestions)
