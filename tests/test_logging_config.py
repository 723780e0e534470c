"""configure_logging: level, text and JSON lines, worker and request ids, bad settings."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Iterator

import pytest

from sample_app.logging_config import (
    APP_LOGGER,
    JsonLinesFormatter,
    LoggingConfigError,
    TextFormatter,
    configure_logging,
    request_id_var,
    worker_id,
)

TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<level>[A-Z]+) (?P<logger>\S+) "
    r"\[worker_id=(?P<worker>[A-Za-z0-9._-]+)(?: request_id=(?P<request>[A-Za-z0-9._-]+))?\]: "
    r"(?P<message>.*)$"
)
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(autouse=True)
def app_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The `sample_app` logger, put back as it was after each test; no LOG_* variables."""
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("SAMPLE_APP_WORKER_ID", raising=False)
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
    assert set(record) == {"time", "level", "logger", "message", "worker_id"}
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


# ------------------------------------------------------------------ worker and request ids


def test_worker_id_comes_from_the_variable_else_the_process_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert worker_id() == f"pid-{os.getpid()}"
    monkeypatch.setenv("SAMPLE_APP_WORKER_ID", " w2 ")
    assert worker_id() == "w2"
    # It goes into text lines unquoted: nothing there may break a line or fake a field.
    monkeypatch.setenv("SAMPLE_APP_WORKER_ID", "w 3\nINFO fake]: x" + "y" * 100)
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", worker_id()), worker_id()
    assert worker_id().startswith("w_3_INFO_fake__")


def test_json_lines_carry_the_worker_id_always_and_the_request_id_inside_a_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SAMPLE_APP_WORKER_ID", "w1")
    configure_logging(json_lines=True)
    log = logging.getLogger("sample_app.x")
    log.info("outside")
    token = request_id_var.set("req-7")
    try:
        log.info("inside")
    finally:
        request_id_var.reset(token)
    log.info("after")

    records = [json.loads(line) for line in lines(capsys.readouterr().err)]
    assert [(r["message"], r["worker_id"], r.get("request_id")) for r in records] == [
        ("outside", "w1", None),
        ("inside", "w1", "req-7"),
        ("after", "w1", None),
    ]
    assert "request_id" not in records[0]


def test_text_lines_carry_the_worker_id_and_the_request_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging()
    log = logging.getLogger("sample_app.x")
    log.warning("no request")
    monkeypatch.setenv("SAMPLE_APP_WORKER_ID", "w9")
    token = request_id_var.set("abc.DEF_1-2")
    try:
        log.warning("in a request")
    finally:
        request_id_var.reset(token)

    first, second = (TEXT_LINE.match(line) for line in lines(capsys.readouterr().err))
    assert first is not None and second is not None
    assert first.group("worker", "request", "message") == (
        f"pid-{os.getpid()}",
        None,
        "no request",
    )
    assert second.group("worker", "request", "message") == ("w9", "abc.DEF_1-2", "in a request")


def test_the_request_id_follows_the_request_into_tasks_and_threads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(json_lines=True)
    log = logging.getLogger("sample_app.x")

    async def request(request_id: str) -> None:
        request_id_var.set(request_id)  # each task has a context of its own
        await asyncio.to_thread(log.info, "thread of %s", request_id)
        await asyncio.create_task(asyncio.to_thread(log.info, "task of %s", request_id))

    async def both() -> None:
        await asyncio.gather(request("a"), request("b"))

    asyncio.run(both())
    records = [json.loads(line) for line in lines(capsys.readouterr().err)]
    assert sorted((r["message"], r["request_id"]) for r in records) == [
        ("task of a", "a"),
        ("task of b", "b"),
        ("thread of a", "a"),
        ("thread of b", "b"),
    ]
    assert request_id_var.get() is None


def test_the_text_formatter_reads_the_context_when_it_formats() -> None:
    formatter = TextFormatter()
    record = logging.LogRecord("sample_app.x", logging.INFO, __file__, 1, "hi", (), None)
    token = request_id_var.set("r1")
    try:
        inside = formatter.format(record)
    finally:
        request_id_var.reset(token)
    assert inside.endswith(f" INFO sample_app.x [worker_id=pid-{os.getpid()} request_id=r1]: hi")
    assert "request_id" not in formatter.format(record)
