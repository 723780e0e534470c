"""Suite-wide settings: browser tests run last, after every fast tier has passed."""

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the tiers: plain tests, then sandbox tests, then browser tests.

    Browser tests start the whole app (a production build, then two servers), so running
    them last gives fast feedback first and keeps Playwright's event loop apart from the
    asyncio tests that ran before it.
    """

    def tier(item: pytest.Item) -> int:
        if item.get_closest_marker("browser"):
            return 2
        if item.get_closest_marker("sandbox"):
            return 1
        return 0

    items.sort(key=tier)
