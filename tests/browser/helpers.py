"""What a user does in the app, as Playwright steps (selected by labels and roles)."""

from __future__ import annotations

import itertools
import time

from playwright.sync_api import Locator, Page, expect

PASSWORD = "correct-horse-battery-9"
_counter = itertools.count(1)

# The widget's own DOM (Sendbird UIKit class names).
LAUNCHER = "#aichatbot-widget-button"
MESSAGE_INPUT = ".sendbird-message-input--textarea"


def unique_username(stem: str = "user") -> str:
    """A username no other test uses."""
    return f"{stem}{int(time.time() * 1000) % 10_000_000}{next(_counter)}"


def register(page: Page, username: str, display_name: str, password: str = PASSWORD) -> None:
    """Create an account through the form; ends on the chat page."""
    page.goto("/register")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Display name").fill(display_name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password").fill(password)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form; ends on the chat page."""
    page.goto("/sign-in")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


def sign_out(page: Page) -> None:
    """Sign out from the chat page; ends on the sign-in page."""
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def timeline(page: Page) -> Locator:
    """The session panel's timeline."""
    return page.get_by_test_id("session-timeline")


def expect_timeline(page: Page, text: str, timeout: float = 20_000) -> None:
    """Wait until the timeline shows an event."""
    expect(timeline(page)).to_contain_text(text, timeout=timeout)


def sendbird_user_id(page: Page) -> str:
    """The Sendbird user id the server derived for the signed-in account."""
    locator = page.get_by_test_id("sendbird-user-id")
    expect(locator).not_to_have_text("")
    return locator.inner_text().strip()


def wait_for_chat(page: Page) -> None:
    """Wait until the widget is mounted and its chat window can take a message."""
    expect(page.locator(LAUNCHER)).to_be_visible(timeout=30_000)
    expect_timeline(page, "widget mounted")
    if not page.locator(MESSAGE_INPUT).is_visible():
        page.locator(LAUNCHER).click()
    expect(page.locator(MESSAGE_INPUT)).to_be_visible(timeout=30_000)


def send_message(page: Page, text: str) -> None:
    """Type a message into the widget and send it."""
    box = page.locator(MESSAGE_INPUT)
    expect(box).to_be_editable(timeout=20_000)
    box.click()
    box.fill(text)
    box.press("Enter")


def expect_bot_reply(page: Page, to: str, timeout: float = 20_000) -> None:
    """Wait for the sandbox bot's answer to the user's message `to` (it quotes it)."""
    expect(page.get_by_text(f'You said: "{to}"')).to_be_visible(timeout=timeout)
