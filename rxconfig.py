"""Reflex configuration: app name, plugins and database; no secrets (they live in .env)."""

import os

import reflex as rx

from sample_app.config import load_env_file, state_lock_expiration_ms

# `.env` first, so REFLEX_DB_URL (and everything else) written there is honoured by
# `reflex run`, `reflex export` and every worker; the real environment still wins.
load_env_file()

config = rx.Config(
    app_name="sample_app",
    # Accounts live here; any SQLAlchemy URL works (e.g. postgresql+psycopg://...).
    db_url=os.environ.get("REFLEX_DB_URL", "sqlite:///reflex.db"),
    # With Redis (REFLEX_REDIS_URL, several workers), a tab's state lock must outlive the
    # longest event handler, or Reflex discards its writes; handlers are bounded by the
    # token-request deadline, and the lock is derived from it (sample_app/config.py).
    redis_lock_expiration=state_lock_expiration_ms(),
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # No sitemap: every page but sign-in needs an account.
    disable_plugins=[rx.plugins.SitemapPlugin],
    plugins=[
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="medium")),
    ],
)
