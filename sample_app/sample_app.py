"""The Reflex app: pages, the HTTP API, and the backend resources that live with the server."""

import reflex as rx

from sample_app.components.how_it_works import STYLESHEET as HOW_IT_WORKS_STYLESHEET
from sample_app.components.session_panel import STYLESHEET as SESSION_PANEL_STYLESHEET
from sample_app.config import get_settings
from sample_app.http_api import SampleApp, api_transformer, cors_allowed_origins
from sample_app.logging_config import configure_logging
from sample_app.pages import chat, sign_in  # noqa: F401 - importing registers the pages
from sample_app.services import backend_lifespan

# The app's own log lines (LOG_LEVEL, LOG_FORMAT=json), in every worker and under `reflex run`.
configure_logging()
# Fail at start with every configuration problem listed, not at the first token request.
get_settings()
cors_allowed_origins()  # API_CORS_ALLOWED_ORIGINS too

# SampleApp is rx.App whose backend ends in the HTTP API's own CORS policy; the API
# (/api/sendbird/*, /api/openapi.json) and the embed page are served by the same backend
# process and port through Reflex's api_transformer hook (sample_app/http_api.py).
app = SampleApp(
    head_components=[rx.el.link(rel="icon", href="/favicon.svg", type="image/svg+xml")],
    stylesheets=[HOW_IT_WORKS_STYLESHEET, SESSION_PANEL_STYLESHEET],
    api_transformer=api_transformer,
)
app.register_lifespan_task(backend_lifespan)
