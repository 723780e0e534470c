"""`reflex run` with no Sendbird credentials: a working chat on the embedded sandbox.

This is what `make run` gives a newcomer: the development server (Vite), the backend
starting the sandbox in its lifespan, and a visitor who signs up and chats with the bot.
It runs before the production-build tests (see tests/conftest.py), since both compile the
app into .web/.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from sample_app.config import PROJECT_ROOT
from tests.browser.helpers import PASSWORD, send_message, unique_username, wait_for_chat

STARTUP_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dev_app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `reflex run` as `make run` does, on free ports, with throwaway databases."""
    data = tmp_path_factory.mktemp("reflex-run")
    env = dict(os.environ)
    env.update(
        # Empty values win over any .env a developer has: force the sandbox.
        SENDBIRD_APP_ID="",
        SENDBIRD_API_TOKEN="",
        SENDBIRD_BOT_ID="",
        SANDBOX_PORT=str(_free_port()),
        SANDBOX_DB_PATH=str(data / "sandbox.db"),
        REFLEX_DB_URL=f"sqlite:///{data / 'accounts.db'}",
    )
    reflex = Path(sys.executable).parent / "reflex"
    command = [
        str(reflex), "run",
        "--frontend-port", str(_free_port()),
        "--backend-port", str(_free_port()),
        "--backend-host", "127.0.0.1",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own CLI with fixed arguments
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()
    found: dict[str, str] = {}

    def read_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if match := re.search(r"App running at: (\S+)", line):
                found["url"] = match.group(1)
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    try:
        ready.wait(STARTUP_TIMEOUT_S)
        if "url" not in found:
            pytest.fail("`reflex run` did not start:\n" + "".join(output[-40:]))
        yield found["url"].rstrip("/")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(timeout=10)  # the pipe reaches EOF once the process group is gone
        if process.stdout is not None:
            process.stdout.close()


def test_new_visitor_chats_with_the_sandbox_bot(browser: Browser, dev_app_url: str) -> None:
    context = browser.new_context(base_url=dev_app_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)  # the dev server compiles pages on first request
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/")
        # Nobody is signed in: the chat page sends the visitor to sign in.
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        expect(page.get_by_text("Local Sendbird sandbox")).to_be_visible()

        # Vite optimises dependencies on the first visit and may reload the page once:
        # let that settle before typing.
        page.wait_for_load_state("networkidle")
        page.get_by_role("link", name="Create one").click()
        expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
        page.get_by_label("Username").fill(unique_username("visitor"))
        page.get_by_label("Display name").fill("New Visitor")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_label("Confirm password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()

        wait_for_chat(page)
        expect(page.get_by_test_id("sandbox-notice")).to_contain_text("local Sendbird sandbox")
        send_message(page, "help")
        expect(page.get_by_text("I'm the Sandbox Bot")).to_be_visible(timeout=30_000)
        assert errors == []
    finally:
        context.close()
