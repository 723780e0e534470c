"""The Sendbird client is type-checked with everything `mypy --strict` checks.

mypy's `strict = true` cannot be scoped to some modules (in an override it turns strict
mode on for the whole run), so pyproject.toml spells out the flags instead. This test
keeps that list complete when a mypy upgrade adds a flag to `--strict`.
"""

from __future__ import annotations

import io
import tomllib
from pathlib import Path
from typing import Any

import pytest

mypy_main = pytest.importorskip("mypy.main")
mypy_options = pytest.importorskip("mypy.options")

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
STRICT_MODULES = {
    "sample_app.sendbird_api.*",
    "sample_app.session_tokens",
    "sample_app.issuance_budget",
    "sample_app.redis_shared",
    "sample_app.readiness",
    "sample_app.request_context",
    "sample_app.logging_config",
    "sample_app.http_api",
    "sample_app.signed_in",
    "sample_app.sign_in_cache",
}


@pytest.fixture(scope="module")
def strict_flags(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """What `--strict` changes, split into per-module options and global ones."""
    neutral = tmp_path_factory.mktemp("mypy") / "mypy.ini"  # not the project's settings
    neutral.write_text("[mypy]\n")
    quiet = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    args = ["--config-file", str(neutral), "-c", "pass"]
    _, plain = mypy_main.process_options(args, **quiet)
    _, strict = mypy_main.process_options(["--strict", *args], **quiet)
    per_module: dict[str, Any] = {}
    global_: dict[str, Any] = {}
    for name in dir(strict):
        if name.startswith("_"):
            continue
        value = getattr(strict, name)
        if callable(value) or value == getattr(plain, name):
            continue
        target = per_module if name in mypy_options.PER_MODULE_OPTIONS else global_
        target[name] = value
    return per_module, global_


def mypy_config() -> dict[str, Any]:
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)["tool"]["mypy"]


def test_the_strict_override_sets_every_per_module_strict_flag(
    strict_flags: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    per_module, _ = strict_flags
    assert per_module, "mypy --strict changed no per-module option: has mypy changed?"
    [override] = [
        section
        for section in mypy_config().get("overrides", [])
        if set(section["module"]) == STRICT_MODULES
    ]
    assert "strict" not in override, "`strict` in an override makes every module strict"
    assert {name: override.get(name) for name in per_module} == per_module


def test_the_global_strict_flags_are_on(
    strict_flags: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, global_ = strict_flags
    config = mypy_config()
    assert "strict" not in config
    assert {name: config.get(name) for name in global_} == global_
