"""The set-up check: is the Sendbird side ready for this configuration?

`python -m sample_app.config` (and so `make run`) calls :func:`run_setup_check` when Sendbird
credentials are set, before the app starts, and prints one line per problem:

* the API token is rejected (400401), or the application is unavailable (403100, for example
  a free trial that has ended);
* the bot `SENDBIRD_BOT_ID` does not exist in the application (`GET /v3/bots/{bot_id}` answers
  400201, or the bot belongs to another application);
* the widget cannot load its settings (`GET {api_host}/v3/bots/{bot_id}/{app_id}/widget_setting`,
  fetched the way the widget does: no credentials). Without them the widget renders nothing.

Timeouts are short and nothing is retried: a person is waiting at a terminal. The API token is
never part of a line (messages from Sendbird are redacted too). `--offline` or
`SENDBIRD_SKIP_SETUP_CHECK=1` skips the whole check (see `sample_app.config.main`).
"""

from __future__ import annotations

import asyncio

import httpx

from sample_app.config import Settings
from sample_app.sendbird_api import (
    RetryPolicy,
    SendbirdApplicationUnavailableError,
    SendbirdAuthError,
    SendbirdClient,
    SendbirdConnectionError,
    SendbirdError,
    encode_path_segment,
    redact,
)

#: Short: the check runs before every `make run`, and an unreachable host should say so fast.
SETUP_CHECK_TIMEOUT = httpx.Timeout(5.0, connect=3.0)

DASHBOARD_ADVICE = (
    "copy the master API token or a secondary one of this application from the Sendbird "
    "Dashboard (Settings > Application > General)"
)


def widget_setting_url(settings: Settings) -> str:
    """The URL the widget fetches its settings from (no credentials are sent)."""
    bot = encode_path_segment(settings.bot_id)
    app = encode_path_segment(settings.app_id)
    return f"{settings.widget_api_host}/v3/bots/{bot}/{app}/widget_setting"


async def check_setup(
    settings: Settings, *, http_timeout: httpx.Timeout = SETUP_CHECK_TIMEOUT
) -> list[str]:
    """Check the API token, the application, the bot and the widget settings remotely.

    Args:
        settings: A Sendbird-mode configuration (`load_settings`).
        http_timeout: httpx timeouts for each request.

    Returns:
        One line per problem, without secrets; empty when everything is ready.
    """
    token = settings.api_token.reveal()
    app, bot = settings.app_id, settings.bot_id
    problems: list[str] = []
    check_widget = True
    async with SendbirdClient(
        settings.api_host, token, timeout=http_timeout, retry=RetryPolicy(max_retries=0)
    ) as client:
        try:
            found = await client.get_bot(bot)
        except SendbirdApplicationUnavailableError as error:
            check_widget = False
            problems.append(
                f"Sendbird application '{app}' is not available (code {error.code}, "
                f"HTTP {error.status_code}): its plan or free trial has probably ended; check "
                "the plan or trial status of this application in the Sendbird Dashboard "
                "(the API token is not the problem)"
            )
        except SendbirdAuthError as error:
            code = f"code {error.code}, " if error.code is not None else ""
            problems.append(
                f"SENDBIRD_API_TOKEN was rejected by Sendbird ({code}HTTP {error.status_code}) "
                f"for application '{app}' at {settings.api_host}: {DASHBOARD_ADVICE}"
            )
        except SendbirdConnectionError as error:
            check_widget = settings.widget_api_host != settings.api_host
            problems.append(
                f"Could not reach Sendbird at {settings.api_host} ({_reason(error, token)}): "
                "check the network, SENDBIRD_APP_ID and SENDBIRD_API_HOST, or start offline "
                "with --offline (make run: SENDBIRD_SKIP_SETUP_CHECK=1)"
            )
        except SendbirdError as error:
            problems.append(
                f"Looking up SENDBIRD_BOT_ID '{bot}' in application '{app}' failed: "
                f"{redact(str(error), [token])}"
            )
        else:
            if found is None:
                problems.append(
                    f"SENDBIRD_BOT_ID '{bot}' was not found in application '{app}' "
                    "(GET /v3/bots answered 400201): create an AI chatbot in this application, "
                    "or copy its id from the Sendbird Dashboard (AI chatbot > Bots)"
                )
            elif found.app_id is not None and found.app_id != app:
                problems.append(
                    f"SENDBIRD_BOT_ID '{bot}' was not found in application '{app}': it belongs "
                    f"to application '{found.app_id}'; use a bot of application '{app}', or "
                    "the app id and API token of the bot's application"
                )
    if check_widget and (problem := await _check_widget_setting(settings, http_timeout)):
        problems.append(problem)
    return problems


async def _check_widget_setting(settings: Settings, http_timeout: httpx.Timeout) -> str | None:
    url = widget_setting_url(settings)
    where = f"the widget's settings for bot '{settings.bot_id}' ({url})"
    try:
        async with httpx.AsyncClient(timeout=http_timeout, follow_redirects=False) as http:
            response = await http.get(url)
    except httpx.HTTPError as exc:
        return (
            f"Could not load {where}: {type(exc).__name__}; the widget would render nothing. "
            "Check the network and SENDBIRD_API_HOST"
        )
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return None
        return f"{where[0].upper()}{where[1:]} answered HTTP 200 without a JSON object"
    code = _error_code(response)
    detail = f"HTTP {response.status_code}" + (f", code {code}" if code is not None else "")
    return (
        f"Could not load {where}: {detail}; the widget would render nothing. Check that "
        f"SENDBIRD_BOT_ID is an AI chatbot of application '{settings.app_id}' and that the "
        "application's plan includes the AI chatbot widget"
    )


def _error_code(response: httpx.Response) -> int | None:
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("code") if isinstance(data, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _reason(error: SendbirdConnectionError, token: str) -> str:
    cause = error.__cause__
    text = type(cause).__name__ if cause is not None else "no answer"
    if "timeout" in str(error).lower() and "Timeout" not in text:
        text = "timed out"
    return redact(text, [token])


def run_setup_check(settings: Settings) -> list[str]:
    """:func:`check_setup` for synchronous callers (the `sample_app.config` command)."""
    return asyncio.run(check_setup(settings))


__all__ = ["SETUP_CHECK_TIMEOUT", "check_setup", "run_setup_check", "widget_setting_url"]
