"""The chat page (skeleton): renders the widget with values from configuration."""

import reflex as rx

from sample_app.components.chat_ai_widget import chat_ai_widget
from sample_app.config import get_settings


@rx.page(route="/", title="Sendbird AI chatbot with a custom session handler")
def index() -> rx.Component:
    """The page with the widget."""
    settings = get_settings()
    return rx.container(
        rx.heading("Sendbird AI chatbot", size="7"),
        rx.text(f"Mode: {settings.mode}"),
        chat_ai_widget(
            application_id=settings.app_id,
            bot_id=settings.bot_id,
            user_id="skeleton-user",
            session_token="skeleton-token",
            user_nick_name="Skeleton",
            api_host=settings.widget_api_host,
            ws_host=settings.widget_ws_host,
            auto_open=False,
        ),
    )
