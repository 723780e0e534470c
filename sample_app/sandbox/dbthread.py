"""One dedicated thread for the sandbox's SQLite work, so the event loop never waits on it.

The embedded sandbox shares the Reflex backend's event loop: a slow disk, a large query or a
lock held elsewhere would freeze the whole app if the store ran on the loop. Every store call
from async code therefore goes through :meth:`DatabaseThread.run`.

Why one thread and not ``asyncio.to_thread``: a single worker runs jobs strictly in submission
order, so two operations started one after the other (a message stored, then listed; a
revoke, then a login) still happen in that order, and the SQLite connection is used by one
thread at a time as its threading rules want. Handlers pass one function doing all of a
request's reads and writes, so a check and the write it guards stay atomic, as they were when
everything ran on the loop. The store keeps its lock for the few callers on other threads
(start-up, white-box tests).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

logger = logging.getLogger("sample_app.sandbox")

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseThread:
    """A single-worker executor for store calls, in FIFO order."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-db")
        self._closed = False

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the database thread and wait for its result.

        Exceptions (``ApiError`` included) propagate to the awaiting coroutine. Cancelling the
        caller does not interrupt a job that has started; a queued one is dropped.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def submit(self, fn: Callable[P, object], /, *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue ``fn`` without waiting (bookkeeping in ``finally`` blocks); errors are logged."""
        if self._closed:
            return
        try:
            future = self._executor.submit(fn, *args, **kwargs)
        except RuntimeError:  # shut down meanwhile
            return
        future.add_done_callback(_log_failure)

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` ran."""
        return self._closed

    def shutdown(self) -> None:
        """Stop accepting work; queued jobs still run (idempotent)."""
        self._closed = True
        self._executor.shutdown(wait=False)


def _log_failure(future: Future[object]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        logger.debug("background store call failed: %s", error)
