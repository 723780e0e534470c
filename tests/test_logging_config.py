"""configure_logging: level, text and JSON lines, idempotence, and bad settings."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pytest

from sample_app.logging_config import (
    APP_LOGGER,
    JsonLinesFormatter,
    LoggingConfigError,
    configure_logging,
)

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) (?P<logger>\S+): (?P<message>.*)$"
)
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def app_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The `sample_app` logger, put back as it was after each test; no LOG_* variables."""
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    logger = logging.getLogger(APP_LOGGER)
    saved = (logger.level, list(logger.handlers), logger.propagate)
    yield logger
    logger.setLevel(saved[0])
    logger.handlers[:] = saved[1]
    logger.propagate = saved[2]


def ours(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if h.get_name() == "sample_app.logging_config"]


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_default_is_info_as_readable_lines(
    app_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    assert app_logger.level == logging.INFO
    log = logging.getLogger("sample_app.services")
    log.debug("not shown")
    log.info("Chat traffic goes to the %s", "sandbox")

    [line] = lines(capsys.readouterr().err)
    match = TEXT_LINE.match(line)
    assert match, line
    assert match.group("level", "logger", "message") == (
        "INFO",
        "sample_app.services",
        "Chat traffic goes to the sandbox",
    )


@pytest.mark.parametrize(
    ("setting", "level"),
    [
        ("debug", logging.DEBUG),
        ("WARNING", logging.WARNING),
        (" error ", logging.ERROR),
        ("", logging.INFO),
    ],
)
def test_level_comes_from_log_level(
    app_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, setting: str, level: int
) -> None:
    monkeypatch.setenv("LOG_LEVEL", setting)
    configure_logging()
    assert app_logger.level == level


def test_an_explicit_level_wins_over_log_level(
    app_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    configure_logging("warning")
    assert app_logger.level == logging.WARNING


def test_records_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING")
    log = logging.getLogger("sample_app.x")
    log.info("quiet")
    log.warning("loud")
    assert [TEXT_LINE.match(line).group("message") for line in lines(capsys.readouterr().err)] == [
        "loud"
    ]


def test_json_lines_have_time_level_logger_and_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    configure_logging()
    logging.getLogger("sample_app.state.auth").info("signed in\nas %s", "ada")

    [line] = lines(capsys.readouterr().err)  # the newline in the message stays escaped
    record = json.loads(line)
    assert set(record) == {"time", "level", "logger", "message"}
    assert TIME.match(record["time"]), record["time"]
    assert record["level"] == "INFO"
    assert record["logger"] == "sample_app.state.auth"
    assert record["message"] == "signed in\nas ada"


def test_json_lines_carry_the_exception_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(json_lines=True)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("sample_app.x").warning("could not do it", exc_info=True)

    [line] = lines(capsys.readouterr().err)
    record = json.loads(line)
    assert record["message"] == "could not do it"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert record["exception"].endswith("ValueError: boom")


def test_the_json_formatter_keeps_non_ascii_text() -> None:
    record = logging.LogRecord("sample_app.x", logging.INFO, __file__, 1, "ünï %s", ("🙂",), None)
    assert json.loads(JsonLinesFormatter().format(record))["message"] == "ünï 🙂"


def test_an_explicit_format_wins_over_log_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    configure_logging(json_lines=False)
    logging.getLogger("sample_app.x").warning("plain")
    [line] = lines(capsys.readouterr().err)
    assert TEXT_LINE.match(line), line


def test_calling_it_again_reconfigures_the_same_handler(
    app_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    configure_logging("DEBUG", json_lines=True)
    configure_logging("DEBUG", json_lines=True)

    assert len(ours(app_logger)) == 1
    assert app_logger.level == logging.DEBUG
    logging.getLogger("sample_app.x").debug("once")
    [line] = lines(capsys.readouterr().err)
    assert json.loads(line)["message"] == "once"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("LOG_LEVEL", "verbose", r"log level 'verbose' \(LOG_LEVEL\) is unknown: use one of DEBUG"),
        ("LOG_LEVEL", "10", r"log level '10' \(LOG_LEVEL\)"),
        ("LOG_FORMAT", "xml", r"log format 'xml' \(LOG_FORMAT\) is unknown: use text or json"),
    ],
)
def test_a_bad_setting_is_a_clear_error_and_changes_nothing(
    app_logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    expected: str,
) -> None:
    before = (app_logger.level, list(app_logger.handlers))
    monkeypatch.setenv(variable, value)
    with pytest.raises(LoggingConfigError, match=expected):
        configure_logging()
    assert (app_logger.level, list(app_logger.handlers)) == before


def test_a_bad_level_argument_is_rejected_too() -> None:
    with pytest.raises(LoggingConfigError, match="'loud'"):
        configure_logging("loud")


def test_other_loggers_are_left_alone_and_records_still_propagate(
    app_logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    watched = ["", "reflex", "reflex_base", "uvicorn", "uvicorn.error", "granian", "httpx"]

    def state() -> list[tuple[int, list[logging.Handler], bool]]:
        return [
            (lg.level, list(lg.handlers), lg.propagate) for lg in map(logging.getLogger, watched)
        ]

    before = state()
    configure_logging("INFO", json_lines=True)
    assert state() == before
    assert app_logger.propagate

    logging.getLogger("sample_app.x").info("seen upstream")
    assert [r.getMessage() for r in caplog.records if r.name == "sample_app.x"] == ["seen upstream"]
