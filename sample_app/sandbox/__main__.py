"""Command line entry point: ``python -m sample_app.sandbox``.

Runs the sandbox in the foreground (Ctrl+C stops it) so the widget demo and manual tests can
point ``apiHost``/``wsHost`` and the server's Sendbird base URL at it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from .config import SandboxConfig
from .server import SandboxAddress, serve

DEFAULT_DB = ".sandbox/sandbox.db"


def build_parser() -> argparse.ArgumentParser:
    """CLI options; every default can also come from a ``SANDBOX_*`` environment variable."""
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m sample_app.sandbox",
        description="Local emulator of the Sendbird Platform API, chat WebSocket and AI bot.",
    )
    parser.add_argument("--host", default=env("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SANDBOX_PORT", "8765")))
    parser.add_argument("--app-id", default=env("SANDBOX_APP_ID", "SANDBOX-APP"))
    parser.add_argument(
        "--api-token",
        default=env("SANDBOX_API_TOKEN"),
        help="secret expected in the Api-Token header (default: $SANDBOX_API_TOKEN)",
    )
    parser.add_argument("--bot-id", default=env("SANDBOX_BOT_ID", "sandbox_bot"))
    parser.add_argument("--bot-nickname", default=env("SANDBOX_BOT_NICKNAME", "Sandbox Bot"))
    parser.add_argument(
        "--db",
        default=env("SANDBOX_DB", DEFAULT_DB),
        help=f"SQLite file (default: {DEFAULT_DB}); ':memory:' keeps nothing",
    )
    parser.add_argument(
        "--session-key-ttl",
        type=float,
        default=float(env("SANDBOX_SESSION_KEY_TTL", "3600")),
        help="session key lifetime in seconds (default: 3600)",
    )
    parser.add_argument("--public-url", default=env("SANDBOX_PUBLIC_URL"))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.api_token:
        parser.error("--api-token is required (or set SANDBOX_API_TOKEN)")
    if args.db != ":memory:":
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SandboxConfig(
        app_id=args.app_id,
        api_token=args.api_token,
        bot_id=args.bot_id,
        bot_nickname=args.bot_nickname,
        db_path=args.db,
        session_key_ttl=args.session_key_ttl,
        public_url=args.public_url,
    )

    def announce(address: SandboxAddress) -> None:
        sys.stdout.write(
            f"Sendbird sandbox listening on {address.http_url} (wsHost {address.ws_url}) "
            f"app_id={config.app_id} bot_id={config.bot_id} db={config.db_path}\n"
        )
        sys.stdout.flush()

    try:
        asyncio.run(
            serve(config, args.host, args.port, install_signal_handlers=True, on_ready=announce)
        )
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
