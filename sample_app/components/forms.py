"""Accessible form pieces: every input has a visible label and its own error message."""

import reflex as rx

from sample_app.state.auth import AuthState


def field(
    label: str, name: str, *, input_type: str = "text", autocomplete: str = "", hint: str = ""
) -> rx.Component:
    """A labelled input whose server-side error (if any) is shown right under it."""
    error = AuthState.field_errors.get(name, "")
    return rx.vstack(
        rx.el.label(label, html_for=name, style={"fontWeight": 500, "fontSize": "14px"}),
        rx.input(
            id=name,
            name=name,
            type=input_type,
            auto_complete=autocomplete or None,
            required=True,
            width="100%",
            aria_describedby=f"{name}-error",
            aria_invalid=rx.cond(error != "", "true", "false"),
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color_scheme="gray")),
        rx.text(error, id=f"{name}-error", size="1", color_scheme="red", role="alert"),
        spacing="1",
        width="100%",
    )


def form_error() -> rx.Component:
    """The message for the whole form (wrong credentials, rate limit...)."""
    return rx.cond(
        AuthState.form_error != "",
        rx.callout(AuthState.form_error, icon="triangle_alert", color_scheme="red", role="alert"),
    )
