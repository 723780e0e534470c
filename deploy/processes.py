"""What every server the demo site starts needs: a free port, and dying with its launcher."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["StartsAndStops", "free_port", "parent_death_signal"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def parent_death_signal(
    signal_number: int = signal.SIGTERM,
) -> Callable[[], None] | None:
    """A `preexec_fn` that sends the child `signal_number` when its parent thread dies (Linux).

    The servers run in sessions of their own (a terminal's Ctrl-C reaches only the launcher,
    which stops them in order); this makes them go too when the launcher or a test run is
    killed outright. The signal follows the thread that started the child, so start servers
    from the main thread. None elsewhere than Linux.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before the fork

    def set_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal_number)

    return set_signal


class StartsAndStops:
    """`with server:` starts it and stops it however the block ends (Redis, PostgreSQL, site)."""

    def start(self) -> object:
        """Start the server (each subclass says how)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server; safe to call when it is not running."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
