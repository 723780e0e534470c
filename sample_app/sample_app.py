"""The Reflex app: pages, and the backend resources that live as long as the server."""

import reflex as rx

from sample_app.config import get_settings
from sample_app.logging_config import configure_logging
from sample_app.pages import chat, sign_in  # noqa: F401 - importing registers the pages
from sample_app.services import backend_lifespan

# The app's own log lines (LOG_LEVEL, LOG_FORMAT=json), in every worker and under `reflex run`.
configure_logging()
# Fail at start with every configuration problem listed, not at the first token request.
get_settings()

app = rx.App(head_components=[rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml")])
app.register_lifespan_task(backend_lifespan)
