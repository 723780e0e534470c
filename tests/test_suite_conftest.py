"""tests/conftest.py itself: tiers by folder, and failing tests that log at ERROR."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

INI = """
[pytest]
addopts = -p no:cacheprovider --strict-markers
asyncio_default_fixture_loop_scope = function
markers =
    sandbox: sandbox tier
    browser: browser tier
    live: live tier
    allow_error_logs: expected ERROR logs
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A scratch tests/ folder that uses this suite's conftest.py."""
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST.read_text())
    return pytester


def test_tests_are_marked_by_folder(suite: pytest.Pytester) -> None:
    for folder in ("sandbox", "browser", "live", "accounts"):
        suite.mkpydir(folder).joinpath(f"test_{folder}_tier.py").write_text(
            "def test_it():\n    pass\n"
        )
    suite.makepyfile(test_plain="def test_it():\n    pass\n")

    for tier in ("sandbox", "browser", "live"):
        result = suite.runpytest("-m", tier, "--collect-only", "-q")
        assert [line for line in result.outlines if "::" in line] == [
            f"{tier}/test_{tier}_tier.py::test_it"
        ]
    result = suite.runpytest("-m", "not sandbox and not browser and not live", "-q")
    result.assert_outcomes(passed=2)


# The inner runs log ERROR records on purpose, and this test's own guard sees them too.
@pytest.mark.allow_error_logs
def test_an_error_logged_by_the_app_fails_the_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import logging

        def test_app_error():
            logging.getLogger("sample_app.services").error("could not %s", "start")

        def test_reflex_error():
            logging.getLogger("reflex_base.event").critical("broken")

        def test_reflex_exception():
            try:
                1 / 0
            except ZeroDivisionError:
                logging.getLogger("reflex.state").exception("handler failed")
        """
    )
    result = suite.runpytest("-q")
    result.assert_outcomes(passed=3, errors=3)
    result.stdout.fnmatch_lines(
        [
            "*test_app_error logged 1 record(s) at ERROR or above:",
            "  ERROR sample_app.services: could not start",
            "*mark the test @pytest.mark.allow_error_logs*",
            "  CRITICAL reflex_base.event: broken",
            "  ERROR reflex.state: handler failed [ZeroDivisionError: division by zero]",
        ]
    )


@pytest.mark.allow_error_logs
def test_what_does_not_fail_a_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import logging

        import pytest

        log = logging.getLogger("sample_app.x")

        @pytest.fixture
        def noisy_fixture():
            log.error("during set-up")
            yield
            log.error("during teardown")

        @pytest.mark.allow_error_logs
        def test_marked():
            log.error("expected")

        def test_warning():
            log.warning("only a warning")

        def test_another_library():
            logging.getLogger("httpx").error("not ours")
            logging.getLogger("sample_appendix").error("not ours either")

        def test_fixture_phases(noisy_fixture):
            pass

        def test_failing_on_its_own():
            log.error("about to fail")
            assert False
        """
    )
    result = suite.runpytest("-q")
    result.assert_outcomes(passed=4, failed=1)


@pytest.mark.allow_error_logs
def test_only_the_widget_sdks_own_rejections_are_let_through(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import logging

        log = logging.getLogger("reflex.app")

        def test_widget_socket_closed():
            log.error(
                "[Reflex Frontend Exception]\\n SendbirdError: Connection is closed. Please "
                "reconnect.\\n    at n.get (http://x/widget-island/chat-ai-widget-island.0123456789ab.js:19:1)"
            )

        def test_widget_request_canceled():
            log.error(
                "[Reflex Frontend Exception]\\n SendbirdError: Request has been canceled.\\n"
                "    at n.get (http://x/widget-island/chat-ai-widget-island.0123456789ab.js:19:1)"
            )

        def test_other_frontend_error():
            log.error("[Reflex Frontend Exception]\\n TypeError: x is undefined")

        def test_same_text_outside_the_island():
            log.error(
                "[Reflex Frontend Exception]\\n SendbirdError: Connection is closed.\\n"
                "    at bridge (http://x/chat_ai_widget.jsx:3:1)"
            )
        """
    )
    result = suite.runpytest("-q")
    result.assert_outcomes(passed=4, errors=2)
