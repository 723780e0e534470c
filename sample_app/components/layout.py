"""The page frame: a header saying where chat traffic goes, and the signed-in account."""

import reflex as rx

from sample_app.config import get_settings


def mode_badge() -> rx.Component:
    """Say plainly whether the app runs on the local sandbox or on real Sendbird."""
    settings = get_settings()
    if settings.is_sandbox:
        # A native tooltip (`title`): the chat page's notice says the same at length, and a
        # Radix tooltip would be one more component for every page view to hydrate.
        return rx.badge(
            "Local Sendbird sandbox",
            color_scheme="amber",
            size="2",
            title=(
                "No Sendbird credentials are configured, so the app runs on its embedded "
                f"sandbox at {settings.widget_api_host}. Put SENDBIRD_APP_ID, "
                "SENDBIRD_API_TOKEN and SENDBIRD_BOT_ID in .env to use real Sendbird."
            ),
        )
    return rx.badge(f"Sendbird app {settings.app_id}", color_scheme="green", size="2")


def header(*right: rx.Component) -> rx.Component:
    """The top bar of every page."""
    return rx.hstack(
        rx.hstack(
            rx.icon("bot-message-square", size=26),
            rx.heading("AI chatbot with a custom session handler", size="5"),
            mode_badge(),
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.spacer(),
        *right,
        width="100%",
        align="center",
        padding_y="12px",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        margin_bottom="16px",
    )


def page_frame(*children: rx.Component, right: tuple[rx.Component, ...] = ()) -> rx.Component:
    """Header plus content, centred."""
    return rx.container(header(*right), *children, size="4", padding_x="16px")


def sandbox_notice() -> rx.Component:
    """On the sandbox, say so where the chat is, with how to switch to real Sendbird."""
    settings = get_settings()
    if not settings.is_sandbox:
        return rx.fragment()
    started = (
        "running beside the app"
        if settings.sandbox is not None and settings.sandbox.external
        else "started with the app"
    )
    notice = rx.callout(
        f"This chat runs on the local Sendbird sandbox, an emulator {started}: no "
        "Sendbird account is needed, and the bot is the sandbox's own. Put SENDBIRD_APP_ID, "
        "SENDBIRD_API_TOKEN and SENDBIRD_BOT_ID in .env to use real Sendbird.",
        icon="info",
        color_scheme="amber",
        size="1",
        margin_bottom="12px",
        data_testid="sandbox-notice",
    )
    if settings.sandbox is None or not settings.sandbox.allow_login_without_token:
        return notice
    return rx.fragment(
        notice,
        rx.callout(
            "This sandbox accepts chat logins without a session token "
            "(SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN), as Sendbird does unless the dashboard's "
            '"Deny login" is set: anyone who knows a user id could then connect as that user, '
            "and the server-issued tokens protect nothing. Turn Deny login on for a real "
            "application.",
            icon="triangle_alert",
            color_scheme="red",
            size="1",
            margin_bottom="12px",
            data_testid="login-without-token-warning",
        ),
    )
