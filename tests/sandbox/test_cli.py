"""``python -m sample_app.sandbox`` (``make sandbox``): defaults, ``.env``, the API token.

The subprocess tests always pass ``--env-file`` (a temporary file) and strip ``SANDBOX_*`` and
``SENDBIRD_*`` from the child's environment, so a developer's ``.env`` cannot change them.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from sample_app.config import (
    DEFAULT_SANDBOX_DB_PATH,
    DEFAULT_SANDBOX_PORT,
    DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS,
    PROJECT_ROOT,
    SANDBOX_APP_ID,
    SANDBOX_BOT_ID,
    load_settings,
    read_sandbox_settings,
)
from sample_app.sandbox import SandboxConfig
from sample_app.sandbox.__main__ import build_parser, main, read_defaults

ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
PAIR_BLOCK_TITLE = "# --- A separately started sandbox"
ASSIGNMENT = re.compile(r"^# ([A-Z][A-Z0-9_]*=.*)$")


def clean_environment() -> dict[str, str]:
    """The test process's environment without any SANDBOX_* or SENDBIRD_* variable."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SANDBOX_", "SENDBIRD_"))
    }


@pytest.fixture
def empty_env_file(tmp_path: Path) -> Path:
    """An empty `.env`, so the CLI reads nothing from the developer's."""
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def uncomment_pair_block(example: str) -> tuple[str, int]:
    """`.env.example` with its "separately started sandbox" lines uncommented."""
    lines = example.splitlines()
    in_block = False
    changed = 0
    for index, line in enumerate(lines):
        if line.startswith(PAIR_BLOCK_TITLE):
            in_block = True
        elif in_block and not line.strip():
            break
        elif in_block and (match := ASSIGNMENT.match(line)):
            lines[index] = match.group(1)
            changed += 1
    return "\n".join(lines) + "\n", changed


@pytest.fixture
def pair_env_file(tmp_path: Path) -> Path:
    """The whole `.env.example`, with the separately-started-sandbox block uncommented."""
    text, changed = uncomment_pair_block(ENV_EXAMPLE.read_text())
    assert changed == 6, "the block of .env.example should hold six commented assignments"
    # The example ships no token (a well-known one would open a reachable sandbox to anyone):
    # fill in the value `make sandbox` tells the reader to paste.
    assert "\nSANDBOX_API_TOKEN=\n" in text
    text = text.replace("\nSANDBOX_API_TOKEN=\n", f"\nSANDBOX_API_TOKEN={secrets.token_hex(20)}\n")
    path = tmp_path / ".env"
    path.write_text(text)
    return path


def environ_of(env_file: Path) -> dict[str, str]:
    """The variables a `.env` file defines (interpolated, as the app and the CLI read it)."""
    return {name: value for name, value in dotenv_values(env_file).items() if value is not None}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion (for the cases where it refuses to start)."""
    return subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our module
        [sys.executable, "-m", "sample_app.sandbox", *args],
        cwd=PROJECT_ROOT,
        env=clean_environment() if env is None else env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def start_cli() -> Iterator[object]:
    """Start the CLI in the background; every process is stopped after the test."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(  # noqa: S603 - fixed argv: this interpreter, our module
            [sys.executable, "-m", "sample_app.sandbox", *args],
            cwd=PROJECT_ROOT,
            env={**(clean_environment() if env is None else env), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        return process

    try:
        yield start
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()


def listening_url(process: subprocess.Popen[str]) -> tuple[str, str]:
    """The base URL from the CLI's start-up lines, and those two lines."""
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line
    hint = process.stdout.readline()  # read now: communicate() skips buffered lines
    return line.split("listening on ", 1)[1].split()[0], line + hint


# ----------------------------------------------------------------- defaults


def test_defaults_are_the_shared_sandbox_defaults() -> None:
    defaults, problems = read_defaults({})
    args = build_parser(defaults).parse_args([])

    assert problems == []
    assert args.host == "127.0.0.1"
    assert args.port == DEFAULT_SANDBOX_PORT == 8090
    assert args.app_id == SANDBOX_APP_ID == "sandbox-app"
    assert args.bot_id == SANDBOX_BOT_ID == "sandbox-bot"
    assert args.bot_nickname == "Sandbox Bot"
    assert args.db_path == str(DEFAULT_SANDBOX_DB_PATH)
    assert DEFAULT_SANDBOX_DB_PATH == PROJECT_ROOT / ".sandbox" / "sandbox.db"
    assert args.session_key_ttl == DEFAULT_SANDBOX_SESSION_KEY_TTL_SECONDS == 600  # 10 minutes
    assert args.api_token is None
    assert args.allow_login_without_token is None  # SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN decides
    assert args.public_url is None


def test_sandbox_config_defaults_are_the_same() -> None:
    config = SandboxConfig()

    assert (config.app_id, config.bot_id) == (SANDBOX_APP_ID, SANDBOX_BOT_ID)
    assert config.bot_nickname == "Sandbox Bot"
    assert config.session_key_ttl == 600  # session keys live 10 minutes by default
    assert config.db_path == ":memory:"  # a bare SandboxConfig writes nothing
    assert config.allow_login_without_token is False  # like Sendbird with "Deny login" on


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), (" ON ", True), ("yes", True), ("0", False), ("", False)],
)
def test_allow_login_without_token_variable(value: str, expected: bool) -> None:
    env = {"SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN": value}
    assert read_sandbox_settings(env, []).allow_login_without_token is expected
    assert read_sandbox_settings({}, []).allow_login_without_token is False


def test_allow_login_without_token_option_and_variable() -> None:
    defaults, _ = read_defaults({"SANDBOX_API_TOKEN": "a-sandbox-token-0123"})
    parser = build_parser(defaults)
    assert parser.parse_args(["--allow-login-without-token"]).allow_login_without_token is True
    assert parser.parse_args(["--no-allow-login-without-token"]).allow_login_without_token is False
    assert SandboxConfig.from_settings(defaults).allow_login_without_token is False

    on, _ = read_defaults(
        {"SANDBOX_API_TOKEN": "a-sandbox-token-0123", "SANDBOX_ALLOW_LOGIN_WITHOUT_TOKEN": "1"}
    )
    assert SandboxConfig.from_settings(on).allow_login_without_token is True
    changed = SandboxConfig.from_settings(on, allow_login_without_token=False)
    assert changed.allow_login_without_token is False


def test_sandbox_variables_are_the_defaults(tmp_path: Path) -> None:
    environ = {
        "SANDBOX_HOST": "0.0.0.0",  # noqa: S104 - parsed, never bound
        "SANDBOX_PORT": "9123",
        "SANDBOX_APP_ID": "my-app",
        "SANDBOX_BOT_ID": "my-bot",
        "SANDBOX_BOT_NICKNAME": "Robo",
        "SANDBOX_API_TOKEN": "a-sandbox-token-0123",
        "SANDBOX_DB_PATH": str(tmp_path / "x.db"),
        "SANDBOX_SESSION_KEY_TTL": "120",
        "SANDBOX_PUBLIC_URL": "https://sandbox.example.com",
        "SANDBOX_DB": "/ignored.db",  # the old name means nothing any more
    }
    defaults, problems = read_defaults(environ)
    args = build_parser(defaults).parse_args([])

    assert problems == []
    assert (args.host, args.port) == ("0.0.0.0", 9123)  # noqa: S104
    assert (args.app_id, args.bot_id, args.bot_nickname) == ("my-app", "my-bot", "Robo")
    assert args.api_token == "a-sandbox-token-0123"
    assert args.db_path == str(tmp_path / "x.db")
    assert args.session_key_ttl == 120
    assert args.public_url == "https://sandbox.example.com"


def test_options_win_over_variables() -> None:
    defaults, _ = read_defaults({"SANDBOX_PORT": "9123", "SANDBOX_APP_ID": "my-app"})
    args = build_parser(defaults).parse_args(["--port", "0", "--app-id", "other", "--db", "x"])

    assert (args.port, args.app_id, args.db_path) == (0, "other", "x")


def test_sandbox_config_from_settings() -> None:
    defaults, _ = read_defaults(
        {"SANDBOX_API_TOKEN": "a-sandbox-token-0123", "SANDBOX_SESSION_KEY_TTL": "60"}
    )

    config = SandboxConfig.from_settings(defaults)

    assert config.api_token == "a-sandbox-token-0123"
    assert (config.app_id, config.bot_id) == (SANDBOX_APP_ID, SANDBOX_BOT_ID)
    assert config.db_path == str(DEFAULT_SANDBOX_DB_PATH)
    assert config.session_key_ttl == 60
    assert config.public_url is None  # follows the bound address
    assert SandboxConfig.from_settings(defaults, bot_id="b").bot_id == "b"
    with pytest.raises(ValueError, match="SANDBOX_API_TOKEN"):
        SandboxConfig.from_settings(read_defaults({})[0])


# ------------------------------------------- the .env.example pair, both sides


def test_env_example_pair_block_configures_the_app_and_the_cli_alike(
    pair_env_file: Path,
) -> None:
    settings = load_settings(environ={}, env_file=pair_env_file)
    defaults, problems = read_defaults(environ_of(pair_env_file))
    args = build_parser(defaults).parse_args([])

    assert problems == []
    assert settings.mode == "sendbird"
    assert settings.app_id == args.app_id == SANDBOX_APP_ID
    assert settings.bot_id == args.bot_id == SANDBOX_BOT_ID
    assert settings.api_token.reveal() == args.api_token
    assert len(args.api_token) >= 16
    assert args.port == DEFAULT_SANDBOX_PORT
    assert settings.api_host == settings.widget_api_host == f"http://{args.host}:{args.port}"
    assert settings.widget_ws_host == f"ws://{args.host}:{args.port}"


def test_env_example_pair_block_works_end_to_end(
    pair_env_file: Path, tmp_path: Path, start_cli
) -> None:
    settings = load_settings(environ={}, env_file=pair_env_file)
    db_path = tmp_path / "pair" / "sandbox.db"
    process = start_cli("--env-file", str(pair_env_file), "--port", "0", "--db-path", str(db_path))

    url, line = listening_url(process)

    assert f"app_id={SANDBOX_APP_ID} bot_id={SANDBOX_BOT_ID} db={db_path}" in line
    headers = {"Api-Token": settings.api_token.reveal()}
    created = httpx.post(
        f"{url}/v3/users",
        headers=headers,
        json={"user_id": "pair-user", "nickname": "P", "profile_url": ""},
        timeout=5,
    )
    assert created.status_code == 200, created.text
    widget = httpx.get(
        f"{url}/v3/bots/{settings.bot_id}/{settings.app_id}/widget_setting", timeout=5
    )
    assert widget.status_code == 200, widget.text
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert settings.api_token.reveal() not in line + stdout + stderr


# ------------------------------------------------------------- the API token


def test_cli_without_a_token_says_what_to_put_in_env(empty_env_file: Path) -> None:
    result = run_cli("--env-file", str(empty_env_file), "--port", "0")

    assert result.returncode == 2
    assert re.search(r"^    SANDBOX_API_TOKEN=[0-9a-f]{40}$", result.stderr, re.MULTILINE)
    assert str(empty_env_file) in result.stderr
    assert "--api-token" in result.stderr
    assert result.stdout == ""


def test_cli_treats_an_empty_token_variable_as_missing(empty_env_file: Path) -> None:
    env = {**clean_environment(), "SANDBOX_API_TOKEN": "  "}
    result = run_cli("--env-file", str(empty_env_file), env=env)

    assert result.returncode == 2
    assert "SANDBOX_API_TOKEN=" in result.stderr


def test_cli_refuses_a_short_token_option(empty_env_file: Path) -> None:
    result = run_cli("--env-file", str(empty_env_file), "--api-token", "tooShort123")

    assert result.returncode == 2
    assert "--api-token is too short (11 characters)" in result.stderr
    assert "tooShort123" not in result.stderr


def test_cli_refuses_a_short_or_malformed_token_variable(empty_env_file: Path) -> None:
    short = run_cli(
        "--env-file",
        str(empty_env_file),
        env={**clean_environment(), "SANDBOX_API_TOKEN": "tooShort123"},
    )
    malformed = run_cli(
        "--env-file",
        str(empty_env_file),
        env={**clean_environment(), "SANDBOX_API_TOKEN": "long enough but has spaces"},
    )

    assert short.returncode == malformed.returncode == 2
    assert "SANDBOX_API_TOKEN is too short (11 characters)" in short.stderr
    assert "tooShort123" not in short.stderr
    assert "SANDBOX_API_TOKEN may hold only letters" in malformed.stderr
    assert "has spaces" not in malformed.stderr


def test_cli_reports_malformed_variables(
    empty_env_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANDBOX_PORT", "eighty")
    monkeypatch.setenv("SANDBOX_APP_ID", "no spaces please")
    monkeypatch.setenv("SANDBOX_API_TOKEN", "a-sandbox-token-0123")

    assert main(["--env-file", str(empty_env_file)]) == 2

    stderr = capsys.readouterr().err
    assert "SANDBOX_PORT='eighty' is not a whole number" in stderr
    assert "SANDBOX_APP_ID='no spaces please' is malformed" in stderr


def test_cli_refuses_a_missing_env_file(tmp_path: Path) -> None:
    result = run_cli("--env-file", str(tmp_path / "absent.env"), "--api-token", "x" * 20)

    assert result.returncode == 2
    assert "absent.env does not exist" in result.stderr


# -------------------------------------------------------------------- running


def test_cli_runs_and_stops_on_sigint(tmp_path: Path, empty_env_file: Path, start_cli) -> None:
    secret = "cli-secret-token-value"
    env = {**clean_environment(), "SANDBOX_API_TOKEN": secret}
    process = start_cli(
        "--env-file", str(empty_env_file),
        "--port", "0",
        "--app-id", "CLIAPP",
        "--bot-id", "cli-bot",
        "--db", str(tmp_path / "cli" / "sandbox.db"),
        env=env,
    )  # fmt: skip

    url, line = listening_url(process)

    assert "app_id=CLIAPP" in line and "bot_id=cli-bot" in line
    assert f"db={tmp_path / 'cli' / 'sandbox.db'}" in line
    assert httpx.get(f"{url}/__sandbox__/health", timeout=5).json() == {"ok": True}
    created = httpx.post(
        f"{url}/v3/users",
        headers={"Api-Token": secret},
        json={"user_id": "cli-user", "nickname": "C", "profile_url": ""},
        timeout=5,
    )
    assert created.status_code == 200
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert f"SENDBIRD_API_HOST={url} " in line  # how to point the app at it...
    assert "cli-user" in stderr  # requests are logged at INFO...
    assert secret not in line + stdout + stderr  # ...without credentials
    assert (tmp_path / "cli" / "sandbox.db").exists()


def test_cli_port_in_use_exits_1(empty_env_file: Path, start_cli) -> None:
    common = ("--env-file", str(empty_env_file), "--api-token", "x" * 20, "--db", ":memory:")
    url, _ = listening_url(start_cli(*common, "--port", "0"))

    result = run_cli(*common, "--port", url.rsplit(":", 1)[1])

    assert result.returncode == 1
    assert "--port or SANDBOX_PORT" in result.stderr
