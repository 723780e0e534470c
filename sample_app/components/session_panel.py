"""The session panel: what the widget's session is doing, as the user can see it.

The session callbacks land in the server state and show up as a status, the token's expiry,
the last refresh and error, and a timeline of events, with the actions that make sense in
each state.

Plain HTML elements styled by `assets/session_panel.css` (Radix's own tokens), not a Radix
component per line: the panel re-renders on every state delta of a page load, and with
about 35 Radix components it cost the chat page some 90 ms of script before the widget's
launcher could show (`benchmarks/launcher.py`).
"""

from typing import Any

import reflex as rx
from reflex.event import EventType

from sample_app.state.chat_session import ChatSessionState, SessionEvent

# Linked into assets/external/ by Reflex so Vite can import it as a module.
_TOKEN_EXPIRY_MODULE = rx.asset(path="token_expiry.jsx", shared=True).importable_path

STYLESHEET = "/session_panel.css"


def _row(label: str, value: rx.Component) -> rx.Component:
    """One fact of the session: a term and its value in the panel's description list."""
    return rx.el.div(rx.el.dt(label), rx.el.dd(value))


def _timeline_item(event: SessionEvent) -> rx.Component:
    return rx.el.li(
        rx.el.code(event["at"]),
        rx.el.span(event["kind"], class_name="session-event-kind"),
        rx.el.span(event["detail"], class_name="session-muted"),
    )


def _button(
    label: str,
    on_click: EventType[()],
    *,
    variant: str = "solid",
    tone: str = "accent",
    disabled: Any = False,  # a bool Var; `~State.flag` types as int to mypy
) -> rx.Component:
    """A panel button; `variant` (solid, soft, outline) and `tone` (accent, red) pick its look."""
    return rx.el.button(
        label,
        on_click=on_click,
        disabled=disabled,
        type="button",
        class_name="session-button",
        data_variant=variant,
        data_tone=tone,
    )


class TokenExpiry(rx.Component):
    """When the token expires, relative and local ("in 29 minutes (14:05:09)"), ticking.

    Its own few lines of JavaScript (`token_expiry.jsx`), not `rx.moment`: moment.js would
    be loaded and run just as the first token arrives, delaying the widget's launcher.
    """

    library = _TOKEN_EXPIRY_MODULE
    tag = "TokenExpiry"

    expires_at: rx.Var[str]
    """The token's expiry, an ISO 8601 timestamp with its offset."""


def _expiry() -> rx.Component:
    return rx.cond(
        ChatSessionState.token_expires_at != "",
        rx.el.span(
            TokenExpiry.create(expires_at=ChatSessionState.token_expires_at),
            data_testid="token-expiry",
        ),
        rx.el.span("no token", class_name="session-muted"),
    )


def _sandbox_controls() -> rx.Component:
    """Buttons that make the sandbox do what Sendbird does over a session's life."""
    state = ChatSessionState
    return rx.cond(
        state.on_sandbox & state.widget_visible,
        rx.el.div(
            rx.el.p("Make the sandbox…", class_name="session-label"),
            rx.el.div(
                _button("Expire token now", state.sandbox_expire_token, variant="soft"),
                _button("Expire session key", state.sandbox_expire_session_key, variant="soft"),
                _button("Revoke session", state.sandbox_revoke, variant="soft", tone="red"),
                class_name="session-actions",
            ),
        ),
    )


def session_panel() -> rx.Component:
    """The panel next to the widget."""
    state = ChatSessionState
    return rx.card(
        rx.el.div(
            rx.heading("Session", size="4"),
            rx.el.dl(
                _row(
                    "Status",
                    # Until the page's on_load has run, the state is the previous page view's
                    # (a reload keeps it): its "Connected" is stale, so it is not shown.
                    rx.el.span(
                        rx.cond(rx.State.is_hydrated, state.status, "Loading…"),
                        class_name="session-badge",
                        data_tone=rx.cond(rx.State.is_hydrated, state.status_tone, "gray"),
                        data_testid="session-status",
                    ),
                ),
                _row(
                    "Sendbird user",
                    rx.el.code(state.sendbird_user_id, data_testid="sendbird-user-id"),
                ),
                _row("Token expires", _expiry()),
                _row(
                    "Last refresh",
                    rx.el.span(
                        rx.cond(state.last_refresh_at != "", state.last_refresh_at + " UTC", "—"),
                        data_testid="last-refresh",
                    ),
                ),
                _row(
                    "Last error",
                    rx.el.span(
                        rx.cond(state.last_error != "", state.last_error, "—"),
                        data_tone=rx.cond(state.last_error != "", "red", "gray"),
                        data_testid="last-error",
                    ),
                ),
                class_name="session-facts",
            ),
            rx.el.div(
                _button("Reconnect", state.reconnect, disabled=~state.reconnect_offered),
                _button(
                    "End session",
                    state.end_session,
                    variant="outline",
                    disabled=~state.widget_visible,
                ),
                class_name="session-actions",
            ),
            _sandbox_controls(),
            rx.el.hr(),
            rx.el.p("Timeline (newest first)", class_name="session-label"),
            rx.el.ol(
                rx.foreach(state.timeline, _timeline_item),
                # `list-style: none` drops the list role in some browsers: say it.
                role="list",
                aria_label="Session timeline",
                data_testid="session-timeline",
                class_name="session-timeline",
            ),
            class_name="session-panel",
        ),
        width="100%",
    )
