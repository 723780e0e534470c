"""Fuzzing the HTTP API from its own OpenAPI schema (schemathesis), on a real server.

The schema is loaded from the running API (`GET /api/openapi.json`), and every operation is
called with the cases schemathesis generates from it, once without a sign-in (the
generated Authorization header, if any, is all there is) and once with a fresh, valid sign-in
token per case. Against a healthy sandbox no answer may be a 5xx (not even the documented
502/503), every status must be one the schema documents, and every body must match its
schema. Bounded and deterministic: at most 50 examples per operation and sign-in state,
derandomized (a fixed seed), no deadline. The number of cases run is printed at the end.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from sample_app.http_api import OPENAPI_URL, SESSION_PATH, SESSION_TOKEN_PATH
from tests.http_api.conftest import Api, running_api
from tests.stack import SandboxHandle

MAX_EXAMPLES = 50
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]

_cases: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_api(sandbox: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One backend for all the generated cases (each signed-in case gets its own account)."""
    workdir: Path = tmp_path_factory.mktemp("fuzz")
    with running_api(sandbox, workdir) as api:
        yield api


@pytest.fixture(scope="module")
def api_schema(fuzz_api: Api) -> Any:
    """The schema as the running API serves it."""
    return schemathesis.openapi.from_url(f"{fuzz_api.url}{OPENAPI_URL}")


@pytest.fixture(scope="module", autouse=True)
def _report_case_count(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    total = sum(_cases.values())
    detail = ", ".join(f"{name}: {count}" for name, count in sorted(_cases.items()))
    line = f"schemathesis ran {total} generated case(s) against the HTTP API ({detail})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    context = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with context:
        print(f"\n{line}")  # noqa: T201 - the figure the docs quote


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Every operation of the schema; test_every_operation_is_fuzzed keeps this list complete.
OPERATIONS = [("POST", SESSION_TOKEN_PATH), ("DELETE", SESSION_PATH)]


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    served = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert served == set(OPERATIONS)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_generated_cases_get_documented_answers(
    api_schema: Any, fuzz_api: Api, method: str, path: str, signed_in: bool
) -> None:
    # schemathesis's own pytest integration (`schema.parametrize`) fails on pytest 9
    # ('Function' object has no attribute '_nodeid'), so hypothesis drives its strategy here.
    operation = api_schema[path][method]

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        headers = None
        if signed_in:
            # A fresh account per case: one case's sign-out must not turn the next into a
            # 401, and the per-user issuance budget then allows every case its token.
            headers = {"Authorization": f"Bearer {fuzz_api.sign_in()}"}
        _cases[f"{method} {path} {'signed-in' if signed_in else 'anonymous'}"] += 1
        case.call_and_validate(base_url=fuzz_api.url, headers=headers, checks=CHECKS)

    check()
