"""The page explains itself: the token flow, step by step, with where each step lives."""

import reflex as rx

_STEPS: list[tuple[str, str, str]] = [
    (
        "You sign in",
        "The app's own accounts decide who chats; the browser keeps only an opaque, "
        "revocable sign-in token.",
        "sample_app/state/auth.py · sample_app/accounts/service.py",
    ),
    (
        "The server issues a session token",
        "POST /v3/users/{id}/token with the Api-Token, which never leaves the server, for "
        "an id derived from your account (never sent by the browser). An unexpired token is "
        "reused instead of minting one per page view.",
        "sample_app/identity.py · sample_app/session_tokens.py · ChatSessionState.open_chat",
    ),
    (
        "Your Sendbird user is created when needed",
        "Only if Sendbird answers 400201 (no such user): POST /v3/users with your display "
        "name as nickname and this app's mark, then the token again.",
        "sample_app/session_tokens.py · sample_app/sendbird_api/client.py",
    ),
    (
        "Only then does the widget render",
        "userId + sessionToken + configureSession select the widget's manual session "
        "strategy. It runs in its own React 18 island, loaded once the page is up.",
        "sample_app/components/chat_ai_widget.py · chat_ai_widget.jsx · widget-island/",
    ),
    (
        "The widget asks for a new token",
        "onSessionTokenRequired → a Reflex event → the server checks who you are, issues a "
        "fresh token → resolve(token), or reject(Error) when it cannot.",
        "ChatSessionState.answer_token_request",
    ),
    (
        "Callbacks reach the app",
        "onSessionRefreshed, onSessionError and onSessionClosed update the panel; signing "
        "out ends the sign-in, unmounts the widget, then revokes every session token and "
        "clears the widget's cache.",
        "ChatSessionState.session_* · AuthState.sign_out",
    ),
]


# Plain HTML elements styled by this stylesheet (Radix's own tokens), not a Radix component
# per line: this is static prose, and rendering ~40 Radix components on every page view
# cost the chat page tens of milliseconds before the widget could start.
STYLESHEET = "/how_it_works.css"


def _step(title: str, text: str, where: str) -> rx.Component:
    return rx.el.li(
        rx.el.strong(title),
        rx.el.p(text),
        rx.el.code(where),
    )


def how_it_works() -> rx.Component:
    """The flow between the browser, Reflex state and Sendbird."""
    return rx.card(
        rx.vstack(
            rx.heading("How the session works", size="4"),
            rx.text(
                "Browser ⇄ Reflex state (server) ⇄ Sendbird Platform API. The widget talks to "
                "Sendbird's chat servers directly with the token the server gave it.",
                size="2",
                color_scheme="gray",
            ),
            rx.el.ol(*[_step(*step) for step in _STEPS], class_name="how-it-works-steps"),
            spacing="3",
        ),
        width="100%",
    )
