"""A bounded number of Sendbird calls in flight per process, with an orderly queue.

Why not just let httpx queue: its connection pool scans every waiting request against
every connection each time one is released, so with hundreds of token requests waiting
the scan itself takes the worker's CPU, pool timeouts follow and, retried, make the queue
longer still. Here a call first takes one of ``limit`` slots (the pool is sized to match,
so it never queues); the others wait in a plain FIFO queue, are served strictly in
arrival order (a released slot is handed to the oldest waiter, never grabbed by a
newcomer; only a revocation waits at the front), and give up after ``max_wait`` with an
error that says the call was never sent.

The app's issuance budget (:mod:`sample_app.issuance_budget`) decides *whether* a token
may be issued at all; these slots decide *how many* calls this process has at Sendbird at
once. One is the rate seen from the application, the other the concurrency seen from a
worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import AsyncIterator

from .errors import SendbirdQueueTimeoutError

__all__ = ["DEFAULT_CALLS_IN_FLIGHT", "CallSlots"]

#: Calls in flight per process. Sendbird answers a token request in tens of milliseconds,
#: so 16 connections carry hundreds of answers a second; more only queue at Sendbird (and
#: spend its per-app rate limit faster) instead of here, where the queue is cheap.
DEFAULT_CALLS_IN_FLIGHT = 16


class CallSlots:
    """At most ``limit`` holders at once; waiters are served first come, first served.

    Not thread-safe: one instance belongs to one event loop (one per client, one client per
    process).
    """

    def __init__(self, limit: int, *, max_wait: float) -> None:
        """Create the slots.

        Args:
            limit: Calls allowed in flight at once (>= 1).
            max_wait: Longest a call waits for a slot, in seconds (> 0).

        Raises:
            ValueError: ``limit`` or ``max_wait`` is out of range.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        if not math.isfinite(max_wait) or max_wait <= 0:
            raise ValueError(f"max_wait must be a positive number of seconds, got {max_wait!r}")
        self._limit = limit
        self._max_wait = max_wait
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        """Calls allowed in flight at once."""
        return self._limit

    @property
    def in_flight(self) -> int:
        """Slots held right now."""
        return self._limit - self._free

    @property
    def waiting(self) -> int:
        """Calls queued for a slot right now."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    @contextlib.asynccontextmanager
    async def slot(self, endpoint: str, *, urgent: bool = False) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block.

        Args:
            endpoint: ``"METHOD /path/{template}"`` of the call, for the error message.
            urgent: Wait at the front of the queue, not the back. For the calls that must
                not wait behind a burst of issuances: a sign-out's revocation, which leaves
                the user's session tokens valid if it times out.

        Raises:
            SendbirdQueueTimeoutError: No slot came free within ``max_wait``; nothing was
                sent.
        """
        await self._acquire(endpoint, urgent=urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, endpoint: str, *, urgent: bool) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if urgent:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._max_wait):
                await waiter
        except TimeoutError:
            if self._handed_over(waiter):
                return  # the slot arrived just as the wait ran out: use it
            raise SendbirdQueueTimeoutError(
                f"{endpoint}: not sent; all {self._limit} Sendbird call slots of this "
                f"process stayed busy for {time.monotonic() - started:.1f} s "
                f"({len(self._waiters)} other calls queued). Sendbird is slow or the worker "
                "is overloaded; the call was not retried, which would only lengthen the queue",
                endpoint=endpoint,
            ) from None
        except asyncio.CancelledError:
            if self._handed_over(waiter):
                self._release()  # given a slot, then cancelled: pass it on
            raise

    def _handed_over(self, waiter: asyncio.Future[None]) -> bool:
        """Whether `waiter` already holds a slot; if not, take it out of the queue."""
        if waiter.done() and not waiter.cancelled():
            return True
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        return False

    def _release(self) -> None:
        # Hand the slot straight to the oldest live waiter, so nobody can overtake it.
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
