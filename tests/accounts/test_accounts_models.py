"""The password hash never leaves the server: not in views, dumps, reprs or Reflex state."""

from __future__ import annotations

import dataclasses
import json

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from sample_app.accounts import Account, AccountService, AccountView
from tests.accounts.helpers import PASSWORD
from tests.clock import START


@pytest.fixture
def account(service: AccountService, engine: Engine) -> Account:
    view = service.register("alice", PASSWORD, "Alice", "https://example.com/a.png")
    with Session(engine) as session:
        loaded = session.get(Account, view.id)
        assert loaded is not None
        return loaded


def test_account_view_has_exactly_the_public_fields() -> None:
    assert [f.name for f in dataclasses.fields(AccountView)] == [
        "id",
        "username",
        "display_name",
        "profile_url",
        "sendbird_key",
    ]


def test_public_view(account: Account) -> None:
    view = account.public()
    assert view == AccountView(
        account.id or 0,
        "alice",
        "Alice",
        "https://example.com/a.png",
        sendbird_key=account.sendbird_key,
    )
    assert "password" not in json.dumps(dataclasses.asdict(view))
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.username = "mallory"  # type: ignore[misc]


def test_unsaved_account_has_no_view() -> None:
    unsaved = Account(username="x", display_name="X", password_hash="h", created_at=START)
    with pytest.raises(ValueError, match="no id"):
        unsaved.public()


def test_dumps_and_repr_never_include_the_hash(account: Account) -> None:
    secret = account.password_hash
    assert secret.startswith("$argon2id$")
    dumps = [
        account.model_dump(),
        account.model_dump(mode="json"),
        account.model_dump(include={"password_hash", "username"}),
        account.model_dump(exclude={"username"}),
    ]
    for dump in dumps:
        assert "password_hash" not in dump
    assert dumps[2] == {"username": "alice"}
    for text in (
        account.model_dump_json(),
        account.model_dump_json(include={"password_hash"}),
        account.model_dump_json(exclude={"id"}),
        account.model_dump_json(exclude={"id": True}),
        repr(account),
        str(account),
    ):
        assert secret not in text
        assert "password_hash" not in text


def test_reflex_serialisation_leaves_out_the_hash(account: Account) -> None:
    from reflex_base.utils.serializers import serialize

    serialized = serialize(account)
    assert isinstance(serialized, dict)
    assert "password_hash" not in serialized
    assert serialized["username"] == "alice"
    assert serialize(account.public()) == {
        "id": account.id,
        "username": "alice",
        "display_name": "Alice",
        "profile_url": "https://example.com/a.png",
        "sendbird_key": account.sendbird_key,
    }
