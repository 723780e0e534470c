"""The local Sendbird sandbox in a process of its own, for `benchmarks/capacity.py`.

``tests/stack.py`` runs the sandbox in a thread of the test process, which is also where
``AppHarnessProd`` runs the Reflex backend: their CPU time could not be told apart, and they
would share one GIL. The capacity benchmark therefore starts the sandbox here instead, as
``python -m benchmarks.sandbox_process --app-id ... --bot-id ... --db-path ...`` with the API
token in ``BENCH_SANDBOX_API_TOKEN`` (kept off the command line). It prints one JSON line,
``{"http_url": ..., "ws_url": ..., "pid": ...}``, once it listens on a free port of 127.0.0.1,
and serves until its stdin closes. Logging stays at WARNING (no per-request lines).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from sample_app.sandbox import SandboxConfig, SandboxServer

TOKEN_VARIABLE = "BENCH_SANDBOX_API_TOKEN"  # noqa: S105 - a variable name, not a secret


def main() -> int:
    """Start the sandbox, announce its URLs, serve until stdin reaches EOF."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--bot-id", required=True)
    parser.add_argument("--db-path", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = SandboxConfig(
        app_id=args.app_id,
        api_token=os.environ[TOKEN_VARIABLE],
        bot_id=args.bot_id,
        db_path=args.db_path,
    )
    server = SandboxServer(config, host="127.0.0.1", port=0)
    server.start()
    try:
        announcement = {"http_url": server.http_url, "ws_url": server.ws_url, "pid": os.getpid()}
        sys.stdout.write(json.dumps(announcement) + "\n")
        sys.stdout.flush()
        sys.stdin.read()  # until the parent closes the pipe (or exits)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
