"""Reflex configuration: app name, plugins and database; no secrets (they live in .env)."""

import os

import reflex as rx

config = rx.Config(
    app_name="sample_app",
    # Accounts live here; any SQLAlchemy URL works (e.g. postgresql+psycopg://...).
    db_url=os.environ.get("REFLEX_DB_URL", "sqlite:///reflex.db"),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # No sitemap: every page but sign-in needs an account.
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="medium")),
    ],
)
