"""The set-up check (`python -m sample_app.config`) against a real sandbox, in a subprocess.

The sandbox's bot is `other-bot`; each test points the command's environment at it the way a
`.env` for a separately started sandbox does, then reads what the command prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from sandbox_helpers import API_TOKEN, APP_ID, Sandbox

from sample_app.config import PROJECT_ROOT

SANDBOX_BOT = "other-bot"


@pytest.fixture
def bot_sandbox(start_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox whose only bot is `other-bot`."""
    return start_sandbox(bot_id=SANDBOX_BOT)


def run_config(sandbox: Sandbox, *args: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m sample_app.config` with an environment pointing at `sandbox`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDBIRD_", "SANDBOX_"))}
    env.update(
        {
            "SAMPLE_APP_IGNORE_DOTENV": "1",
            "SENDBIRD_APP_ID": APP_ID,
            "SENDBIRD_API_TOKEN": API_TOKEN,
            "SENDBIRD_BOT_ID": SANDBOX_BOT,
            "SENDBIRD_API_HOST": sandbox.server.http_url,
            "SENDBIRD_WS_HOST": sandbox.server.ws_url,
        }
    )
    env.update(overrides)
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "sample_app.config", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def problem_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line.strip()[2:] for line in result.stdout.splitlines() if line.startswith("  - ")]


def test_a_right_configuration_prints_ok(bot_sandbox: Sandbox) -> None:
    result = run_config(bot_sandbox)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Configuration OK: Sendbird at "), result.stdout
    assert f"bot {SANDBOX_BOT}" in result.stdout


def test_a_wrong_bot_is_named_and_exits_1(bot_sandbox: Sandbox) -> None:
    result = run_config(bot_sandbox, SENDBIRD_BOT_ID="wrong-bot")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = problem_lines(result)
    assert lines[0].startswith(
        f"SENDBIRD_BOT_ID 'wrong-bot' was not found in application '{APP_ID}'"
    ), result.stdout
    # The widget's own request for its settings fails for that bot too.
    assert any("widget's settings for bot 'wrong-bot'" in line for line in lines), lines
    assert "400201" in lines[1]
    assert "Configuration OK" not in result.stdout


def test_a_wrong_api_token_is_reported_without_the_token(bot_sandbox: Sandbox) -> None:
    wrong = "wrong-token-" + "x" * 20
    result = run_config(bot_sandbox, SENDBIRD_API_TOKEN=wrong)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = problem_lines(result)
    assert len(lines) == 1, lines  # the bot and its widget settings are fine
    assert lines[0].startswith("SENDBIRD_API_TOKEN was rejected by Sendbird (code 400401"), lines
    assert "Settings > Application > General" in lines[0]
    assert wrong not in result.stdout + result.stderr
    assert API_TOKEN not in result.stdout + result.stderr


def test_offline_skips_the_remote_check(bot_sandbox: Sandbox) -> None:
    calls_before = bot_sandbox.http.get("/__sandbox__/stats").json()
    for args, env in (
        (("--offline",), {}),
        ((), {"SENDBIRD_SKIP_SETUP_CHECK": "1"}),
    ):
        result = run_config(bot_sandbox, *args, SENDBIRD_BOT_ID="wrong-bot", **env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Set-up check skipped" in result.stdout
        assert "Configuration OK" in result.stdout
    assert bot_sandbox.http.get("/__sandbox__/stats").json() == calls_before


def test_an_unreachable_host_is_one_line(bot_sandbox: Sandbox) -> None:
    result = run_config(
        bot_sandbox, SENDBIRD_API_HOST="http://127.0.0.1:9", SENDBIRD_WS_HOST="ws://127.0.0.1:9"
    )
    assert result.returncode == 1
    lines = problem_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("Could not reach Sendbird at http://127.0.0.1:9"), lines


def test_a_v3_api_host_reaches_the_same_sandbox(bot_sandbox: Sandbox) -> None:
    result = run_config(bot_sandbox, SENDBIRD_API_HOST=bot_sandbox.server.http_url + "/v3/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Sendbird at {bot_sandbox.server.http_url} " in result.stdout


def test_an_unavailable_application_is_not_blamed_on_the_token(bot_sandbox: Sandbox) -> None:
    response = bot_sandbox.http.post(
        "/__sandbox__/faults",
        json={"method": "GET", "path": f"/v3/bots/{SANDBOX_BOT}", "status": 403, "count": 1},
    )
    assert response.status_code == 200, response.text
    result = run_config(bot_sandbox)
    assert result.returncode == 1
    lines = problem_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"Sendbird application '{APP_ID}' is not available (code 403100, HTTP 403)"
    ), lines
    assert "plan or trial" in lines[0]
    assert "SENDBIRD_API_TOKEN" not in lines[0]
