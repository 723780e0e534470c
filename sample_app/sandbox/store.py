"""SQLite persistence of the sandbox.

Users, channels and messages must survive a restart: the widget caches its channel URL in
``localStorage`` for 30 days and the SDK caches messages in IndexedDB, so a sandbox that forgot
them would leave a blank widget. Credentials are stored only as SHA-256 digests; the plaintext
token or session key exists only in the response that handed it out.

Session tokens are stateless signed JWTs, as at Sendbird: what the store keeps for them is the
signing secret (``sandbox_meta``, so tokens survive a restart on the same database), each user's
token number and version (``token_subjects``; revoking all tokens bumps the version) and a
ledger of issuances (``token_issues``, one row per ``POST /v3/users/{id}/token`` even when the
same token string is handed out twice) for the control surface's token listing.

All methods are synchronous. The sandbox's async code never calls them on its event loop
(which the embedded sandbox shares with the Reflex backend): it runs them on one dedicated
thread (:mod:`.dbthread`). The lock below keeps the connection safe for the other callers
(start-up, white-box tests).

Credentials do not pile up: every write of a token issuance or a session key prunes what has
been dead (expired, revoked, or older than the user's last revoke or expire-token) for longer
than the retention, and keeps at most ``max_credentials_per_user`` rows of each kind per user.
Dead rows are kept for a while because they still matter: an expired session key answers
400309 (the SDK refreshes it) where an unknown one answers 400303, and the control surface's
token listing shows recently revoked tokens. A pruned session key answers 400303.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    nickname TEXT NOT NULL,
    profile_url TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    is_active INTEGER NOT NULL DEFAULT 1,
    is_bot INTEGER NOT NULL DEFAULT 0,
    has_ever_logged_in INTEGER NOT NULL DEFAULT 0,
    last_seen_at INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
DROP TABLE IF EXISTS session_tokens;
CREATE TABLE IF NOT EXISTS sandbox_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS token_subjects (
    user_id TEXT PRIMARY KEY,
    number INTEGER NOT NULL UNIQUE,
    version INTEGER NOT NULL DEFAULT 0,
    revoked_below INTEGER NOT NULL DEFAULT 0,
    expired_below INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS token_issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT NOT NULL,
    user_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    dead_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS token_issues_user ON token_issues(user_id);
CREATE TABLE IF NOT EXISTS session_keys (
    key_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS session_keys_user ON session_keys(user_id);
CREATE INDEX IF NOT EXISTS session_keys_expiry ON session_keys(expires_at);
CREATE TABLE IF NOT EXISTS channels (
    channel_url TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    cover_url TEXT NOT NULL DEFAULT '',
    custom_type TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '',
    is_distinct INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS channel_members (
    channel_url TEXT NOT NULL,
    user_id TEXT NOT NULL,
    joined_at INTEGER NOT NULL,
    last_read_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_url, user_id)
);
CREATE INDEX IF NOT EXISTS channel_members_user ON channel_members(user_id);
CREATE TABLE IF NOT EXISTS messages (
    msg_id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_url TEXT NOT NULL,
    user_id TEXT NOT NULL,
    message TEXT NOT NULL,
    custom_type TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '',
    mention_type TEXT NOT NULL DEFAULT 'users',
    extended_payload TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_channel_ts ON messages(channel_url, created_at, msg_id);
"""

CREDENTIAL_OK = "ok"
CREDENTIAL_EXPIRED = "expired"
CREDENTIAL_REVOKED = "revoked"
CREDENTIAL_UNKNOWN = "unknown"

DEFAULT_CREDENTIAL_RETENTION_MS = 7 * 24 * 3600 * 1000
"""How long a dead credential row stays: a week, Sendbird's default token lifetime, so a widget
that slept through its session key's expiry still gets 400309 and refreshes."""
MAX_CREDENTIALS_PER_USER = 500
"""Token issuances and session keys kept per user (the newest), whatever their state."""


def sha256_hex(secret: str) -> str:
    """Digest under which a token or session key is stored and later looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class DuplicateError(Exception):
    """Raised when creating a row whose primary key already exists."""


@dataclass(frozen=True)
class CredentialCheck:
    """Outcome of looking up a token or session key digest.

    Attributes:
        state: One of ``ok``, ``expired``, ``revoked`` or ``unknown``.
        user_id: Owner of the credential (empty when unknown).
        expires_at: Expiry in Unix milliseconds (0 when unknown).
    """

    state: str
    user_id: str = ""
    expires_at: int = 0


class Store:
    """Thread-safe wrapper around one SQLite connection.

    Args:
        path: Database file, or ``":memory:"``.
        credential_retention_ms: How long dead token issuances and session keys are kept.
        max_credentials_per_user: Rows of each kind kept per user, newest first.
    """

    def __init__(
        self,
        path: str,
        *,
        credential_retention_ms: int = DEFAULT_CREDENTIAL_RETENTION_MS,
        max_credentials_per_user: int = MAX_CREDENTIALS_PER_USER,
    ) -> None:
        self.path = path
        self.credential_retention_ms = credential_retention_ms
        self.max_credentials_per_user = max_credentials_per_user
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._add_missing_columns()
        self._db.executescript(_LATE_INDEXES)
        self._seed_message_ids()

    def _add_missing_columns(self) -> None:
        """Bring a database written by an earlier sandbox version up to the current schema."""
        with self._lock:
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(token_subjects)")}
            if "expired_below" not in columns:
                self._db.execute(
                    "ALTER TABLE token_subjects ADD COLUMN expired_below INTEGER NOT NULL DEFAULT 0"
                )
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(token_issues)")}
            if "dead_at" not in columns:
                self._db.execute(
                    "ALTER TABLE token_issues ADD COLUMN dead_at INTEGER NOT NULL DEFAULT 0"
                )

    def _seed_message_ids(self) -> None:
        """Start message ids at a time-based value in a new database.

        The SDK caches messages by id in IndexedDB; ids that restart at 1 after a fresh
        database could collide with cached ones from an earlier run.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT seq FROM sqlite_sequence WHERE name='messages'"
            ).fetchone()
            if row is None:
                base = int(time.time() * 1000)
                self._db.execute(
                    "INSERT INTO sqlite_sequence(name, seq) VALUES ('messages', ?)", (base,)
                )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock, contextlib.suppress(sqlite3.ProgrammingError):
            self._db.close()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, args).fetchall()]

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # -- whole database -------------------------------------------------------------------

    def reset(self) -> None:
        """Delete every row. Message ids keep growing so cached ids never repeat."""
        with self._lock:
            self._db.execute("BEGIN")
            for table in (
                "users",
                "token_subjects",
                "token_issues",
                "session_keys",
                "channels",
                "channel_members",
                "messages",
            ):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._db.execute("COMMIT")

    # -- users ----------------------------------------------------------------------------

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """Return the user row with ``metadata`` decoded, or ``None``."""
        row = self._one("SELECT * FROM users WHERE user_id = ?", (user_id,))
        if row is not None:
            row["metadata"] = json.loads(row["metadata"])
        return row

    def create_user(
        self,
        user_id: str,
        nickname: str,
        profile_url: str,
        metadata: dict[str, str] | None = None,
        *,
        is_bot: bool = False,
        now: int,
    ) -> dict[str, Any]:
        """Insert a user.

        Raises:
            DuplicateError: The user id is taken.
        """
        try:
            self._run(
                "INSERT INTO users(user_id, nickname, profile_url, metadata, is_bot, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, nickname, profile_url, json.dumps(metadata or {}), int(is_bot), now),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateError(user_id) from exc
        user = self.get_user(user_id)
        assert user is not None
        return user

    def ensure_user(self, user_id: str, nickname: str, *, is_bot: bool, now: int) -> None:
        """Create the user if missing and keep its nickname current (used for the bot)."""
        if self.get_user(user_id) is None:
            self.create_user(user_id, nickname, "", is_bot=is_bot, now=now)
        else:
            self._run("UPDATE users SET nickname = ? WHERE user_id = ?", (nickname, user_id))

    def update_user(
        self,
        user_id: str,
        *,
        nickname: str | None = None,
        profile_url: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Change the given fields; returns the updated row or ``None`` if the user is unknown."""
        if self.get_user(user_id) is None:
            return None
        if nickname is not None:
            self._run("UPDATE users SET nickname = ? WHERE user_id = ?", (nickname, user_id))
        if profile_url is not None:
            self._run("UPDATE users SET profile_url = ? WHERE user_id = ?", (profile_url, user_id))
        if metadata is not None:
            self._run(
                "UPDATE users SET metadata = ? WHERE user_id = ?", (json.dumps(metadata), user_id)
            )
        return self.get_user(user_id)

    def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete a user, its credentials and its channel memberships.

        As at Sendbird, a user re-created with the same id starts without channels, and its
        old session tokens stay invalid (the new user gets another token number). Messages
        stay for the other members' history.

        Returns:
            ``{"users": 0 or 1, "memberships": n}``: how many rows went.
        """
        with self._lock:
            self._db.execute("BEGIN")
            deleted = self._db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount
            memberships = self._db.execute(
                "DELETE FROM channel_members WHERE user_id = ?", (user_id,)
            ).rowcount
            self._db.execute("DELETE FROM token_subjects WHERE user_id = ?", (user_id,))
            self._db.execute("DELETE FROM token_issues WHERE user_id = ?", (user_id,))
            self._db.execute("DELETE FROM session_keys WHERE user_id = ?", (user_id,))
            self._db.execute("COMMIT")
        return {"users": deleted, "memberships": memberships}

    def mark_login(self, user_id: str) -> None:
        """Remember that the user connected at least once (``has_ever_logged_in``)."""
        self._run("UPDATE users SET has_ever_logged_in = 1 WHERE user_id = ?", (user_id,))

    def set_last_seen(self, user_id: str, ts: int) -> None:
        """Record when the user's last connection closed."""
        self._run("UPDATE users SET last_seen_at = ? WHERE user_id = ?", (ts, user_id))

    def count_users(self) -> int:
        """Number of users, the bot included."""
        row = self._one("SELECT COUNT(*) AS n FROM users")
        return int(row["n"]) if row else 0

    # -- session tokens -------------------------------------------------------------------

    def meta_value(self, key: str, default: str) -> str:
        """A persisted setting of this database, stored with ``default`` on first use."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO sandbox_meta(key, value) VALUES (?, ?)", (key, default)
            )
            row = self._db.execute(
                "SELECT value FROM sandbox_meta WHERE key = ?", (key,)
            ).fetchone()
        return str(row["value"])

    def token_subject(self, user_id: str) -> dict[str, Any]:
        """The user's token number and version, assigned on first use.

        Numbers come from a counter kept in ``sandbox_meta`` that never goes back (not even on
        reset), so a deleted and re-created user never gets its old number again.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM token_subjects WHERE user_id = ?", (user_id,)
            ).fetchone()
            if row is not None:
                return dict(row)
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR IGNORE INTO sandbox_meta(key, value) VALUES ('next_user_number', '1')"
            )
            number = int(
                self._db.execute(
                    "SELECT value FROM sandbox_meta WHERE key = 'next_user_number'"
                ).fetchone()["value"]
            )
            self._db.execute(
                "UPDATE sandbox_meta SET value = ? WHERE key = 'next_user_number'",
                (str(number + 1),),
            )
            self._db.execute(
                "INSERT INTO token_subjects(user_id, number) VALUES (?, ?)", (user_id, number)
            )
            self._db.execute("COMMIT")
            return {
                "user_id": user_id,
                "number": number,
                "version": 0,
                "revoked_below": 0,
                "expired_below": 0,
            }

    def subject_by_number(self, number: int) -> dict[str, Any] | None:
        """The token subject (user id, version) with this number, or ``None``."""
        return self._one("SELECT * FROM token_subjects WHERE number = ?", (number,))

    def bump_token_version(self, user_id: str, *, revoke: bool, now: int) -> dict[str, Any]:
        """Move the user to the next token version; every older token stops working.

        Args:
            user_id: Owner.
            revoke: ``True``: older tokens count as revoked (Sendbird's revoke-all, which
                moves ``revoked_below``); ``False``: they count as expired (the control
                surface's expire-token, which moves ``expired_below``).
            now: Unix ms; the issuances so far count as dead from then (for pruning).

        Returns:
            The subject as it was before the bump.
        """
        before = self.token_subject(user_id)
        with self._lock:
            self._db.execute(
                "UPDATE token_subjects SET version = version + 1,"
                " revoked_below = CASE WHEN ? THEN version + 1 ELSE revoked_below END,"
                " expired_below = CASE WHEN ? THEN expired_below ELSE version + 1 END"
                " WHERE user_id = ?",
                (int(revoke), int(revoke), user_id),
            )
            self._db.execute(
                "UPDATE token_issues SET dead_at = ? WHERE user_id = ? AND dead_at = 0",
                (now, user_id),
            )
        return before

    def add_token(
        self, user_id: str, token_sha256: str, version: int, issued_at: int, expires_at: int
    ) -> None:
        """Record one issuance of a session token (by digest; repeats get their own row).

        Prunes old credentials as well, with ``issued_at`` as the current time.
        """
        with self._lock:
            self._db.execute(
                "INSERT INTO token_issues(token_sha256, user_id, version, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_sha256, user_id, version, issued_at, expires_at),
            )
            self._cap_user_rows("token_issues", "id", user_id)
            self.prune_credentials(issued_at)

    def count_live_tokens(self, user_id: str, min_version: int, now: int) -> int:
        """Issuances to the user with ``version >= min_version`` whose ``e`` has not passed."""
        row = self._one(
            "SELECT COUNT(*) AS n FROM token_issues"
            " WHERE user_id = ? AND version >= ? AND expires_at > ?",
            (user_id, min_version, now),
        )
        return int(row["n"]) if row else 0

    def list_tokens(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Issuances in issue order (digests only), with the user's current token version.

        Each row has ``revoked_below`` and ``expired_below`` of its user (``None`` when the
        user is gone).
        """
        select = (
            "SELECT i.*, s.revoked_below AS revoked_below, s.expired_below AS expired_below"
            " FROM token_issues i LEFT JOIN token_subjects s ON s.user_id = i.user_id"
        )
        if user_id is None:
            return self._all(select + " ORDER BY i.id")
        return self._all(select + " WHERE i.user_id = ? ORDER BY i.id", (user_id,))

    # -- session keys ---------------------------------------------------------------------

    def add_session_key(
        self, user_id: str, key_sha256: str, issued_at: int, expires_at: int
    ) -> None:
        """Record a session key by digest; prunes old credentials (``issued_at`` is now)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO session_keys(key_sha256, user_id, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (key_sha256, user_id, issued_at, expires_at),
            )
            self._cap_user_rows("session_keys", "rowid", user_id)
            self.prune_credentials(issued_at)

    def check_session_key(self, key_sha256: str, now: int) -> CredentialCheck:
        """Classify a session key digest as ok, expired, revoked or unknown."""
        row = self._one(
            "SELECT user_id, expires_at, revoked FROM session_keys WHERE key_sha256 = ?",
            (key_sha256,),
        )
        return _classify(row, now)

    def expire_session_keys(self, user_id: str, now: int) -> int:
        """Make every session key of the user expire now."""
        return self._run(
            "UPDATE session_keys SET expires_at = ? WHERE user_id = ? AND expires_at > ?",
            (now, user_id, now),
        )

    def revoke_session_keys(self, user_id: str, now: int) -> int:
        """Revoke every session key of the user (dead from ``now``, for pruning)."""
        return self._run(
            "UPDATE session_keys SET revoked = 1, expires_at = MIN(expires_at, ?)"
            " WHERE user_id = ? AND revoked = 0",
            (now, user_id),
        )

    # -- pruning --------------------------------------------------------------------------

    def prune_credentials(self, now: int) -> dict[str, int]:
        """Delete credentials dead for longer than the retention.

        Token issuances go when their ``e`` passed, or their user revoked or expired its
        tokens, more than ``credential_retention_ms`` before ``now``; session keys when they
        expired or were revoked that long ago. The users' version counters stay (one row per
        user), so old tokens keep failing.

        Returns:
            Rows deleted per table.
        """
        cutoff = now - self.credential_retention_ms
        with self._lock:
            tokens = self._db.execute(
                "DELETE FROM token_issues WHERE expires_at <= ? OR (dead_at > 0 AND dead_at <= ?)",
                (cutoff, cutoff),
            ).rowcount
            keys = self._db.execute(
                "DELETE FROM session_keys WHERE expires_at <= ?", (cutoff,)
            ).rowcount
        return {"token_issues": tokens, "session_keys": keys}

    def _cap_user_rows(self, table: str, order: str, user_id: str) -> None:
        """Keep only the user's newest ``max_credentials_per_user`` rows of ``table``."""
        self._db.execute(
            f"DELETE FROM {table} WHERE user_id = ? AND {order} NOT IN"  # noqa: S608 - fixed names
            f" (SELECT {order} FROM {table} WHERE user_id = ? ORDER BY {order} DESC LIMIT ?)",
            (user_id, user_id, self.max_credentials_per_user),
        )

    def credential_counts(self) -> dict[str, int]:
        """Rows in the credential tables (for tests and inspection)."""
        with self._lock:
            return {
                table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
                for table in ("token_issues", "session_keys")
            }

    # -- channels -------------------------------------------------------------------------

    def create_channel(
        self,
        channel_url: str,
        *,
        name: str,
        cover_url: str,
        custom_type: str,
        data: str,
        is_distinct: bool,
        created_by: str,
        member_ids: list[str],
        now: int,
    ) -> None:
        """Insert a group channel and its members in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO channels(channel_url, name, cover_url, custom_type, data,"
                    " is_distinct, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        channel_url,
                        name,
                        cover_url,
                        custom_type,
                        data,
                        int(is_distinct),
                        created_by,
                        now,
                    ),
                )
                for member in dict.fromkeys(member_ids):
                    self._db.execute(
                        "INSERT INTO channel_members(channel_url, user_id, joined_at)"
                        " VALUES (?, ?, ?)",
                        (channel_url, member, now),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get_channel(self, channel_url: str) -> dict[str, Any] | None:
        """Return the channel row or ``None``."""
        return self._one("SELECT * FROM channels WHERE channel_url = ?", (channel_url,))

    def channel_members(self, channel_url: str) -> list[dict[str, Any]]:
        """Members of a channel joined with their user rows, in join order."""
        return self._all(
            "SELECT m.user_id, m.joined_at, m.last_read_at, u.nickname, u.profile_url,"
            " u.metadata, u.is_active, u.last_seen_at FROM channel_members m"
            " LEFT JOIN users u ON u.user_id = m.user_id"
            " WHERE m.channel_url = ? ORDER BY m.joined_at, m.rowid",
            (channel_url,),
        )

    def member_ids(self, channel_url: str) -> list[str]:
        """User ids of a channel's members."""
        rows = self._all(
            "SELECT user_id FROM channel_members WHERE channel_url = ? ORDER BY rowid",
            (channel_url,),
        )
        return [row["user_id"] for row in rows]

    def is_member(self, channel_url: str, user_id: str) -> bool:
        """Whether ``user_id`` belongs to the channel."""
        return (
            self._one(
                "SELECT 1 AS x FROM channel_members WHERE channel_url = ? AND user_id = ?",
                (channel_url, user_id),
            )
            is not None
        )

    def find_distinct_channel(self, member_ids: list[str]) -> str | None:
        """URL of an existing distinct channel with exactly these members, if any."""
        wanted = sorted(set(member_ids))
        for row in self._all("SELECT channel_url FROM channels WHERE is_distinct = 1"):
            if sorted(set(self.member_ids(row["channel_url"]))) == wanted:
                return str(row["channel_url"])
        return None

    def channels_of_user(self, user_id: str) -> list[str]:
        """URLs of the channels a user belongs to, newest first."""
        rows = self._all(
            "SELECT c.channel_url FROM channels c JOIN channel_members m"
            " ON m.channel_url = c.channel_url WHERE m.user_id = ? ORDER BY c.created_at DESC",
            (user_id,),
        )
        return [row["channel_url"] for row in rows]

    def mark_read(self, channel_url: str, user_id: str, ts: int) -> None:
        """Move the member's read receipt to ``ts``."""
        self._run(
            "UPDATE channel_members SET last_read_at = ? WHERE channel_url = ? AND user_id = ?",
            (ts, channel_url, user_id),
        )

    # -- messages -------------------------------------------------------------------------

    def add_message(
        self,
        channel_url: str,
        user_id: str,
        message: str,
        *,
        custom_type: str = "",
        data: str = "",
        mention_type: str = "users",
        extended_payload: dict[str, Any] | None = None,
        now: int,
    ) -> dict[str, Any]:
        """Store a user message and return it as a row (with the sender joined in)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO messages(channel_url, user_id, message, custom_type, data,"
                " mention_type, extended_payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    channel_url,
                    user_id,
                    message,
                    custom_type,
                    data,
                    mention_type,
                    json.dumps(extended_payload or {}),
                    now,
                ),
            )
            msg_id = cursor.lastrowid
        row = self.get_message(int(msg_id or 0))
        assert row is not None
        return row

    def get_message(self, msg_id: int) -> dict[str, Any] | None:
        """One message row with the sender's current profile, or ``None``."""
        rows = self._all(_MESSAGE_SELECT + " WHERE m.msg_id = ?", (msg_id,))
        return _decode_messages(rows)[0] if rows else None

    def messages_before(
        self, channel_url: str, ts: int, limit: int, *, inclusive: bool
    ) -> list[dict[str, Any]]:
        """The ``limit`` newest messages created before ``ts``, oldest first."""
        if limit <= 0:
            return []
        op = "<=" if inclusive else "<"
        rows = self._all(
            _MESSAGE_SELECT + f" WHERE m.channel_url = ? AND m.created_at {op} ?"
            " ORDER BY m.created_at DESC, m.msg_id DESC LIMIT ?",
            (channel_url, ts, limit),
        )
        return _decode_messages(list(reversed(rows)))

    def messages_after(
        self, channel_url: str, ts: int, limit: int, *, inclusive: bool
    ) -> list[dict[str, Any]]:
        """The ``limit`` oldest messages created after ``ts``, oldest first."""
        if limit <= 0:
            return []
        op = ">=" if inclusive else ">"
        rows = self._all(
            _MESSAGE_SELECT + f" WHERE m.channel_url = ? AND m.created_at {op} ?"
            " ORDER BY m.created_at, m.msg_id LIMIT ?",
            (channel_url, ts, limit),
        )
        return _decode_messages(rows)

    def messages_between(
        self, channel_url: str, start: int, end: int, limit: int
    ) -> list[dict[str, Any]]:
        """Messages with ``start <= created_at <= end``, oldest first, at most ``limit``."""
        rows = self._all(
            _MESSAGE_SELECT + " WHERE m.channel_url = ? AND m.created_at >= ? AND m.created_at <= ?"
            " ORDER BY m.created_at, m.msg_id LIMIT ?",
            (channel_url, start, end, limit),
        )
        return _decode_messages(rows)

    def last_message(self, channel_url: str) -> dict[str, Any] | None:
        """The newest message of a channel, or ``None``."""
        rows = self.messages_before(channel_url, 2**62, 1, inclusive=True)
        return rows[0] if rows else None

    def count_messages(self, channel_url: str) -> int:
        """Number of messages stored in a channel."""
        row = self._one("SELECT COUNT(*) AS n FROM messages WHERE channel_url = ?", (channel_url,))
        return int(row["n"]) if row else 0


_LATE_INDEXES = """
CREATE INDEX IF NOT EXISTS token_issues_expiry ON token_issues(expires_at);
CREATE INDEX IF NOT EXISTS token_issues_dead ON token_issues(dead_at);
"""
"""Indexes on columns that an older database gets only from ``_add_missing_columns``."""

_MESSAGE_SELECT = (
    "SELECT m.*, u.nickname AS nickname, u.profile_url AS profile_url, u.metadata AS metadata"
    " FROM messages m LEFT JOIN users u ON u.user_id = m.user_id"
)


def _decode_messages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["extended_payload"] = json.loads(row["extended_payload"] or "{}")
        row["metadata"] = json.loads(row["metadata"] or "{}")
        row["nickname"] = row["nickname"] or ""
        row["profile_url"] = row["profile_url"] or ""
    return rows


def _classify(row: dict[str, Any] | None, now: int) -> CredentialCheck:
    if row is None:
        return CredentialCheck(CREDENTIAL_UNKNOWN)
    user_id, expires_at = str(row["user_id"]), int(row["expires_at"])
    if row["revoked"]:
        return CredentialCheck(CREDENTIAL_REVOKED, user_id, expires_at)
    if now >= expires_at:
        return CredentialCheck(CREDENTIAL_EXPIRED, user_id, expires_at)
    return CredentialCheck(CREDENTIAL_OK, user_id, expires_at)
