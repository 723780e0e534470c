"""Old credentials are deleted: the token ledger and the session keys do not grow forever.

The store takes its clock as ``now`` arguments, so the white-box tests move time by passing
later values; the end-to-end test runs a sandbox with a one-second retention and waits.
"""

from __future__ import annotations

import asyncio

from sandbox_helpers import Sandbox, assert_error, user_path

from sample_app.sandbox.credentials import short_hash
from sample_app.sandbox.httputil import now_ms
from sample_app.sandbox.store import Store

RETENTION_MS = 1000


def fresh_store(cap: int = 100) -> Store:
    """An in-memory store keeping dead credentials for one second, at most ``cap`` per user."""
    return Store(":memory:", credential_retention_ms=RETENTION_MS, max_credentials_per_user=cap)


def test_expired_token_records_go_after_the_retention() -> None:
    store = fresh_store()
    store.add_token("alice", "a1", 0, issued_at=0, expires_at=10_000)
    store.add_token("bob", "b1", 0, issued_at=0, expires_at=50_000)
    assert store.credential_counts()["token_issues"] == 2
    store.prune_credentials(now=10_000 + RETENTION_MS - 1)  # expired, still within retention
    assert [r["token_sha256"] for r in store.list_tokens()] == ["a1", "b1"]
    store.prune_credentials(now=10_000 + RETENTION_MS)
    assert [r["token_sha256"] for r in store.list_tokens()] == ["b1"]


def test_revoked_token_records_go_after_the_retention() -> None:
    store = fresh_store()
    store.add_token("alice", "a1", 0, issued_at=0, expires_at=10**12)
    store.add_token("carol", "c1", 0, issued_at=0, expires_at=10**12)
    store.bump_token_version("alice", revoke=True, now=5_000)
    store.bump_token_version("carol", revoke=False, now=5_000)  # expire-token
    store.add_token("alice", "a2", 1, issued_at=5_000, expires_at=10**12)
    store.prune_credentials(now=5_000 + RETENTION_MS - 1)
    assert [r["token_sha256"] for r in store.list_tokens()] == ["a1", "c1", "a2"]
    store.prune_credentials(now=5_000 + RETENTION_MS)
    assert [r["token_sha256"] for r in store.list_tokens()] == ["a2"]
    # The version counters that make old tokens fail stay: one row per user, bounded.
    assert store.token_subject("alice")["revoked_below"] == 1


def test_expired_and_revoked_session_keys_go_after_the_retention() -> None:
    store = fresh_store()
    store.add_session_key("alice", "k-expired", issued_at=0, expires_at=1_000)
    store.add_session_key("bob", "k-revoked", issued_at=0, expires_at=10**12)
    store.add_session_key("carol", "k-live", issued_at=0, expires_at=10**12)
    store.revoke_session_keys("bob", now=2_000)
    assert store.check_session_key("k-revoked", 2_500).state == "revoked"
    assert store.check_session_key("k-expired", 2_500).state == "expired"
    store.prune_credentials(now=2_000 + RETENTION_MS)
    assert store.credential_counts()["session_keys"] == 1
    assert store.check_session_key("k-live", 2_000 + RETENTION_MS).state == "ok"
    assert store.check_session_key("k-expired", 2_000 + RETENTION_MS).state == "unknown"


def test_writes_prune_without_being_asked() -> None:
    store = fresh_store()
    store.add_session_key("alice", "old", issued_at=0, expires_at=1_000)
    store.add_token("alice", "old", 0, issued_at=0, expires_at=1_000)
    later = 1_000 + RETENTION_MS
    store.add_session_key("bob", "new", issued_at=later, expires_at=later + 60_000)
    store.add_token("bob", "new", 0, issued_at=later, expires_at=later + 60_000)
    assert store.credential_counts() == {"token_issues": 1, "session_keys": 1}


def test_each_user_keeps_at_most_the_newest_records() -> None:
    store = fresh_store(cap=3)
    for i in range(6):
        store.add_token("alice", f"t{i}", 0, issued_at=i, expires_at=10**12)
        store.add_session_key("alice", f"k{i}", issued_at=i, expires_at=10**12)
    store.add_token("bob", "bob", 0, issued_at=9, expires_at=10**12)
    assert [r["token_sha256"] for r in store.list_tokens("alice")] == ["t3", "t4", "t5"]
    assert [r["token_sha256"] for r in store.list_tokens("bob")] == ["bob"]
    assert store.credential_counts()["session_keys"] == 3
    assert store.check_session_key("k5", 10).state == "ok"
    assert store.check_session_key("k0", 10).state == "unknown"


async def test_the_running_sandbox_prunes_what_expired(start_sandbox) -> None:
    sandbox: Sandbox = start_sandbox(credential_retention=1.0, session_key_ttl=1.0)
    for user_id in ("alice", "bob", "carol"):
        sandbox.create_user(user_id)
    short_lived = sandbox.issue_token("alice", expires_at=now_ms() + 1500)
    kept = sandbox.issue_token("bob")
    sandbox.issue_token("carol")
    sandbox.control("carol", "revoke")
    key = sandbox.anon.post(user_path("alice", "/session_key"), json={"token": kept}).json()
    assert key.get("code") == 400302  # bob's token cannot open alice's session
    key = sandbox.anon.post(user_path("bob", "/session_key"), json={"token": kept}).json()["key"]
    store = sandbox.server.app.state.sandbox.store
    assert store.credential_counts() == {"token_issues": 3, "session_keys": 1}

    await asyncio.sleep(3.2)  # alice's token and bob's key expired, carol's revoke is old
    fresh = sandbox.issue_token("bob")  # any credential write prunes

    listed = sandbox.http.get("/__sandbox__/tokens").json()["tokens"]
    assert [t["user_id"] for t in listed] == ["bob", "bob"]
    assert short_hash(short_lived) not in str(listed)
    assert store.credential_counts() == {"token_issues": 2, "session_keys": 0}
    # What is still valid keeps working; the pruned key is now simply unknown.
    new_key = sandbox.anon.post(user_path("bob", "/session_key"), json={"token": fresh})
    assert new_key.status_code == 200
    response = sandbox.anon.get("/v3/users/bob/my_group_channels", headers={"Session-Key": key})
    assert_error(response, 400, 400303)
