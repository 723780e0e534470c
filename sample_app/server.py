"""The production backend server: uvicorn on uvloop and httptools, WebSockets uncompressed.

Run from the project root: ``python -m sample_app.server --host 127.0.0.1 --port 8000``.
It serves the same ASGI app as ``reflex run --env prod --backend-only`` (the Reflex app
object's factory, compile skipped: the frontend is exported separately and served by the
proxy). It is one process with one event loop: a deployment of several workers starts it
once per port behind a proxy, as the demo site does (``deploy/demo_site.py``).

Why not Reflex's default production server (Granian): every signed-in tab holds one
WebSocket for as long as it is open, so memory per idle socket decides how many tabs a
worker carries. Measured with the same Socket.IO app on this machine: Granian 175 KiB per
idle socket; uvicorn 147 KiB with WebSocket compression (permessage-deflate keeps a zlib
compressor and decompressor per connection) and 44 KiB without, with the sans-I/O
``websockets`` protocol. Reflex's state deltas are small JSON documents, so compression
saves little on the wire and costs memory and CPU on every tab; it is switched off.
uvloop and httptools (C) take less CPU per event and request than asyncio's loop and h11.

Other choices, each because of what sits in front of or beside the server:

* no ``X-Forwarded-*`` handling here (``proxy_headers=False``): Reflex reads the client
  address itself, trusting exactly ``REFLEX_TRUSTED_PROXY_HOPS`` proxies;
* no access log (the proxy keeps one) and no logging set-up of uvicorn's own: the app's
  JSON log lines stay as :mod:`sample_app.logging_config` made them;
* no WebSocket pings of the server's own: Engine.IO already sends heartbeats, and a second
  ping per tab would only add work;
* messages over 1 MB are refused, the limit Reflex gives Engine.IO's HTTP polling;
* the garbage collector is told what is permanent (see :func:`tune_garbage_collector`):
  every object that exists once the app is loaded (Reflex, its components, the libraries:
  hundreds of thousands) is frozen out of its scans, and it runs its youngest generation
  every 5,000 allocations instead of every 700, so that short-lived objects of events in
  flight are not promoted to the old generations, whose collections scan every tab's
  objects. Measured with ``benchmarks.capacity`` at N=1000 (one 25-s step): 8 full
  collections of about 230 ms each (each a pause for every tab), 2.7-3.0 s of collection
  in all, against no full collection and 1.1 s. A higher threshold saves little more
  and keeps more garbage between collections (20,000: 70 KiB per idle tab, not 64);
* without Redis, the tabs' states live in this process's memory (Reflex's memory state
  manager), not in ``.states/`` on disk, Reflex's one-process default. The disk manager is
  there so that ``reflex run`` keeps the tabs' states across hot reloads; in production it
  pickles and writes every changed tab at most every 2 s and lists and stats every state
  file each time a write falls due, which cost a third of the worker's throughput in
  ``benchmarks.capacity`` (315 against 480 answers/s at N=50 in one run). A restart loses
  nothing a user sees: the reconnecting tab hydrates again with its sign-in token, as a tab
  moved off a failed worker does, and no sign-in or session token is kept on disk. With
  Redis (several workers) Reflex's Redis manager is used, as before, and an explicit
  ``REFLEX_STATE_MANAGER_MODE`` is left as it is.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sample_app.config import REDIS_URL_VARIABLE, load_env_file

__all__ = [
    "DEFAULT_PORT",
    "WEBSOCKET_MAX_MESSAGE_BYTES",
    "choose_state_manager",
    "main",
    "server_options",
    "state_manager_mode",
    "tune_garbage_collector",
]

DEFAULT_PORT = 8000
#: The largest WebSocket message accepted (Reflex's POLLING_MAX_HTTP_BUFFER_SIZE).
WEBSOCKET_MAX_MESSAGE_BYTES = 1000 * 1000
#: Seconds open connections get to finish on SIGTERM before they are closed.
GRACEFUL_SHUTDOWN_SECONDS = 5
#: Pending connections the kernel keeps while the loop is busy (a burst of new tabs).
LISTEN_BACKLOG = 2048
#: The collector's thresholds (``gc.set_threshold``): generation 0 every 5,000 net
#: allocations (CPython's default is 700), the older ones after 20 of the younger each.
GC_THRESHOLDS = (5_000, 20, 20)


def server_options(host: str, port: int, log_level: str = "warning") -> dict[str, Any]:
    """The ``uvicorn.Config`` keyword arguments this module runs the app with.

    Args:
        host: Address to listen on.
        port: Port to listen on.
        log_level: uvicorn's own log level (its start-up and error lines).
    """
    return {
        "host": host,
        "port": port,
        "factory": True,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "websockets-sansio",
        "ws_per_message_deflate": False,
        "ws_ping_interval": None,
        "ws_max_size": WEBSOCKET_MAX_MESSAGE_BYTES,
        "proxy_headers": False,
        "server_header": False,
        "access_log": False,
        "log_config": None,
        "log_level": log_level,
        "lifespan": "on",
        "backlog": LISTEN_BACKLOG,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }


#: Reflex's setting of its state store (rxconfig's ``state_manager_mode``).
STATE_MANAGER_MODE_VARIABLE = "REFLEX_STATE_MANAGER_MODE"


def state_manager_mode(environ: Mapping[str, str]) -> str | None:
    """The state manager this server asks Reflex for: ``"memory"``, or None to leave it.

    None when Redis is configured (Reflex then picks its Redis manager, which several
    workers share) or when the operator chose a mode explicitly.
    """
    if environ.get(STATE_MANAGER_MODE_VARIABLE, "").strip():
        return None
    if environ.get(REDIS_URL_VARIABLE, "").strip():
        return None
    return "memory"


def choose_state_manager() -> None:
    """Put :func:`state_manager_mode`'s choice in the environment, after reading ``.env``.

    ``.env`` first, so a ``REFLEX_REDIS_URL`` written there counts, as it does for
    ``rxconfig.py``.
    """
    load_env_file()
    mode = state_manager_mode(os.environ)
    if mode is not None:
        os.environ[STATE_MANAGER_MODE_VARIABLE] = mode


def tune_garbage_collector() -> None:
    """Freeze what exists now out of the collector's scans, and collect less often.

    Called once the app is loaded, before the first connection: what exists then lives as
    long as the process, so scanning it on every full collection is pure cost, and those
    scans grow with the process, not with the garbage. A cycle of garbage waits longer
    before it is found (up to ``GC_THRESHOLDS[0]`` allocations); objects without cycles
    are freed at once, as always.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _app_target() -> str:
    """``module:attribute`` of the Reflex app, as Reflex's own backend runner names it."""
    from reflex_base.config import get_config

    return f"{get_config().module}:app"


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the backend until SIGINT or SIGTERM.

    Returns:
        The process's exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m sample_app.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's own log level (the app's is LOG_LEVEL)",
    )
    args = parser.parse_args(argv)
    # What `reflex run --env prod --backend-only` sets before it starts its server: the
    # production mode, and no compile (the proxy serves the exported frontend).
    from reflex_base import constants
    from reflex_base.environment import environment

    environment.REFLEX_ENV_MODE.set(constants.Env.PROD)
    environment.REFLEX_SKIP_COMPILE.set(True)
    project = str(Path.cwd())
    if project not in sys.path:
        sys.path.insert(0, project)  # the app package and rxconfig.py live here
    choose_state_manager()  # before Reflex reads its configuration

    import uvicorn

    config = uvicorn.Config(_app_target(), **server_options(args.host, args.port))
    config.load()  # import and build the app now (Server.run would), then freeze it
    tune_garbage_collector()
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(main())
