"""The chat page: the live widget, its session panel, and how the flow works."""

import reflex as rx

from sample_app import routes
from sample_app.components.chat_ai_widget import chat_ai_widget, widget_settings_preload
from sample_app.components.how_it_works import how_it_works
from sample_app.components.layout import page_frame, sandbox_notice
from sample_app.components.session_panel import session_panel
from sample_app.state.auth import AuthState
from sample_app.state.chat_session import ChatSessionState


def widget() -> rx.Component:
    """The widget, rendered only once the server has issued a token (manual strategy).

    It also needs the browser's sign-in token: that is shared by every tab (localStorage),
    so a sign-out in one tab empties it in the others and unmounts their widgets at once.
    """
    state = ChatSessionState
    shown = rx.cond(
        state.widget_visible & (state.session_token != "") & (state.sign_in_token != ""),
        chat_ai_widget(
            application_id=state.app_id,
            bot_id=state.bot_id,
            user_id=state.sendbird_user_id,
            session_token=state.session_token,
            user_nick_name=state.nickname,
            api_host=state.widget_api_host,
            ws_host=state.widget_ws_host,
            auto_open=True,
            enable_emoji_feedback=True,
            enable_widget_expand_button=True,
            token_reply=state.token_reply,
            remount_key=state.remount_key,
            on_session_token_required=state.answer_token_request,
            on_session_refreshed=state.session_refreshed,
            on_session_error=state.session_error,
            on_session_closed=state.session_closed,
            on_island_status=state.island_status,
            on_connection_status=state.connection_status,
        ),
    )
    # The widget's settings are fetched while the token is issued, not after the mount.
    return rx.fragment(
        widget_settings_preload(
            api_host=state.widget_api_host, bot_id=state.bot_id, application_id=state.app_id
        ),
        shown,
    )


def account_menu() -> rx.Component:
    """Who is signed in, and the way out."""
    return rx.hstack(
        rx.text("Signed in as ", rx.text.strong(ChatSessionState.display_name), size="2"),
        rx.button("Sign out", on_click=AuthState.sign_out, variant="outline", size="2"),
        rx.button(
            "Sign out everywhere",
            on_click=AuthState.sign_out_everywhere,
            variant="ghost",
            size="2",
            title="End every sign-in of this account, in all browsers",
        ),
        align="center",
    )


@rx.page(
    route=routes.CHAT,
    title="Chat · Sendbird AI chatbot",
    image="/favicon.svg",
    on_load=ChatSessionState.open_chat,
)
def chat() -> rx.Component:
    """The chat page (the server redirects to sign-in when nobody is signed in)."""
    return page_frame(
        sandbox_notice(),
        rx.grid(
            session_panel(),
            how_it_works(),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="4",
            width="100%",
            # Leave room for the open chat window (fixed at the bottom right) on wide screens.
            padding_right=rx.breakpoints(initial="0", lg="420px"),
        ),
        widget(),
        right=(rx.cond(ChatSessionState.username != "", account_menu()),),
    )
