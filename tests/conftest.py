"""Suite-wide settings: tiers are marked by folder, and browser tests run last."""

from pathlib import Path

import pytest

BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/browser as `browser`, then order the tiers.

    Plain tests run first, then sandbox tests, then browser tests: browser tests start the
    whole app (a production build, then two servers), so the fast tiers give feedback
    first and Playwright's event loop stays apart from the asyncio tests that ran before.
    Among browser tests the one that runs `reflex run` (the dev server) goes first, since
    it and the production-build tests both compile the app into .web/.
    """
    for item in items:
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)

    def order(item: pytest.Item) -> tuple[int, bool]:
        if item.get_closest_marker("browser"):
            tier = 2
        elif item.get_closest_marker("sandbox"):
            tier = 1
        else:
            tier = 0
        return tier, "reflex_run" not in item.nodeid

    items.sort(key=order)
