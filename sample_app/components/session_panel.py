"""The session panel: what the widget's session is doing, as the user can see it.

The session callbacks land in the server state and show up as a status, the token's expiry,
the last refresh and error, and a timeline of events, with the actions that make sense in
each state.
"""

import reflex as rx

from sample_app.state.chat_session import ChatSessionState, SessionEvent

# Linked into assets/external/ by Reflex so Vite can import it as a module.
_TOKEN_EXPIRY_MODULE = rx.asset(path="token_expiry.jsx", shared=True).importable_path


def _row(label: str, value: rx.Component) -> rx.Component:
    return rx.hstack(
        rx.text(label, size="2", color_scheme="gray", min_width="110px"),
        value,
        align="center",
        width="100%",
    )


def _timeline_item(event: SessionEvent) -> rx.Component:
    return rx.hstack(
        rx.code(event["at"], size="1"),
        rx.text(event["kind"], size="2", weight="medium"),
        rx.text(event["detail"], size="1", color_scheme="gray"),
        align="baseline",
        spacing="2",
        wrap="wrap",
        role="listitem",
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
        rx.text(
            TokenExpiry.create(expires_at=ChatSessionState.token_expires_at),
            data_testid="token-expiry",
        ),
        rx.text("no token", color_scheme="gray"),
    )


def _sandbox_controls() -> rx.Component:
    """Buttons that make the sandbox do what Sendbird does over a session's life."""
    return rx.cond(
        ChatSessionState.on_sandbox & ChatSessionState.widget_visible,
        rx.vstack(
            rx.text("Make the sandbox…", size="2", weight="medium"),
            rx.hstack(
                rx.button(
                    "Expire token now",
                    on_click=ChatSessionState.sandbox_expire_token,
                    size="1",
                    variant="soft",
                ),
                rx.button(
                    "Expire session key",
                    on_click=ChatSessionState.sandbox_expire_session_key,
                    size="1",
                    variant="soft",
                ),
                rx.button(
                    "Revoke session",
                    on_click=ChatSessionState.sandbox_revoke,
                    size="1",
                    variant="soft",
                    color_scheme="red",
                ),
                wrap="wrap",
            ),
            spacing="1",
        ),
    )


def session_panel() -> rx.Component:
    """The panel next to the widget."""
    state = ChatSessionState
    return rx.card(
        rx.vstack(
            rx.heading("Session", size="4"),
            _row(
                "Status",
                # Until the page's on_load has run, the state is the previous page view's
                # (a reload keeps it): its "Connected" is stale, so it is not shown.
                rx.badge(
                    rx.cond(rx.State.is_hydrated, state.status, "Loading…"),
                    color_scheme=rx.cond(rx.State.is_hydrated, state.status_tone, "gray"),
                    data_testid="session-status",
                ),
            ),
            _row("Sendbird user", rx.code(state.sendbird_user_id, data_testid="sendbird-user-id")),
            _row("Token expires", _expiry()),
            _row(
                "Last refresh",
                rx.text(
                    rx.cond(state.last_refresh_at != "", state.last_refresh_at + " UTC", "—"),
                    data_testid="last-refresh",
                ),
            ),
            _row(
                "Last error",
                rx.text(
                    rx.cond(state.last_error != "", state.last_error, "—"),
                    color_scheme=rx.cond(state.last_error != "", "red", "gray"),
                    data_testid="last-error",
                ),
            ),
            rx.hstack(
                rx.button(
                    "Reconnect",
                    on_click=state.reconnect,
                    disabled=~state.reconnect_offered,
                    size="2",
                ),
                rx.button(
                    "End session",
                    on_click=state.end_session,
                    disabled=~state.widget_visible,
                    size="2",
                    variant="outline",
                ),
                spacing="2",
            ),
            _sandbox_controls(),
            rx.divider(),
            rx.text("Timeline (newest first)", size="2", weight="medium"),
            rx.scroll_area(
                rx.vstack(
                    rx.foreach(state.timeline, _timeline_item),
                    spacing="1",
                    role="list",
                    aria_label="Session timeline",
                    data_testid="session-timeline",
                ),
                max_height="260px",
                type="auto",
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )
