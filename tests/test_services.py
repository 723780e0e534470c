"""The process-wide collaborators: the test seam, and no sandbox code on real Sendbird."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sample_app.config import PROJECT_ROOT, load_settings
from sample_app.services import (
    build_services,
    get_services,
    protect_state_store,
    use_services,
)

SENDBIRD_ENV = {
    "SENDBIRD_APP_ID": "A1B2C3D4-0000-1111-2222-333344445555",
    "SENDBIRD_API_TOKEN": "0123456789abcdef0123456789abcdef01234567",
    "SENDBIRD_BOT_ID": "my-bot",
}


async def test_use_services_installs_and_restores(tmp_path: Path) -> None:
    settings = load_settings(environ=SENDBIRD_ENV, env_file=None)
    outer = build_services(settings, f"sqlite:///{tmp_path / 'outer.db'}")
    inner = build_services(settings, f"sqlite:///{tmp_path / 'inner.db'}")
    try:
        with use_services(outer):
            assert get_services() is outer
            with use_services(inner):
                assert get_services() is inner
            assert get_services() is outer
    finally:
        await outer.aclose()
        await inner.aclose()


def test_an_app_on_real_sendbird_never_imports_the_sandbox(tmp_path: Path) -> None:
    """The state, pages and services load, and the sandbox package stays out of the process."""
    script = textwrap.dedent(
        f"""
        import sys
        from sample_app.config import load_settings
        from sample_app.services import build_services
        import sample_app.pages.chat, sample_app.pages.sign_in, sample_app.state.chat_session

        services = build_services(load_settings(), "sqlite:///{tmp_path / "a.db"}")
        assert services.sandbox_control is None
        loaded = sorted(name for name in sys.modules if name.startswith("sample_app.sandbox"))
        print("sandbox modules:", loaded)
        """
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), **SENDBIRD_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sandbox modules: []" in result.stdout


async def test_an_app_on_the_sandbox_gets_its_control_client(tmp_path: Path) -> None:
    settings = load_settings(environ={}, env_file=None)
    services = build_services(settings, f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert services.sandbox_control is not None
        assert services.sandbox_control.base_url == settings.api_host
    finally:
        await services.aclose()


def test_the_state_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """Reflex's `.states/` holds sign-in and session tokens: no other user may read it."""
    store = tmp_path / ".states"
    store.mkdir(mode=0o755)
    pickle = store / "tab.pkl"
    pickle.write_bytes(b"state")
    pickle.chmod(0o644)

    assert protect_state_store(store) == store

    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert stat.S_IMODE(pickle.stat().st_mode) == 0o600


def test_redis_without_shared_sign_outs_is_refused() -> None:
    """Several workers with a sign-in cache only its own process clears: refused at once."""
    from sample_app.services import Services
    from sample_app.sign_in_cache import SignInCache

    with pytest.raises(ValueError, match="shared generations"):
        Services(
            settings=None,  # type: ignore[arg-type]
            sendbird=None,  # type: ignore[arg-type]
            tokens=None,  # type: ignore[arg-type]
            accounts=None,  # type: ignore[arg-type]
            sandbox_control=None,
            redis=object(),  # type: ignore[arg-type]
            sign_ins=SignInCache(),
        )
