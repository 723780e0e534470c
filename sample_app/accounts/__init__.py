"""The app's own accounts: registration, sign-in sessions and the sign-in rate limit.

This package decides *who* is signed in; the Sendbird side (session tokens for the chat
widget) is derived from the `AccountView` it returns and never from anything the browser
claims. It has no Reflex dependency, so it can be tested and reused on its own:

* `models`: the tables (`Account`, `AuthSession`, `SignInAttempt`) and `AccountView`,
  the only account shape the UI layer should hold (it has no password hash).
* `passwords`: argon2id hashing with injectable cost, and the password policy.
* `validation`: username / display name / profile URL normalisation and messages.
* `service`: `AccountService`, the operations the UI calls.
* `database`: engines and the Alembic migrations (`upgrade_database`), kept apart from
  Reflex's own migration history.
* `seed`: `python -m sample_app.accounts.seed` creates the demo accounts.

Typical wiring::

    engine = create_engine_for(db_url)
    upgrade_database(engine)
    accounts = AccountService(engine)
    signed_in = accounts.sign_in("alice", "sendbird-demo-2026", client_ip)
    account = accounts.resolve_session(signed_in.session_token)
"""

from sample_app.accounts.database import (
    create_engine_for,
    current_revision,
    head_revision,
    upgrade_database,
)
from sample_app.accounts.models import Account, AccountView, AuthSession, SignInAttempt
from sample_app.accounts.passwords import (
    Argon2Hasher,
    PasswordCheck,
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from sample_app.accounts.service import (
    DEFAULT_SESSION_TTL,
    AccountError,
    AccountService,
    AccountValidationError,
    PruneCounts,
    RateLimit,
    RegistrationError,
    SignedIn,
    SignInError,
    TooManyAttemptsError,
    utc_now,
)
from sample_app.accounts.validation import (
    normalize_username,
    validate_display_name,
    validate_profile_url,
    validate_username,
)

__all__ = [
    "DEFAULT_SESSION_TTL",
    "Account",
    "AccountError",
    "AccountService",
    "AccountValidationError",
    "AccountView",
    "Argon2Hasher",
    "AuthSession",
    "PasswordCheck",
    "PruneCounts",
    "RateLimit",
    "RegistrationError",
    "SignInAttempt",
    "SignInError",
    "SignedIn",
    "TooManyAttemptsError",
    "check_password_strength",
    "create_engine_for",
    "current_revision",
    "hash_password",
    "head_revision",
    "needs_rehash",
    "normalize_username",
    "upgrade_database",
    "utc_now",
    "validate_display_name",
    "validate_profile_url",
    "validate_username",
    "verify_password",
]
