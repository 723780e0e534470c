"""sample_app.config: modes, validation, `.env` precedence, secrets and the CLI check.

Every test passes `environ=` and `env_file=` explicitly, so neither the process environment
nor a developer's `.env` can change the outcome (the CLI tests skip if a `.env` exists).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sample_app import config
from sample_app.config import (
    ENV_FILE,
    PROJECT_ROOT,
    SANDBOX_APP_ID,
    SANDBOX_BOT_ID,
    ConfigError,
    Secret,
    Settings,
    get_settings,
    load_settings,
)

APP_ID = "A1B2C3D4-E5F6-4711-8899-AABBCCDDEEFF"
API_TOKEN = "0123456789abcdef0123456789abcdef01234567"
BOT_ID = "support-bot"
SENDBIRD = {"SENDBIRD_APP_ID": APP_ID, "SENDBIRD_API_TOKEN": API_TOKEN, "SENDBIRD_BOT_ID": BOT_ID}

# Every variable load_settings reads (used to neutralise a developer's .env and environment).
ALL_VARIABLES = (
    "SENDBIRD_APP_ID",
    "SENDBIRD_API_TOKEN",
    "SENDBIRD_BOT_ID",
    "SENDBIRD_API_HOST",
    "SENDBIRD_WS_HOST",
    "SENDBIRD_TOKEN_TTL_SECONDS",
    "SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS",
    "SENDBIRD_USER_ID_PREFIX",
    "SENDBIRD_TOKEN_REUSE_SECONDS",
    "SENDBIRD_TOKENS_PER_USER_PER_MINUTE",
    "SENDBIRD_PLATFORM_POSTS_PER_SECOND",
    "SANDBOX_APP_ID",
    "SANDBOX_BOT_ID",
    "SANDBOX_BOT_NICKNAME",
    "SANDBOX_API_TOKEN",
    "SANDBOX_HOST",
    "SANDBOX_PORT",
    "SANDBOX_DB_PATH",
    "SANDBOX_PUBLIC_URL",
    "SANDBOX_SESSION_KEY_TTL",
    "SANDBOX_EXTERNAL",
    "SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS",
    "REFLEX_REDIS_URL",
    "GRANIAN_WORKERS",
    "SENDBIRD_CALLS_IN_FLIGHT",
    "SIGN_IN_CACHE_SECONDS",
)


def load(**environ: str) -> Settings:
    """Settings from exactly `environ`: no process environment, no `.env`."""
    return load_settings(environ=environ, env_file=None)


def problems_of(**environ: str) -> list[str]:
    """The problems `load` reports for `environ` (fails if it loads)."""
    with pytest.raises(ConfigError) as caught:
        load(**environ)
    return caught.value.problems


def the_problem(**environ: str) -> str:
    """The single problem reported for `environ`."""
    problems = problems_of(**environ)
    assert len(problems) == 1, problems
    return problems[0]


# ------------------------------------------------------------------ sandbox mode


def test_no_credentials_selects_the_local_sandbox() -> None:
    settings = load()

    assert settings.mode == "sandbox"
    assert settings.is_sandbox
    assert settings.app_id == SANDBOX_APP_ID == "sandbox-app"
    assert settings.bot_id == SANDBOX_BOT_ID == "sandbox-bot"
    assert settings.api_host == "http://127.0.0.1:8090"
    assert settings.widget_api_host == "http://127.0.0.1:8090"
    assert settings.widget_ws_host == "ws://127.0.0.1:8090"
    assert settings.token_ttl == timedelta(minutes=30)
    assert settings.refresh_margin == timedelta(minutes=2)
    assert settings.user_id_prefix == "sample-"
    assert settings.sandbox is not None
    assert settings.sandbox.host == "127.0.0.1"
    assert settings.sandbox.port == 8090
    assert settings.sandbox.db_path == PROJECT_ROOT / ".sandbox" / "sandbox.db"
    assert settings.sandbox.public_url == "http://127.0.0.1:8090"


def test_sandbox_api_token_is_random_per_load() -> None:
    first, second = load().api_token.reveal(), load().api_token.reveal()

    assert first != second
    for token in (first, second):
        assert len(token) == 40
        int(token, 16)  # hex


def test_blank_credentials_count_as_absent() -> None:
    assert load(SENDBIRD_APP_ID="  ", SENDBIRD_API_TOKEN="").mode == "sandbox"


def test_sandbox_overrides(tmp_path: Path) -> None:
    settings = load(
        SANDBOX_APP_ID="demo-app",
        SANDBOX_API_TOKEN="pinned-sandbox-token",
        SANDBOX_HOST="sandbox.internal",
        SANDBOX_PORT="9100",
        SANDBOX_DB_PATH=str(tmp_path / "sb.db"),
        SENDBIRD_BOT_ID="helper-bot",
    )

    assert settings.mode == "sandbox"
    assert settings.app_id == "demo-app"
    assert settings.bot_id == "helper-bot"
    assert settings.api_token.reveal() == "pinned-sandbox-token"
    assert settings.api_host == "http://sandbox.internal:9100"
    assert settings.widget_api_host == "http://sandbox.internal:9100"
    assert settings.widget_ws_host == "ws://sandbox.internal:9100"
    assert settings.sandbox is not None
    assert settings.sandbox.port == 9100
    assert settings.sandbox.db_path == tmp_path / "sb.db"


@pytest.mark.parametrize(
    ("public_url", "widget_api", "widget_ws"),
    [
        ("https://sandbox.example.com", "https://sandbox.example.com", "wss://sandbox.example.com"),
        (
            "https://demo.example.com/sandbox/",
            "https://demo.example.com/sandbox",
            "wss://demo.example.com/sandbox",
        ),
        ("http://10.0.0.5:8090", "http://10.0.0.5:8090", "ws://10.0.0.5:8090"),
    ],
)
def test_sandbox_public_url_is_what_the_widget_uses(
    public_url: str, widget_api: str, widget_ws: str
) -> None:
    settings = load(SANDBOX_PUBLIC_URL=public_url, SANDBOX_PORT="9200")

    assert settings.widget_api_host == widget_api
    assert settings.widget_ws_host == widget_ws
    # Our own server still talks to the sandbox directly.
    assert settings.api_host == "http://127.0.0.1:9200"


def test_sandbox_public_url_with_upper_case_scheme() -> None:
    settings = load(SANDBOX_PUBLIC_URL="HTTPS://sandbox.example.com")

    assert settings.widget_ws_host.lower() == "wss://sandbox.example.com"


@pytest.mark.parametrize("public_url", ["ws://sandbox.example.com", "sandbox.example.com"])
def test_sandbox_public_url_must_be_http(public_url: str) -> None:
    problem = the_problem(SANDBOX_PUBLIC_URL=public_url)

    assert problem.startswith("SANDBOX_PUBLIC_URL=")
    assert "http://" in problem
    assert "https://" in problem


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_sandbox_port_is_checked(port: str) -> None:
    assert the_problem(SANDBOX_PORT=port).startswith("SANDBOX_PORT=")


def test_sandbox_settings_describe_the_whole_sandbox() -> None:
    settings = load(SANDBOX_SESSION_KEY_TTL="90", SANDBOX_BOT_NICKNAME="Robo")

    sandbox = settings.sandbox
    assert sandbox is not None
    assert (sandbox.app_id, sandbox.bot_id) == (settings.app_id, settings.bot_id)
    # The random per-process token is the one the server uses.
    assert sandbox.api_token == settings.api_token
    assert sandbox.url == settings.api_host == "http://127.0.0.1:8090"
    assert sandbox.session_key_ttl == 90
    assert sandbox.bot_nickname == "Robo"
    assert not sandbox.public_url_is_set
    assert load(SANDBOX_PUBLIC_URL="https://s.example.com").sandbox.public_url_is_set


@pytest.mark.parametrize(
    ("environ", "bot_id"),
    [
        ({}, "sandbox-bot"),
        ({"SENDBIRD_BOT_ID": "helper-bot"}, "helper-bot"),
        ({"SANDBOX_BOT_ID": "own-bot"}, "own-bot"),
        ({"SANDBOX_BOT_ID": "own-bot", "SENDBIRD_BOT_ID": "helper-bot"}, "own-bot"),
    ],
)
def test_sandbox_bot_id_precedence(environ: dict[str, str], bot_id: str) -> None:
    settings = load(**environ)

    assert settings.bot_id == bot_id
    assert settings.sandbox is not None and settings.sandbox.bot_id == bot_id


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SANDBOX_API_TOKEN", "short-token", "SANDBOX_API_TOKEN is too short (11 characters)"),
        ("SANDBOX_API_TOKEN", "long enough but spaces", "SANDBOX_API_TOKEN may hold only"),
        ("SANDBOX_APP_ID", "no spaces please", "SANDBOX_APP_ID='no spaces please' is malformed"),
        ("SANDBOX_BOT_ID", "a bot", "SANDBOX_BOT_ID='a bot' is malformed"),
        ("SANDBOX_SESSION_KEY_TTL", "0", "SANDBOX_SESSION_KEY_TTL=0 is out of range"),
        ("SANDBOX_SESSION_KEY_TTL", "1.5", "SANDBOX_SESSION_KEY_TTL='1.5' is not a whole number"),
    ],
)
def test_sandbox_values_are_checked(name: str, value: str, expected: str) -> None:
    problem = the_problem(**{name: value})

    assert problem.startswith(expected)
    if name == "SANDBOX_API_TOKEN":
        assert value not in problem


def test_sandbox_variables_are_ignored_with_sendbird_credentials() -> None:
    settings = load(**SENDBIRD, SANDBOX_PORT="not a port", SANDBOX_API_TOKEN="short")

    assert settings.mode == "sendbird"
    assert settings.sandbox is None


def test_config_does_not_import_the_sandbox_package() -> None:
    code = (
        "import sys, sample_app.config as c; c.load_settings(environ={}, env_file=None); "
        "print([m for m in sys.modules if m.startswith('sample_app.sandbox')])"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ----------------------------------------------------------------- sendbird mode


def test_credentials_select_sendbird_with_default_hosts() -> None:
    settings = load(**SENDBIRD)

    assert settings.mode == "sendbird"
    assert not settings.is_sandbox
    assert settings.sandbox is None
    assert settings.app_id == APP_ID
    assert settings.bot_id == BOT_ID
    assert settings.api_token.reveal() == API_TOKEN
    assert settings.api_host == f"https://api-{APP_ID}.sendbird.com"
    assert settings.widget_api_host == settings.api_host
    assert settings.widget_ws_host == f"wss://ws-{APP_ID}.sendbird.com"


def test_credentials_are_stripped() -> None:
    settings = load(
        SENDBIRD_APP_ID=f" {APP_ID} ", SENDBIRD_API_TOKEN=f"{API_TOKEN}\n", SENDBIRD_BOT_ID=BOT_ID
    )

    assert settings.app_id == APP_ID
    assert settings.api_token.reveal() == API_TOKEN


def test_host_overrides_drop_the_trailing_slash() -> None:
    settings = load(
        **SENDBIRD,
        SENDBIRD_API_HOST="http://127.0.0.1:8090/",
        SENDBIRD_WS_HOST="ws://127.0.0.1:8090/",
    )

    assert settings.mode == "sendbird"
    assert settings.api_host == "http://127.0.0.1:8090"
    assert settings.widget_api_host == "http://127.0.0.1:8090"
    assert settings.widget_ws_host == "ws://127.0.0.1:8090"


@pytest.mark.parametrize(
    "api_host",
    [
        "https://api-x.sendbird.com/v3",
        "https://api-x.sendbird.com/v3/",
        "https://api-x.sendbird.com//",
        "https://api-x.sendbird.com/V3",
        "https://api-x.sendbird.com/v3/v3/",
    ],
)
def test_api_host_loses_a_trailing_v3_so_the_widget_gets_the_same_base(api_host: str) -> None:
    settings = load(
        **SENDBIRD, SENDBIRD_API_HOST=api_host, SENDBIRD_WS_HOST="wss://ws-x.sendbird.com//"
    )

    assert settings.api_host == "https://api-x.sendbird.com"
    assert settings.widget_api_host == settings.api_host  # not .../v3: no /v3/v3/... requests
    assert settings.widget_ws_host == "wss://ws-x.sendbird.com"


def test_a_v3_inside_the_api_host_path_is_kept() -> None:
    settings = load(**SENDBIRD, SENDBIRD_API_HOST="https://proxy.example/sendbird-v3/")

    assert settings.api_host == "https://proxy.example/sendbird-v3"


def test_setup_check_skip_switches() -> None:
    assert config.setup_check_skipped(["--offline"], {})
    assert config.setup_check_skipped([], {"SENDBIRD_SKIP_SETUP_CHECK": "1"})
    assert not config.setup_check_skipped([], {"SENDBIRD_SKIP_SETUP_CHECK": "0"})
    assert not config.setup_check_skipped([], {})


def test_token_lifetime_settings() -> None:
    settings = load(
        **SENDBIRD,
        SENDBIRD_TOKEN_TTL_SECONDS="600",
        SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS="300",  # exactly half: allowed
        SENDBIRD_USER_ID_PREFIX="acme.",
    )

    assert settings.token_ttl == timedelta(minutes=10)
    assert settings.refresh_margin == timedelta(minutes=5)
    assert settings.user_id_prefix == "acme."


# -------------------------------------------------------------------- problems


@pytest.mark.parametrize(
    ("present", "missing"),
    [("SENDBIRD_APP_ID", "SENDBIRD_API_TOKEN"), ("SENDBIRD_API_TOKEN", "SENDBIRD_APP_ID")],
)
def test_one_credential_without_the_other(present: str, missing: str) -> None:
    problems = problems_of(**{present: SENDBIRD[present], "SENDBIRD_BOT_ID": BOT_ID})

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{missing} is missing")
    assert "or neither" in problems[0]


def test_sendbird_mode_needs_the_bot_id() -> None:
    problem = the_problem(SENDBIRD_APP_ID=APP_ID, SENDBIRD_API_TOKEN=API_TOKEN)

    assert problem.startswith("SENDBIRD_BOT_ID is missing")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENDBIRD_APP_ID", "YOUR_APP_ID"),
        ("SENDBIRD_API_TOKEN", "<your token>"),
        ("SENDBIRD_BOT_ID", "changeme"),
        ("SENDBIRD_API_TOKEN", "your_api_token"),
        ("SENDBIRD_BOT_ID", "<bot id>"),
    ],
)
def test_placeholders_are_rejected(name: str, value: str) -> None:
    problem = the_problem(**{**SENDBIRD, name: value})

    assert problem.startswith(name)
    assert "placeholder" in problem


@pytest.mark.parametrize("app_id", ["my app", "my.app", "ab", "-leading-dash"])
def test_malformed_app_id_is_echoed(app_id: str) -> None:
    problems = problems_of(**{**SENDBIRD, "SENDBIRD_APP_ID": app_id})

    assert f"SENDBIRD_APP_ID={app_id!r} is malformed" in problems[0]


@pytest.mark.parametrize(
    "token",
    ["s3cr3t with spaces in it!", "tooshort", "x" * 257, "token/with/slashes0123456789"],
)
def test_malformed_api_token_is_not_echoed(token: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**{**SENDBIRD, "SENDBIRD_API_TOKEN": token})

    assert caught.value.problems[0].startswith("SENDBIRD_API_TOKEN is malformed")
    for text in (str(caught.value), repr(caught.value), *caught.value.problems):
        assert token not in text


def test_malformed_bot_id_is_echoed() -> None:
    problem = the_problem(**{**SENDBIRD, "SENDBIRD_BOT_ID": "bot id"})

    assert problem.startswith("SENDBIRD_BOT_ID='bot id' is malformed")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SENDBIRD_API_HOST", "ftp://api.example.com", "https:// or http://"),
        ("SENDBIRD_API_HOST", "wss://api.example.com", "https:// or http://"),
        ("SENDBIRD_API_HOST", "api.example.com", "https:// or http://"),
        ("SENDBIRD_WS_HOST", "https://ws.example.com", "wss:// or ws://"),
        ("SENDBIRD_WS_HOST", "ws://", "wss:// or ws://"),
        ("SENDBIRD_API_HOST", "https://api.example.com/?x=1", "query or fragment"),
        ("SENDBIRD_WS_HOST", "wss://ws.example.com/#top", "query or fragment"),
    ],
)
def test_bad_hosts(name: str, value: str, expected: str) -> None:
    problem = the_problem(**SENDBIRD, **{name: value})

    assert problem.startswith(name)
    assert expected in problem


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SENDBIRD_TOKEN_TTL_SECONDS", "half an hour", "is not a whole number"),
        ("SENDBIRD_TOKEN_TTL_SECONDS", "1.5", "is not a whole number"),
        ("SENDBIRD_TOKEN_TTL_SECONDS", "59", "is out of range (60..604800)"),
        ("SENDBIRD_TOKEN_TTL_SECONDS", "604801", "is out of range (60..604800)"),
        ("SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS", "-1", "is out of range (0..86400)"),
        ("SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS", "soon", "is not a whole number"),
        ("SENDBIRD_TOKEN_REUSE_SECONDS", "61", "is out of range (0..60)"),
        ("SENDBIRD_TOKEN_REUSE_SECONDS", "5s", "is not a whole number"),
        ("SENDBIRD_TOKENS_PER_USER_PER_MINUTE", "0", "is out of range (1..1000)"),
        ("SENDBIRD_PLATFORM_POSTS_PER_SECOND", "0", "is out of range (1..10000)"),
        ("SENDBIRD_PLATFORM_POSTS_PER_SECOND", "4.5", "is not a whole number"),
    ],
)
def test_bad_numbers(name: str, value: str, expected: str) -> None:
    problem = the_problem(**SENDBIRD, **{name: value})

    assert problem.startswith(f"{name}=")
    assert expected in problem


def test_refresh_margin_above_half_the_ttl() -> None:
    problem = the_problem(
        **SENDBIRD,
        SENDBIRD_TOKEN_TTL_SECONDS="600",
        SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS="301",
    )

    assert "SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS must be at most half" in problem


@pytest.mark.parametrize("prefix", ["bad prefix", "user/", "x" * 41, "émoji-"])
def test_bad_user_id_prefix(prefix: str) -> None:
    problem = the_problem(**SENDBIRD, SENDBIRD_USER_ID_PREFIX=prefix)

    assert problem.startswith("SENDBIRD_USER_ID_PREFIX")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            SENDBIRD_APP_ID="my app",
            SENDBIRD_TOKEN_TTL_SECONDS="forever",
            SENDBIRD_USER_ID_PREFIX="no spaces please",
            SENDBIRD_WS_HOST="http://ws.example.com",
        )

    problems = caught.value.problems
    starts = [problem.split(" ", 1)[0].split("=", 1)[0] for problem in problems]
    assert sorted(starts) == sorted(
        [
            "SENDBIRD_APP_ID",  # malformed
            "SENDBIRD_TOKEN_TTL_SECONDS",
            "SENDBIRD_USER_ID_PREFIX",
            "SENDBIRD_API_TOKEN",  # missing
            "SENDBIRD_BOT_ID",  # missing
            "SENDBIRD_WS_HOST",
        ]
    ), problems
    message = str(caught.value)
    assert message.startswith("Configuration problems (see .env.example):")
    for problem in problems:
        assert f"\n  - {problem}" in message
    assert isinstance(caught.value, ValueError)


# -------------------------------------------------------------------- .env file


def write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def test_env_file_values_are_read(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / ".env", {**SENDBIRD, "SENDBIRD_TOKEN_TTL_SECONDS": "900"})

    settings = load_settings(environ={}, env_file=env_file)

    assert settings.mode == "sendbird"
    assert settings.app_id == APP_ID
    assert settings.api_token.reveal() == API_TOKEN
    assert settings.bot_id == BOT_ID
    assert settings.token_ttl == timedelta(minutes=15)


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / ".env", {**SENDBIRD, "SENDBIRD_TOKEN_TTL_SECONDS": "900"})

    settings = load_settings(
        environ={"SENDBIRD_BOT_ID": "other-bot", "SENDBIRD_TOKEN_TTL_SECONDS": "1200"},
        env_file=env_file,
    )

    assert settings.bot_id == "other-bot"
    assert settings.token_ttl == timedelta(minutes=20)
    assert settings.app_id == APP_ID  # not overridden: from the file


def test_empty_environment_value_overrides_the_file(tmp_path: Path) -> None:
    env_file = write_env(tmp_path / ".env", SENDBIRD)

    settings = load_settings(
        environ={"SENDBIRD_APP_ID": "", "SENDBIRD_API_TOKEN": ""}, env_file=env_file
    )

    assert settings.mode == "sandbox"
    assert settings.bot_id == BOT_ID


def test_missing_env_file_is_ignored(tmp_path: Path) -> None:
    assert load_settings(environ={}, env_file=tmp_path / "absent.env").mode == "sandbox"


def test_env_example_as_is_selects_the_sandbox() -> None:
    settings = load_settings(environ={}, env_file=PROJECT_ROOT / ".env.example")

    assert settings.mode == "sandbox"


# ---------------------------------------------------------------------- Secret


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-very-secret")

    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", f"{[secret]}"):
        assert "hunter2" not in text
    assert repr(secret) == "Secret('********')"
    assert secret.reveal() == "hunter2-very-secret"


def test_secret_equality() -> None:
    assert Secret("abc") == Secret("abc")
    assert Secret("abc") != Secret("abd")
    assert Secret("abc") != "abc"
    assert hash(Secret("abc")) == hash(Secret("abc"))
    assert len({Secret("abc"), Secret("abc"), Secret("xyz")}) == 2


def test_secret_equality_with_non_ascii_values() -> None:
    # Secrets compare their UTF-8 bytes, so any text works.
    assert Secret("clé-du-bac-à-sable") == Secret("clé-du-bac-à-sable")


def test_settings_repr_hides_the_api_token() -> None:
    settings = load(**SENDBIRD)

    assert API_TOKEN not in repr(settings)
    assert API_TOKEN not in str(settings)
    assert "Secret('********')" in repr(settings)


def test_describe_names_the_target_without_secrets() -> None:
    sendbird = load(**SENDBIRD)
    sandbox = load(SANDBOX_API_TOKEN="pinned-sandbox-token")

    assert config.describe(sendbird) == (
        f"Sendbird at https://api-{APP_ID}.sendbird.com (app {APP_ID}, bot {BOT_ID})"
    )
    assert config.describe(sandbox).startswith("local Sendbird sandbox at http://127.0.0.1:8090")
    assert API_TOKEN not in config.describe(sendbird)
    assert "pinned-sandbox-token" not in config.describe(sandbox)


# ------------------------------------------------------------- get_settings cache


@pytest.fixture
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Every config variable set to "" (which also hides a `.env`), and a fresh cache."""
    for name in ALL_VARIABLES:
        monkeypatch.setenv(name, "")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_get_settings_is_cached_until_cleared(isolated_environment: pytest.MonkeyPatch) -> None:
    isolated_environment.setenv("SANDBOX_APP_ID", "first-app")
    first = get_settings()

    isolated_environment.setenv("SANDBOX_APP_ID", "second-app")
    assert get_settings() is first
    assert first.app_id == "first-app"

    get_settings.cache_clear()
    second = get_settings()
    assert second is not first
    assert second.app_id == "second-app"


def test_get_settings_reads_the_process_environment(
    isolated_environment: pytest.MonkeyPatch,
) -> None:
    for name, value in SENDBIRD.items():
        isolated_environment.setenv(name, value)

    settings = get_settings()

    assert settings.mode == "sendbird"
    assert settings.app_id == APP_ID


# ------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env() -> dict[str, str]:
    """A clean environment for `python -m sample_app.config` (no SENDBIRD_*/SANDBOX_*)."""
    if ENV_FILE.exists():
        pytest.skip(
            f"{ENV_FILE} exists and `python -m sample_app.config` always reads it; "
            "move it away to run the CLI tests"
        )
    return {"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}


def run_cli(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sample_app.config"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_reports_the_sandbox(cli_env: dict[str, str]) -> None:
    result = run_cli(cli_env)

    assert result.returncode == 0, result.stderr
    assert "Configuration OK: local Sendbird sandbox" in result.stdout


def test_cli_lists_problems_and_exits_1(cli_env: dict[str, str]) -> None:
    result = run_cli({**cli_env, "SENDBIRD_APP_ID": "x y"})

    assert result.returncode == 1, result.stderr
    assert "Configuration problems" in result.stdout
    assert "SENDBIRD_APP_ID='x y' is malformed" in result.stdout
    assert "SENDBIRD_API_TOKEN is missing" in result.stdout
    assert "SENDBIRD_BOT_ID is missing" in result.stdout
    assert "Configuration OK" not in result.stdout


def test_cli_refuses_the_embedded_sandbox_with_several_workers(cli_env: dict[str, str]) -> None:
    """What `make run` (and a worker's start-up) shows when Redis asks for several workers."""
    result = run_cli({**cli_env, "REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0"})

    assert result.returncode == 1, result.stderr
    assert "The embedded Sendbird sandbox lives inside one backend process" in result.stdout
    assert "SANDBOX_EXTERNAL=1" in result.stdout
    assert "Configuration OK" not in result.stdout


def test_the_suite_never_reads_the_projects_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the switch on (tests/conftest.py sets it), the project's `.env` is left unread."""
    import sample_app.config as config_module

    project_env = tmp_path / ".env"
    project_env.write_text("SENDBIRD_APP_ID=LEAKED-APP\nLEAK_PROBE=1\n")
    monkeypatch.setattr(config_module, "ENV_FILE", project_env)
    monkeypatch.delenv("LEAK_PROBE", raising=False)
    assert os.environ.get(config_module.IGNORE_ENV_FILE_VARIABLE) == "1"

    config_module.load_env_file(project_env)
    settings = config_module.load_settings(environ={}, env_file=project_env)

    assert "LEAK_PROBE" not in os.environ
    assert settings.is_sandbox
    monkeypatch.setenv(config_module.IGNORE_ENV_FILE_VARIABLE, "0")  # control: read it now
    with pytest.raises(ConfigError, match="SENDBIRD_API_TOKEN is missing"):
        config_module.load_settings(environ={}, env_file=project_env)


# ---- the session-token issuance budget -------------------------------------------------------


def test_issuance_budget_defaults_match_the_budget_module() -> None:
    """config.py imports nothing from the app, so it repeats the defaults: keep them equal."""
    from sample_app import issuance_budget

    settings = load()
    assert settings.token_reuse_window == timedelta(
        seconds=issuance_budget.DEFAULT_TOKEN_REUSE_SECONDS
    )
    assert settings.tokens_per_user_per_minute == issuance_budget.DEFAULT_TOKENS_PER_USER_PER_MINUTE
    assert settings.platform_posts_per_second == issuance_budget.DEFAULT_PLATFORM_POSTS_PER_SECOND
    assert settings.platform_posts_per_second < 5  # below the free trial's 5 POSTs per second


def test_issuance_budget_settings() -> None:
    settings = load(
        **SENDBIRD,
        SENDBIRD_TOKEN_REUSE_SECONDS="0",
        SENDBIRD_TOKENS_PER_USER_PER_MINUTE="30",
        SENDBIRD_PLATFORM_POSTS_PER_SECOND="90",
    )
    assert settings.token_reuse_window == timedelta(0)
    assert settings.tokens_per_user_per_minute == 30
    assert settings.platform_posts_per_second == 90


def test_reuse_window_must_end_before_a_token_is_stale() -> None:
    problem = the_problem(
        SENDBIRD_TOKEN_TTL_SECONDS="60",
        SENDBIRD_TOKEN_REFRESH_MARGIN_SECONDS="30",
        SENDBIRD_TOKEN_REUSE_SECONDS="30",
    )

    assert problem.startswith("SENDBIRD_TOKEN_REUSE_SECONDS must be shorter than")


def test_cli_rejects_unknown_arguments(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sample_app.config", "--bogus"],
        cwd=PROJECT_ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--offline" in result.stdout


def test_cli_offline_with_credentials_contacts_nobody(cli_env: dict[str, str]) -> None:
    # An unroutable host: were the set-up check to run, it would report it.
    env = {**cli_env, **SENDBIRD, "SENDBIRD_API_HOST": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "-m", "sample_app.config", "--offline"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Set-up check skipped" in result.stdout
    assert API_TOKEN not in result.stdout


# ------------------------------------------------------------------ several workers

PINNED_SANDBOX_TOKEN = "pinned-sandbox-token-0123456789"


@pytest.mark.parametrize(
    ("environ", "reason"),
    [
        ({"REFLEX_REDIS_URL": "redis://127.0.0.1:6379/0"}, "REFLEX_REDIS_URL is set"),
        ({"GRANIAN_WORKERS": "3"}, "GRANIAN_WORKERS=3"),
    ],
)
def test_the_embedded_sandbox_refuses_several_workers(environ: dict[str, str], reason: str) -> None:
    problem = the_problem(**environ)
    assert reason in problem
    assert "SANDBOX_EXTERNAL=1" in problem
    assert "make sandbox" in problem


def test_one_worker_keeps_the_embedded_sandbox() -> None:
    assert load(GRANIAN_WORKERS="1").is_sandbox


def test_an_external_sandbox_needs_its_pinned_token() -> None:
    problem = the_problem(SANDBOX_EXTERNAL="1", REFLEX_REDIS_URL="redis://127.0.0.1:6379/0")
    assert "SANDBOX_API_TOKEN" in problem


def test_an_external_sandbox_is_used_by_every_worker() -> None:
    settings = load(
        SANDBOX_EXTERNAL="1",
        SANDBOX_API_TOKEN=PINNED_SANDBOX_TOKEN,
        SANDBOX_PORT="9011",
        SANDBOX_PUBLIC_URL="https://sandbox.example.com",
        REFLEX_REDIS_URL="redis://:secret-password@127.0.0.1:6379/0",
    )
    assert settings.is_sandbox
    assert settings.sandbox is not None and settings.sandbox.external
    assert settings.api_host == "http://127.0.0.1:9011"
    assert settings.api_token.reveal() == PINNED_SANDBOX_TOKEN
    assert settings.widget_ws_host == "wss://sandbox.example.com"
    assert config.describe(settings).startswith("separately started Sendbird sandbox")
    # The Redis URL may hold a password: it never shows.
    assert settings.redis_url is not None
    assert "secret-password" not in repr(settings)


def test_redis_url_must_be_a_redis_url() -> None:
    problem = the_problem(
        SANDBOX_EXTERNAL="1",
        SANDBOX_API_TOKEN=PINNED_SANDBOX_TOKEN,
        REFLEX_REDIS_URL="http://127.0.0.1:6379",
    )
    assert "REFLEX_REDIS_URL" in problem


@pytest.mark.parametrize("value", ["1", "61", "soon"])
def test_the_token_request_deadline_is_checked(value: str) -> None:
    assert "SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS" in the_problem(
        SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS=value
    )


def test_the_state_lock_outlives_the_longest_handler() -> None:
    """Reflex discards a handler's writes once its lock expired: the lock must be longer.

    The longest handlers make one token request, or a revocation tried twice, each bounded
    by the deadline; the lock covers two deadlines with room to spare.
    """
    for seconds in (2, 15, 60):
        environ = {"SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS": str(seconds)}
        settings = load(**environ)
        lock_ms = config.state_lock_expiration_ms(environ)
        assert settings.token_request_deadline == timedelta(seconds=seconds)
        assert lock_ms >= 2 * seconds * 1000 + 5000
    assert config.state_lock_expiration_ms({}) == config.state_lock_expiration_ms(
        {"SENDBIRD_TOKEN_REQUEST_DEADLINE_SECONDS": "not a number"}
    )


def test_rxconfig_gives_reflex_the_derived_lock_expiration() -> None:
    import rxconfig

    assert rxconfig.config.redis_lock_expiration == config.state_lock_expiration_ms()


def test_sign_in_cache_setting_defaults_to_the_caches_own_and_zero_turns_it_off() -> None:
    from sample_app.sign_in_cache import DEFAULT_TTL

    assert load().sign_in_cache_ttl == DEFAULT_TTL
    assert load(SIGN_IN_CACHE_SECONDS="0").sign_in_cache_ttl == timedelta(0)
    assert load(SIGN_IN_CACHE_SECONDS="45").sign_in_cache_ttl == timedelta(seconds=45)
    with pytest.raises(ConfigError, match="SIGN_IN_CACHE_SECONDS"):
        load(SIGN_IN_CACHE_SECONDS="3600")
