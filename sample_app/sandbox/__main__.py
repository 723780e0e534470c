"""Command line entry point: ``python -m sample_app.sandbox`` (``make sandbox``).

Runs the sandbox in the foreground (Ctrl+C stops it) so the app, the widget demo and manual
tests can point their Sendbird hosts at it. It reads ``.env`` first (never overriding the real
environment), then takes every default from the ``SANDBOX_*`` variables through
:func:`sample_app.config.read_sandbox_settings`, the same reader the embedded sandbox uses:
with no arguments it listens on ``http://127.0.0.1:8090`` as app ``sandbox-app`` with bot
``sandbox-bot``, which is what the "separately started sandbox" block of ``.env.example``
points the app at. The only thing it needs is an API token (``SANDBOX_API_TOKEN`` or
``--api-token``); without one it exits with status 2 and says what to add to ``.env``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sample_app.config import (
    ENV_FILE,
    SandboxSettings,
    load_env_file,
    read_sandbox_settings,
    sandbox_api_token_problem,
)

from .config import SandboxConfig
from .server import SandboxAddress, serve

EXIT_USAGE = 2


def build_parser(defaults: SandboxSettings) -> argparse.ArgumentParser:
    """The CLI's options, each defaulting to what the ``SANDBOX_*`` variables say.

    Args:
        defaults: What :func:`sample_app.config.read_sandbox_settings` read from the
            environment (and ``.env``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m sample_app.sandbox",
        description=(
            "Local emulator of the Sendbird Platform API, chat WebSocket and AI bot. Every "
            "option defaults to its SANDBOX_* variable (from the environment or .env)."
        ),
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=ENV_FILE,
        help=f"file read before the environment's SANDBOX_* variables (default: {ENV_FILE})",
    )
    parser.add_argument(
        "--host", default=defaults.host, help=f"SANDBOX_HOST (default: {defaults.host})"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=defaults.port,
        help=f"SANDBOX_PORT; 0 picks a free port (default: {defaults.port})",
    )
    parser.add_argument(
        "--app-id", default=defaults.app_id, help=f"SANDBOX_APP_ID (default: {defaults.app_id})"
    )
    parser.add_argument(
        "--bot-id", default=defaults.bot_id, help=f"SANDBOX_BOT_ID (default: {defaults.bot_id})"
    )
    parser.add_argument(
        "--bot-nickname",
        default=defaults.bot_nickname,
        help=f"SANDBOX_BOT_NICKNAME (default: {defaults.bot_nickname})",
    )
    parser.add_argument(
        "--api-token",
        default=defaults.api_token.reveal() if defaults.api_token else None,
        help="secret expected in the Api-Token header (default: $SANDBOX_API_TOKEN)",
    )
    parser.add_argument(
        "--db-path",
        "--db",
        dest="db_path",
        default=str(defaults.db_path),
        help=f"SANDBOX_DB_PATH: the SQLite file, ':memory:' keeps nothing "
        f"(default: {defaults.db_path})",
    )
    parser.add_argument(
        "--session-key-ttl",
        type=float,
        default=defaults.session_key_ttl,
        help=f"SANDBOX_SESSION_KEY_TTL: session key lifetime in seconds "
        f"(default: {defaults.session_key_ttl:g})",
    )
    parser.add_argument(
        "--allow-login-without-token",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN=1: accept a WebSocket login that carries only "
        'a user id, like Sendbird without "Deny login" (default: off, logins need a token)',
    )
    parser.add_argument(
        "--public-url",
        default=defaults.public_url if defaults.public_url_is_set else None,
        help="SANDBOX_PUBLIC_URL: how browsers reach the sandbox, when it differs",
    )
    return parser


def read_defaults(environ: Mapping[str, str]) -> tuple[SandboxSettings, list[str]]:
    """The CLI's defaults from ``environ`` and the problems found in its ``SANDBOX_*`` values."""
    problems: list[str] = []
    return read_sandbox_settings(environ, problems), problems


def _env_file_of(argv: Sequence[str] | None) -> Path:
    """The ``--env-file`` given on the command line, or the project's ``.env``."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--env-file", type=Path, default=ENV_FILE)
    known, _ = early.parse_known_args(argv)
    return known.env_file


def missing_token_message(env_file: Path) -> str:
    """What to do when no API token is configured (the exact line for ``.env``)."""
    return (
        "error: the sandbox needs an API token, the secret that the app (as SENDBIRD_API_TOKEN)\n"
        f"and the control surface send in the Api-Token header. Add this line to {env_file}:\n"
        "\n"
        f"    SANDBOX_API_TOKEN={secrets.token_hex(20)}\n"
        "\n"
        "(any 16 to 256 letters, digits, _ or -) and run `make sandbox` again, or pass\n"
        '--api-token. The "separately started sandbox" block of .env.example has this line\n'
        "and the ones that point the app at the sandbox: copy it there and uncomment it.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Read ``.env`` and the ``SANDBOX_*`` variables, parse arguments, serve until Ctrl+C.

    Returns:
        0 after Ctrl+C, 1 if the server could not start (port taken), 2 for a usage or
        configuration problem (no API token, malformed ``SANDBOX_*`` value).
    """
    env_file = _env_file_of(argv)
    if env_file != ENV_FILE and not env_file.is_file():
        sys.stderr.write(f"error: --env-file {env_file} does not exist\n")
        return EXIT_USAGE
    load_env_file(env_file)
    defaults, problems = read_defaults(os.environ)
    parser = build_parser(defaults)
    args = parser.parse_args(argv)
    if problems:
        lines = "".join(f"  - {problem}\n" for problem in problems)
        sys.stderr.write(f"error: fix these in {env_file} or the environment:\n{lines}")
        return EXIT_USAGE
    if not args.api_token:
        sys.stderr.write(missing_token_message(env_file))
        return EXIT_USAGE
    if problem := sandbox_api_token_problem("--api-token", args.api_token):
        parser.error(problem)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is out of range (0..65535; 0 picks a free port)")
    try:
        config = SandboxConfig.from_settings(
            defaults,
            app_id=args.app_id,
            api_token=args.api_token,
            bot_id=args.bot_id,
            bot_nickname=args.bot_nickname,
            db_path=args.db_path,
            session_key_ttl=args.session_key_ttl,
            public_url=args.public_url,
            allow_login_without_token=(
                defaults.allow_login_without_token
                if args.allow_login_without_token is None
                else args.allow_login_without_token
            ),
        )
    except ValueError as exc:
        parser.error(str(exc))
    if config.db_path != ":memory:":
        Path(config.db_path).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def announce(address: SandboxAddress) -> None:
        sys.stdout.write(
            f"Sendbird sandbox listening on {address.http_url} (wsHost {address.ws_url}) "
            f"app_id={config.app_id} bot_id={config.bot_id} db={config.db_path}"
            f"{' login-without-token=on' if config.allow_login_without_token else ''}\n"
            f"Point the app at it with SENDBIRD_APP_ID={config.app_id} "
            f"SENDBIRD_BOT_ID={config.bot_id} SENDBIRD_API_HOST={address.http_url} "
            f"SENDBIRD_WS_HOST={address.ws_url} and this sandbox's API token in "
            'SENDBIRD_API_TOKEN (the "separately started sandbox" block of .env.example).\n'
        )
        sys.stdout.flush()

    try:
        asyncio.run(
            serve(config, args.host, args.port, install_signal_handlers=True, on_ready=announce)
        )
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        sys.stderr.write(
            f"error: {exc} (is another sandbox, or `make run` with its embedded one, already "
            "listening there? Use --port or SANDBOX_PORT)\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
