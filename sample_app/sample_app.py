"""The Reflex app: pages, and the backend resources that live as long as the server."""

import reflex as rx

from sample_app.pages import chat  # noqa: F401 - registers the pages

app = rx.App()
