"""The one fake clock of the test suite: aware UTC time that moves only when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock for code that takes `clock: Callable[[], datetime]`.

    Calling it returns `now`, an aware UTC datetime that changes only through `advance`
    (or by assigning `now`).

    Args:
        now: The starting time; it must be timezone-aware and is converted to UTC.
    """

    def __init__(self, now: datetime = START) -> None:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **timedelta_kwargs: float) -> None:
        """Move the clock on by `timedelta(**timedelta_kwargs)` (negative moves it back)."""
        self.now += timedelta(**timedelta_kwargs)
