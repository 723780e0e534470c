"""Sign-in and registration pages."""

import reflex as rx

from sample_app import routes
from sample_app.components.forms import field, form_error
from sample_app.components.layout import page_frame
from sample_app.state.auth import AuthState


def _card(title: str, *children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(rx.vstack(rx.heading(title, size="6"), *children, spacing="4"), width="420px"),
        padding_top="24px",
    )


@rx.page(
    route=routes.SIGN_IN,
    title="Sign in",
    image="/favicon.svg",
    on_load=AuthState.redirect_if_signed_in,
)
def sign_in() -> rx.Component:
    """Sign in with a username and password."""
    return page_frame(
        _card(
            "Sign in",
            rx.form(
                rx.vstack(
                    form_error(),
                    field("Username", "username", autocomplete="username"),
                    field(
                        "Password",
                        "password",
                        input_type="password",
                        autocomplete="current-password",
                    ),
                    rx.button("Sign in", type="submit", width="100%", loading=AuthState.submitting),
                    spacing="3",
                ),
                on_submit=AuthState.sign_in,
                reset_on_submit=False,
                aria_label="Sign in",
            ),
            rx.text("No account yet? ", rx.link("Create one", href=routes.REGISTER), size="2"),
        )
    )


@rx.page(
    route=routes.REGISTER,
    title="Create an account",
    image="/favicon.svg",
    on_load=AuthState.redirect_if_signed_in,
)
def register() -> rx.Component:
    """Create an account; the display name becomes the chat nickname."""
    return page_frame(
        _card(
            "Create an account",
            rx.form(
                rx.vstack(
                    form_error(),
                    field(
                        "Username",
                        "username",
                        autocomplete="username",
                        hint="3-32 characters: letters, digits, '.', '_' or '-'.",
                    ),
                    field(
                        "Display name",
                        "display_name",
                        autocomplete="nickname",
                        hint="Shown in the chat (up to 80 characters).",
                    ),
                    field(
                        "Password",
                        "password",
                        input_type="password",
                        autocomplete="new-password",
                        hint="At least 10 characters.",
                    ),
                    field(
                        "Confirm password",
                        "confirm_password",
                        input_type="password",
                        autocomplete="new-password",
                    ),
                    rx.button(
                        "Create account", type="submit", width="100%", loading=AuthState.submitting
                    ),
                    spacing="3",
                ),
                on_submit=AuthState.register,
                reset_on_submit=False,
                aria_label="Create an account",
            ),
            rx.text("Already registered? ", rx.link("Sign in", href=routes.SIGN_IN), size="2"),
        )
    )
